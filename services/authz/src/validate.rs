//! Input validation for names and passwords.

use crate::error::{AuthzError, Result};

const PASSWORD_MIN: usize = 8;
// Bounds Argon2 input and request size; long passphrases still fit.
const PASSWORD_MAX: usize = 1024;

/// `[a-z0-9_.-]`, 1 to 32 characters.
pub(crate) fn username(name: &str) -> Result<()> {
    let ok = (1..=32).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(AuthzError::InvalidArgument(
            "username must be 1-32 characters of a-z, 0-9, '_', '.', '-'".into(),
        ))
    }
}

pub(crate) fn password(password: &str) -> Result<()> {
    if (PASSWORD_MIN..=PASSWORD_MAX).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(AuthzError::InvalidArgument(format!(
            "password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters"
        )))
    }
}

/// `[a-z0-9_.-]`, 1 to 63 characters, starting with a letter or digit (node
/// names may become DNS labels and appear in `user:node@` SSH logins).
pub(crate) fn node_name(name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(AuthzError::InvalidArgument(
            "node name must be 1-63 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
                .into(),
        ))
    }
}

/// An account on a target (a grant's login, a requested login):
/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}`, the rule of ssh-edge's `USER:TARGET:ACCOUNT`.
pub(crate) fn account(name: &str) -> Result<()> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AuthzError::InvalidArgument(format!(
            "login {:?} is not an account name: 1-32 characters of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter, a digit or '_'",
            name.chars().take(40).collect::<String>()
        )))
    }
}

/// Group and host names follow node names: hosts share the target
/// namespace with nodes, and one rule keeps `user:name@` logins simple.
pub(crate) fn target_name(name: &str) -> Result<()> {
    node_name(name).map_err(|_| {
        AuthzError::InvalidArgument(
            "name must be 1-63 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
                .into(),
        )
    })
}

/// `[a-z0-9._-]`, 1 to 32 characters, or `command:<name>` (a command on a node).
pub(crate) fn action(action: &str) -> Result<()> {
    if let Some(command) = crate::command_access::command_of(action) {
        return command_name(command).map_err(|_| {
            AuthzError::InvalidArgument(
                "action command:<name> needs a command name of [a-z][a-z0-9_-]{0,63}".into(),
            )
        });
    }
    let ok = (1..=32).contains(&action.len())
        && action.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(AuthzError::InvalidArgument(
            "action must be 1-32 characters of a-z, 0-9, '_', '.', '-'".into(),
        ))
    }
}

/// A command name as agents declare them: `[a-z][a-z0-9_-]{0,63}` (phirepass_tunnel's
/// `CommandRequest::validate` rule; authz does not link the tunnel crate).
pub(crate) fn command_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AuthzError::InvalidArgument(format!(
            "command {:?} is not a command name: 1-64 characters of a-z, 0-9, '_', '-', starting with a letter",
            name.chars().take(70).collect::<String>()
        )))
    }
}

/// A grant's command: a name, or `*` for every command the host declares.
pub(crate) fn grant_command(name: &str) -> Result<()> {
    if name == "*" {
        Ok(())
    } else {
        command_name(name)
    }
}

/// The SHA-256 of a command request (`CommandRequest::digest`): 64 lowercase hex digits.
pub(crate) fn command_digest(digest: &str) -> Result<()> {
    let ok = digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AuthzError::InvalidArgument(
            "command_digest must be 64 lowercase hex digits (the request's SHA-256)".into(),
        ))
    }
}

/// Node group names follow node names: `[a-z0-9][a-z0-9_.-]{0,62}`.
pub(crate) fn node_group_name(name: &str) -> Result<()> {
    node_name(name).map_err(|_| {
        AuthzError::InvalidArgument(
            "node group name must be 1-63 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
                .into(),
        )
    })
}

/// An IP address or a DNS name, and a non-zero port.
pub(crate) fn host_address(ip: &str, port: u32) -> Result<u16> {
    let is_ip = ip.parse::<std::net::IpAddr>().is_ok();
    let is_dns = (1..=253).contains(&ip.len())
        && ip.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !is_ip && !is_dns {
        return Err(AuthzError::InvalidArgument(
            "ip must be an IP address or a DNS name".into(),
        ));
    }
    match u16::try_from(port) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(AuthzError::InvalidArgument(
            "port must be between 1 and 65535".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["a", "alice", "bob.smith", "x_1-2", &"a".repeat(32)] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Alice", "a b", "a@b", "é", &"a".repeat(33)] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("12345678").is_ok());
        assert!(password("1234567").is_err());
        assert!(password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn commands_and_digests() {
        for ok in ["disk_usage", "a", "restart-app2", &"c".repeat(64)] {
            assert!(command_name(ok).is_ok(), "{ok}");
            assert!(action(&format!("command:{ok}")).is_ok(), "{ok}");
        }
        for bad in ["", "Disk", "1abc", "_x", "a b", "a;b", "*", &"c".repeat(65)] {
            assert!(command_name(bad).is_err(), "{bad}");
            assert!(action(&format!("command:{bad}")).is_err(), "{bad}");
        }
        assert!(grant_command("*").is_ok() && grant_command("**").is_err());
        assert!(command_digest(&"0f".repeat(32)).is_ok());
        for bad in [
            "0F".repeat(32),
            "0f".repeat(31),
            "zz".repeat(32),
            String::new(),
        ] {
            assert!(command_digest(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_names() {
        for ok in ["web-1", "db.prod", "9lives", &"n".repeat(63)] {
            assert!(node_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-web", ".x", "Web", "a:b", "a@b", &"n".repeat(64)] {
            assert!(node_name(bad).is_err(), "{bad}");
        }
    }
}
