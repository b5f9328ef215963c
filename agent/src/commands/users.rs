//! `user = "name"` of a declared command: resolved from /etc/passwd once, at load, without a
//! shell or NSS (a user only LDAP knows must be given as a local account).

use std::path::Path;

/// The account a command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

pub const PASSWD: &str = "/etc/passwd";

/// Looks `name` up in the passwd file at `passwd`.
pub fn lookup(passwd: &Path, name: &str) -> Result<RunAs, String> {
    let text = std::fs::read_to_string(passwd)
        .map_err(|e| format!("cannot read {}: {e}", passwd.display()))?;
    for line in text.lines() {
        let mut fields = line.split(':');
        if fields.next() != Some(name) {
            continue;
        }
        let (_password, uid, gid) = (fields.next(), fields.next(), fields.next());
        let parse = |v: Option<&str>| v.and_then(|v| v.parse::<u32>().ok());
        return match (parse(uid), parse(gid)) {
            (Some(uid), Some(gid)) => Ok(RunAs {
                name: name.to_owned(),
                uid,
                gid,
            }),
            _ => Err(format!(
                "the {} entry of user {name:?} is malformed",
                passwd.display()
            )),
        };
    }
    Err(format!(
        "user {name:?} does not exist in {}: create it (e.g. `useradd --system {name}`) or change `user`",
        passwd.display()
    ))
}

/// Switching to another user needs root: say so at load, not at the first run.
pub fn check_can_switch(run_as: &RunAs) -> Result<(), String> {
    let me = rustix::process::geteuid().as_raw();
    if me != 0 && me != run_as.uid {
        return Err(format!(
            "runs as user {:?} (uid {}) but the agent runs as uid {me}: only root can run commands as another user; start the agent as root or remove `user`",
            run_as.name, run_as.uid
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passwd");
        std::fs::write(&file, "root:x:0:0:root:/root:/bin/sh\nweb:x:1001:1002::/srv:/usr/sbin/nologin\nbad:x:z:1::/:/bin/false\n").unwrap();
        assert_eq!(
            lookup(&file, "web").unwrap(),
            RunAs {
                name: "web".into(),
                uid: 1001,
                gid: 1002
            }
        );
        assert!(
            lookup(&file, "nobody-here")
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(lookup(&file, "bad").unwrap_err().contains("malformed"));
        assert!(lookup(&file, "ro").is_err(), "a prefix is not a user");
    }
}
