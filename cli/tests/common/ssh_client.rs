//! The OpenSSH client (ssh, scp, sftp) driven as a test user, and keys made with ssh-keygen.

use std::time::Duration;

/// The OpenSSH client as a test user: key (BatchMode) or password (SSH_ASKPASS), its own
/// known_hosts, no user config.
pub struct SshClient {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub key: Option<std::path::PathBuf>,
    pub password: Option<String>,
    /// Answer the password through keyboard-interactive instead of the password method.
    pub kbi: bool,
    /// OpenSSH LogLevel (INFO shows the server's disconnect message).
    pub log_level: &'static str,
}

pub const SSH_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `ssh-keygen` for a new ed25519 key in `dir`; returns (private path, public line).
pub fn new_user_key(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen")
        .success();
    assert!(ok, "ssh-keygen failed");
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    (path, public.trim().to_string())
}

impl SshClient {
    pub fn with_key(port: u16, key: &std::path::Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir.path().join("id");
        std::fs::copy(key, &copy).expect("copy key");
        Self {
            dir,
            port,
            key: Some(copy),
            password: None,
            kbi: false,
            log_level: "ERROR",
        }
    }

    pub fn with_password(port: u16, password: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let askpass = dir.path().join("askpass");
        std::fs::write(
            &askpass,
            "#!/bin/sh\nprintf '%s\\n' \"$PP_TEST_PASSWORD\"\n",
        )
        .expect("askpass");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        Self {
            dir,
            port,
            key: None,
            password: Some(password.to_string()),
            kbi: false,
            log_level: "ERROR",
        }
    }

    pub fn known_hosts(&self) -> std::path::PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// Options shared by ssh, scp and sftp (port flag excluded: `-p` vs `-P`).
    pub fn options(&self) -> Vec<String> {
        let mut o: Vec<String> = [
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "Ciphers=aes128-gcm@openssh.com",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        o.extend(["-o".into(), format!("LogLevel={}", self.log_level)]);
        o.push("-o".into());
        o.push(format!(
            "UserKnownHostsFile={}",
            self.known_hosts().display()
        ));
        match &self.key {
            Some(key) => {
                o.extend(["-i".into(), key.display().to_string()]);
                o.extend(["-o".into(), "BatchMode=yes".into()]);
                o.extend(["-o".into(), "PreferredAuthentications=publickey".into()]);
            }
            None => {
                o.extend(["-o".into(), "PubkeyAuthentication=no".into()]);
                let method = if self.kbi {
                    "keyboard-interactive"
                } else {
                    "password"
                };
                o.extend(["-o".into(), format!("PreferredAuthentications={method}")]);
                o.extend(["-o".into(), "NumberOfPasswordPrompts=1".into()]);
            }
        }
        o
    }

    pub fn command(&self, program: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(program);
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(password) = &self.password {
            c.env("SSH_ASKPASS", self.dir.path().join("askpass"))
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env("PP_TEST_PASSWORD", password)
                .env("DISPLAY", ":0");
        }
        c
    }

    /// `ssh [extra] login@127.0.0.1 command`.
    pub fn ssh_command(
        &self,
        login: &str,
        extra: &[&str],
        command: &[&str],
    ) -> tokio::process::Command {
        let mut c = self.command("ssh");
        c.args(self.options())
            .args(["-p", &self.port.to_string()])
            .args(extra)
            .arg(format!("{login}@127.0.0.1"))
            .args(command);
        c
    }

    pub async fn ssh(&self, login: &str, command: &[&str]) -> std::process::Output {
        run(self.ssh_command(login, &[], command)).await
    }

    /// `scp -o User=login from to`; the remote side is written `127.0.0.1:path` (scp and sftp
    /// would read the ':' of `user:target@host` as the host/path separator).
    pub async fn scp(&self, login: &str, from: &str, to: &str) -> std::process::Output {
        let mut c = self.command("scp");
        c.args(self.options()).args([
            "-q",
            "-P",
            &self.port.to_string(),
            "-o",
            &format!("User={login}"),
            from,
            to,
        ]);
        run(c).await
    }

    /// `sftp -b batch -o User=login 127.0.0.1`.
    pub async fn sftp(&self, login: &str, batch: &str) -> std::process::Output {
        let file = self.dir.path().join("batch");
        std::fs::write(&file, batch).expect("batch file");
        let mut c = self.command("sftp");
        c.args(self.options())
            .args([
                "-P",
                &self.port.to_string(),
                "-o",
                &format!("User={login}"),
                "-b",
            ])
            .arg(&file)
            .arg("127.0.0.1");
        run(c).await
    }
}

pub async fn run(mut c: tokio::process::Command) -> std::process::Output {
    tokio::time::timeout(SSH_TIMEOUT, c.output())
        .await
        .expect("ssh client did not finish in time")
        .expect("run ssh client")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
