//! A real OpenSSH `sshd` on loopback for tests.
//!
//! We own the listening socket (bound on 127.0.0.1:0, never rebound) and run `sshd -i` (inetd
//! mode) for each accepted connection, so parallel tests never race for ports. Password login
//! needs a real account: the harness creates `pptest` once (tests run as root on CI).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::task::JoinHandle;

pub const TEST_USER: &str = "pptest";
pub const TEST_PASSWORD: &str = "pptest-Secret-42";

pub struct TestSshd {
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    accept: JoinHandle<()>,
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn sshd_path() -> anyhow::Result<PathBuf> {
    for p in ["/usr/sbin/sshd", "/usr/bin/sshd"] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    bail!("OpenSSH sshd not found: install openssh-server (.ci/run does)")
}

impl TestSshd {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with("").await
    }

    /// With `extra` sshd_config lines (keywords the base config does not set, such as
    /// `KexAlgorithms`: for each keyword sshd keeps the first value it reads).
    pub async fn start_with(extra: &str) -> anyhow::Result<Self> {
        let sshd = sshd_path()?;
        ensure_test_user().await?;
        std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        let dir = tempfile::tempdir()?;
        let key = dir.path().join("host_ed25519");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .await
            .context("running ssh-keygen")?;
        if !status.success() {
            bail!("ssh-keygen failed");
        }
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "HostKey {}\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 PermitRootLogin no\nStrictModes no\nPidFile none\nLogLevel ERROR\n\
                 Subsystem sftp internal-sftp\nCiphers aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com\n{extra}",
                key.display()
            ),
        )?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let Ok(std_socket) = socket.into_std() else {
                    continue;
                };
                if std_socket.set_nonblocking(false).is_err() {
                    continue;
                }
                let fd = OwnedFd::from(std_socket);
                let Ok(fd2) = fd.try_clone() else { continue };
                let child = Command::new(&sshd)
                    .arg("-i")
                    .arg("-f")
                    .arg(&config)
                    .stdin(Stdio::from(fd))
                    .stdout(Stdio::from(fd2))
                    .stderr(Stdio::inherit())
                    .kill_on_drop(false)
                    .spawn();
                if let Ok(mut child) = child {
                    tokio::spawn(async move {
                        let _ = child.wait().await;
                    });
                }
            }
        });
        Ok(Self {
            addr,
            _dir: dir,
            accept,
        })
    }
}

/// Creates the password-login account once; tolerant of parallel test processes racing here.
async fn ensure_test_user() -> anyhow::Result<()> {
    let exists = |_: ()| async {
        Command::new("id")
            .arg("-u")
            .arg(TEST_USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map(|s| s.success())
            .unwrap_or(false)
    };
    for _ in 0..50 {
        if exists(()).await && password_is_set().await {
            return Ok(());
        }
        let _ = Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", TEST_USER])
            .stderr(Stdio::null())
            .status()
            .await;
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running chpasswd (tests need root to create the sshd test account)")?;
        if let Some(mut stdin) = chpasswd.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(format!("{TEST_USER}:{TEST_PASSWORD}\n").as_bytes())
                .await?;
        }
        let _ = chpasswd.wait().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("could not create the {TEST_USER} account (are the tests running as root?)")
}

async fn password_is_set() -> bool {
    let shadow = tokio::fs::read_to_string("/etc/shadow")
        .await
        .unwrap_or_default();
    shadow
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{TEST_USER}:")))
        .map(|rest| rest.starts_with('$'))
        .unwrap_or(false)
}
