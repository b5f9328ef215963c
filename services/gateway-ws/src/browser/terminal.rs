//! The browser terminal's SSH client: `phirepass_ssh_target` (the client ssh-edge uses: its
//! algorithm policy, host-key verification against the vault's pins, bounded setup) over a
//! TunnelStream to the node's sshd. SSH is spoken here, in the edge, so the password never
//! crosses the bus and NATS only carries SSH ciphertext.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use phirepass_ssh_target::{
    Credentials, HostKeyTrust, TargetError, TargetHandler, TargetHandshake, TargetSpec,
};
use phirepass_tunnel::{OpenError, Target};
use russh::client;
use russh::{ChannelReadHalf, ChannelWriteHalf};
use tracing::{info, instrument};

use crate::browser::hostkeys;
use crate::state::AppState;

/// Time allowed for the SSH handshake, and again for authentication and the shell.
const SSH_SETUP_TIMEOUT: Duration = Duration::from_secs(20);
/// The SSH channel window toward the gateway.
const WINDOW: u32 = 2 * 1024 * 1024;

/// Bytes a session carried, for the registry and the dashboard.
#[derive(Default, Debug)]
pub struct Counters {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }
}

/// Why a terminal could not be opened, in words fit for the user.
#[derive(Debug)]
pub enum OpenFailure {
    RequiresPassword(String),
    Other(String),
}

pub struct Terminal {
    pub handle: client::Handle<TargetHandler>,
    pub reader: ChannelReadHalf,
    pub writer: ChannelWriteHalf<client::Msg>,
    /// A host key accepted and pinned by this connection, not told in the password dialog:
    /// written to the terminal first (as ssh-edge does).
    pub notice: Option<String>,
}

/// A live SSH connection to a node's sshd, handshake done and host key verified, nobody logged
/// in yet: what the browser's first `open_tunnel` (without a password) checks before anyone
/// types a password.
pub struct Checked {
    pub node_id: String,
    handshake: TargetHandshake,
    spec: TargetSpec,
    /// For the password dialog: a key accepted and pinned just now.
    pub notice: Option<String>,
}

impl Checked {
    /// Still usable for a login to `node_id` (sshd closes a connection nobody logged in on
    /// after its LoginGraceTime).
    pub fn usable_for(&self, node_id: &str) -> bool {
        self.node_id == node_id && self.handshake.is_open()
    }
}

/// Opens a stream to the node's SSH target and completes the SSH handshake, checking the host
/// key against the node's pin: proves the node is online, its agent reaches its sshd, and that
/// what answers is the sshd pinned for it. `user` is the phirepass user (for messages).
#[instrument(skip(state), fields(gateway = %state.config.gateway_id))]
pub async fn check_node(
    state: &AppState,
    node_id: &str,
    node_name: &str,
    user: &str,
) -> Result<Checked, OpenFailure> {
    let options = hostkeys::node_options(state, node_name)
        .await
        .map_err(OpenFailure::Other)?;
    let mut headers = Vec::new();
    phirepass_runtime::telemetry::inject(&mut headers);
    let edge = &state.config.gateway_id;
    let ticket = |id| {
        let opener = crate::tickets::Opener::Username(user);
        crate::tickets::issue(
            &state.authz,
            edge,
            opener,
            node_id,
            node_id,
            &Target::Ssh,
            id,
        )
    };
    let stream = phirepass_tunnel::open_ticketed(
        &state.bus,
        &state.subjects,
        edge,
        node_id,
        Target::Ssh,
        headers,
        &state.stream_config,
        ticket,
    )
    .await
    .map_err(|e| OpenFailure::Other(open_error(node_name, e)))?;
    // The account and password come with the login that follows.
    let mut spec = TargetSpec::new(node_name, "", Credentials::Password(String::new()));
    spec.setup_timeout = SSH_SETUP_TIMEOUT;
    spec.window_size = WINDOW;
    let unknown = state.config.unknown_host_key;
    options.apply(&mut spec, unknown);
    let handshake = phirepass_ssh_target::handshake(stream, &spec)
        .await
        .map_err(|e| {
            OpenFailure::Other(hostkeys::handshake_failure(e, node_name, user, unknown))
        })?;
    let notice = match handshake.trust {
        HostKeyTrust::Pinned => None,
        HostKeyTrust::AcceptedUnpinned => {
            Some(hostkeys::pin(state, node_name, &handshake.host_key).await)
        }
    };
    Ok(Checked {
        node_id: node_id.to_string(),
        handshake,
        spec,
        notice,
    })
}

/// Words for a failed stream open: which node, and what to do about it.
fn open_error(node_name: &str, e: OpenError) -> String {
    match e {
        OpenError::NodeOffline => {
            format!("node {node_name} is offline: its agent is not connected to Phirepass")
        }
        OpenError::Refused(reason) => format!(
            "node {node_name} has no SSH server answering ({reason}): start sshd on it, or point \
             the agent's SSH_HOST and SSH_PORT at one"
        ),
        OpenError::Timeout => format!("node {node_name} did not answer in time"),
        other => format!("could not reach node {node_name}: {other}"),
    }
}

/// What the password dialog says once the node answered.
pub fn ask_for_password(node_name: &str, username: &str) -> String {
    if username.is_empty() {
        format!(
            "{node_name} is online and its SSH server answers. Log in with an account on that host."
        )
    } else {
        format!("password required for {username} on {node_name}")
    }
}

/// Logs in on a checked connection and starts a shell in a pty of `size`. A wrong password is
/// `RequiresPassword`, so the browser asks again (on a new connection: OpenSSH refuses another
/// account on the same one).
pub async fn open_terminal(
    checked: Checked,
    node_name: &str,
    username: &str,
    password: &str,
    size: (u32, u32),
) -> Result<Terminal, OpenFailure> {
    let Checked {
        handshake,
        mut spec,
        notice,
        ..
    } = checked;
    spec.username = username.to_string();
    spec.credentials = Credentials::Password(password.to_string());
    let session = handshake.login(&spec).await.map_err(|e| match e {
        TargetError::AuthRejected { .. } => OpenFailure::RequiresPassword(format!(
            "authentication failed for {username} on {node_name}: wrong password?"
        )),
        TargetError::Timeout { .. } => {
            OpenFailure::Other(format!("ssh setup with {node_name} timed out"))
        }
        other => OpenFailure::Other(format!("ssh authentication error: {other}")),
    })?;
    let handle = session.handle;
    let shell = async {
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| OpenFailure::Other(format!("could not open a session: {e}")))?;
        channel
            .request_pty(false, "xterm-256color", size.0, size.1, 0, 0, &[])
            .await
            .map_err(|e| OpenFailure::Other(format!("pty request failed: {e}")))?;
        channel
            .request_shell(false)
            .await
            .map_err(|e| OpenFailure::Other(format!("shell request failed: {e}")))?;
        Ok(channel.split())
    };
    let (reader, writer) = tokio::time::timeout(SSH_SETUP_TIMEOUT, shell)
        .await
        .map_err(|_| OpenFailure::Other(format!("ssh setup with {node_name} timed out")))??;
    info!(node = %node_name, host_key = %session.host_key, "terminal logged in");
    Ok(Terminal {
        handle,
        reader,
        writer,
        notice,
    })
}
