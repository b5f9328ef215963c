//! Whether `SSH_HOST:SSH_PORT` answers as an SSH server. Checked at start, so an operator
//! learns of a wrong address before a user types a password, and again periodically (often
//! while it is down, rarely while it is up: each check is a line in sshd's log), so the
//! heartbeats tell the gateway.

use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How long the connect and the server's greeting may each take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
const RECHECK_WHILE_UP: Duration = Duration::from_secs(300);
const RECHECK_WHILE_DOWN: Duration = Duration::from_secs(30);

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It greeted with `SSH-`.
    Ssh,
    /// Something answers, but not an SSH server (why).
    NotSsh(String),
    /// Nothing answers (why: refused, timed out, no such host).
    Unreachable(String),
}

/// Connects to `host:port` and reads the server's greeting.
pub async fn probe(host: &str, port: u16) -> Probe {
    let secs = CHECK_TIMEOUT.as_secs();
    let mut stream =
        match tokio::time::timeout(CHECK_TIMEOUT, TcpStream::connect((host, port))).await {
            Err(_) => return Probe::Unreachable(format!("no answer within {secs} s")),
            Ok(Err(e)) => return Probe::Unreachable(e.to_string()),
            Ok(Ok(stream)) => stream,
        };
    let mut greeting = [0u8; 64];
    match tokio::time::timeout(CHECK_TIMEOUT, stream.read(&mut greeting)).await {
        Ok(Ok(n)) if greeting[..n].starts_with(b"SSH-") => Probe::Ssh,
        Ok(Ok(0)) => Probe::NotSsh("it closed the connection without an SSH greeting".into()),
        Ok(Ok(n)) => Probe::NotSsh(format!(
            "it greeted with {:?}",
            String::from_utf8_lossy(&greeting[..n.min(32)])
        )),
        Ok(Err(e)) => Probe::NotSsh(e.to_string()),
        Err(_) => Probe::NotSsh(format!("it sent no SSH greeting within {secs} s")),
    }
}

/// Checks forever, publishing `Some(reachable)` after each check and logging changes: a
/// warning that names the address and the fix when it stops answering.
pub(crate) async fn watch(host: String, port: u16, status: watch::Sender<Option<bool>>) {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    loop {
        let result = probe(&host, port).await;
        let up = result == Probe::Ssh;
        let changed = status.send_if_modified(|known| {
            let changed = *known != Some(up);
            *known = Some(up);
            changed
        });
        if changed {
            match &result {
                Probe::Ssh => {
                    tracing::info!("the SSH server at {addr} (SSH_HOST:SSH_PORT) answers")
                }
                Probe::Unreachable(why) => tracing::warn!(
                    "nothing answers at {addr} (SSH_HOST:SSH_PORT): {why}. Users cannot open a shell on this node until an SSH server listens there: start sshd, or set SSH_HOST/SSH_PORT to where it listens"
                ),
                Probe::NotSsh(why) => tracing::warn!(
                    "{addr} (SSH_HOST:SSH_PORT) answers but is not an SSH server: {why}. Set SSH_HOST/SSH_PORT to the SSH server's address"
                ),
            }
        }
        let next = if up {
            RECHECK_WHILE_UP
        } else {
            RECHECK_WHILE_DOWN
        };
        tokio::time::sleep(next).await;
    }
}
