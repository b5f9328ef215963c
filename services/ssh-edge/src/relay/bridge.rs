//! One client session channel bridged to one target session channel: PTY, env, shell / exec /
//! subsystem, window changes, signals, EOF, exit status and exit signal. Data moves through
//! russh channel writers that wait for the peer's SSH window, so memory per channel stays
//! bounded by the channel buffers: a slow reader slows the writer instead of filling a queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use phirepass_proto::authz::AuthorizeResponse;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Pty};
use tokio::io::AsyncWriteExt;
use tracing::{Instrument, debug, info_span, warn};

use crate::edge::Conn;
use crate::relay::access::{LoginAsk, authorize};
use crate::relay::link;

/// What the client asked the channel to run.
#[derive(Clone, Debug)]
pub(crate) enum Start {
    Shell,
    Exec(Vec<u8>),
    Subsystem(String),
}

impl Start {
    /// The Authorize action.
    pub(crate) fn action(&self) -> &'static str {
        match self {
            Start::Shell => "shell",
            Start::Exec(_) => "exec",
            Start::Subsystem(name) if name == "sftp" => "sftp",
            Start::Subsystem(_) => "subsystem",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct PtyRequest {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub pix_width: u32,
    pub pix_height: u32,
    pub modes: Vec<(Pty, u32)>,
}

/// russh hands the server a fixed array padded with `TTY_OP_END`; its client encodes the length
/// before skipping those, so they must go (or the target sees a malformed pty-req).
pub(crate) fn real_modes(modes: Vec<(Pty, u32)>) -> Vec<(Pty, u32)> {
    modes
        .into_iter()
        .filter(|(code, _)| *code != Pty::TTY_OP_END)
        .collect()
}

/// Requests received before the start request, replayed to the target.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChannelSetup {
    pub pty: Option<PtyRequest>,
    pub env: Vec<(String, String)>,
}

/// Collects a channel's setup until its start request, then relays it.
pub(crate) async fn serve_channel(
    conn: Arc<Conn>,
    username: String,
    target: String,
    account: Option<String>,
    channel: Channel<Msg>,
    handle: Handle,
) {
    let id = channel.id();
    let (mut rx, tx) = channel.split();
    let mut setup = ChannelSetup::default();
    let start = loop {
        match rx.wait().await {
            None | Some(ChannelMsg::Close) => return,
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                pix_width,
                pix_height,
                terminal_modes,
                ..
            }) => {
                setup.pty = Some(PtyRequest {
                    term,
                    cols: col_width,
                    rows: row_height,
                    pix_width,
                    pix_height,
                    modes: crate::relay::real_modes(terminal_modes),
                });
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            }) => {
                if let Some(pty) = setup.pty.as_mut() {
                    pty.cols = col_width;
                    pty.rows = row_height;
                }
            }
            Some(ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            }) => {
                // Bounded: a client cannot grow this without limit.
                if setup.env.len() < 64 {
                    setup.env.push((variable_name, variable_value));
                }
            }
            Some(ChannelMsg::RequestShell { .. }) => break Start::Shell,
            Some(ChannelMsg::Exec { command, .. }) => break Start::Exec(command),
            Some(ChannelMsg::RequestSubsystem { name, .. }) => break Start::Subsystem(name),
            Some(_) => {}
        }
    };
    relay(
        conn, username, target, account, id, rx, tx, handle, setup, start,
    )
    .await;
}

/// Reports a failure on the client channel's stderr, with exit status 1, and closes it.
pub(crate) async fn fail(tx: &ChannelWriteHalf<Msg>, message: &str) {
    let mut err = tx.make_writer_ext(Some(1));
    let _ = err
        .write_all(format!("phirepass: {message}\r\n").as_bytes())
        .await;
    let _ = tx.exit_status(1).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
}

/// Authorises `start` (and the PTY) as `account` (`None`: the default one), opens the target
/// channel, and bridges until either side ends; a failure is reported on the channel.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay(
    conn: Arc<Conn>,
    username: String,
    target: String,
    account: Option<String>,
    id: ChannelId,
    rx: ChannelReadHalf,
    tx: ChannelWriteHalf<Msg>,
    handle: Handle,
    setup: ChannelSetup,
    start: Start,
) {
    let span = info_span!("relay", session = %conn.id, user = %username, target = %target, action = start.action(), channel = %id);
    async move {
        match prepare(
            &conn,
            &username,
            &target,
            account.as_deref(),
            &setup,
            &start,
        )
        .await
        {
            Ok(ready) => run(conn, id, rx, tx, handle, ready).await,
            Err(message) => fail(&tx, &message).await,
        }
    }
    .instrument(span)
    .await
}

/// A target channel started and ready to bridge.
pub(crate) struct Ready {
    link: Arc<link::TargetLink>,
    channel: Channel<russh::client::Msg>,
    decision: AuthorizeResponse,
}

/// Everything before the bridge: authorise, reach and log in to the target, start the
/// channel. `Err` is a message for the user; nothing has been written to the client yet.
pub(crate) async fn prepare(
    conn: &Arc<Conn>,
    username: &str,
    target: &str,
    account: Option<&str>,
    setup: &ChannelSetup,
    start: &Start,
) -> Result<Ready, String> {
    if let Some(message) = conn.link_error.get() {
        return Err(message.clone());
    }
    let ask = match conn.link.get() {
        Some(link) => LoginAsk {
            requested: link.account.clone(),
            configured: link.configured.clone(),
        },
        None => LoginAsk::for_target(conn, username, target, account).await?,
    };
    let main = authorize(conn, username, target, start.action(), &ask);
    let decision = if setup.pty.is_some() {
        let (main, pty) = tokio::join!(main, authorize(conn, username, target, "pty", &ask));
        pty.and(main)
    } else {
        main.await
    }?;
    let link = match conn
        .link
        .get_or_try_init(|| link::open(conn, &decision))
        .await
    {
        Ok(link) if link.name == decision.target_name => link.clone(),
        Ok(_) => return Err("this connection is already relaying to another target".into()),
        Err(message) => return Err(message),
    };
    let channel = open_target_channel(&link, setup, start).await?;
    Ok(Ready {
        link,
        channel,
        decision,
    })
}

/// Registers the session, tells the user a pending notice, and bridges.
pub(crate) async fn run(
    conn: Arc<Conn>,
    id: ChannelId,
    rx: ChannelReadHalf,
    tx: ChannelWriteHalf<Msg>,
    handle: Handle,
    ready: Ready,
) {
    crate::sessions::opened(&conn, &ready.decision).await;
    let notice = ready.link.notice.lock().ok().and_then(|mut n| n.take());
    if let Some(notice) = notice {
        let _ = tx
            .make_writer_ext(Some(1))
            .write_all(notice.as_bytes())
            .await;
    }
    bridge(conn, id, rx, tx, handle, ready.channel, ready.link).await;
}

async fn open_target_channel(
    link: &link::TargetLink,
    setup: &ChannelSetup,
    start: &Start,
) -> Result<Channel<russh::client::Msg>, String> {
    let name = &link.name;
    let lost = |e: russh::Error| format!("the connection to {name} failed: {e}");
    let mut channel = link
        .session
        .handle
        .channel_open_session()
        .await
        .map_err(lost)?;
    for (k, v) in &setup.env {
        channel
            .set_env(false, k.as_str(), v.as_str())
            .await
            .map_err(lost)?;
    }
    if let Some(p) = &setup.pty {
        channel
            .request_pty(
                false,
                &p.term,
                p.cols,
                p.rows,
                p.pix_width,
                p.pix_height,
                &p.modes,
            )
            .await
            .map_err(lost)?;
    }
    match start {
        Start::Shell => channel.request_shell(true).await,
        Start::Exec(command) => channel.exec(true, command.clone()).await,
        Start::Subsystem(sub) => channel.request_subsystem(true, sub.as_str()).await,
    }
    .map_err(lost)?;
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => return Ok(channel),
            Some(ChannelMsg::Failure) => {
                return Err(format!("{name} refused the {} request", start.action()));
            }
            None | Some(ChannelMsg::Close) => {
                return Err(format!("{name} closed the channel"));
            }
            Some(_) => {}
        }
    }
}

async fn bridge(
    conn: Arc<Conn>,
    id: ChannelId,
    mut rx: ChannelReadHalf,
    tx: ChannelWriteHalf<Msg>,
    handle: Handle,
    target: Channel<russh::client::Msg>,
    link: Arc<link::TargetLink>,
) {
    let (trx, ttx) = target.split();
    let pump = tokio::spawn(
        to_client(conn.clone(), trx, tx, handle, id, link).instrument(tracing::Span::current()),
    );
    let mut writer = ttx.make_writer();
    loop {
        match rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                if writer.write_all(&data).await.is_err() {
                    break;
                }
                conn.bytes_to_target
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            Some(ChannelMsg::Eof) => {
                let _ = ttx.eof().await;
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                pix_width,
                pix_height,
            }) => {
                let _ = ttx
                    .window_change(col_width, row_height, pix_width, pix_height)
                    .await;
            }
            Some(ChannelMsg::Signal { signal }) => {
                let _ = ttx.signal(signal).await;
            }
            None | Some(ChannelMsg::Close) => break,
            Some(_) => {}
        }
    }
    let _ = ttx.close().await;
    // The target answers a close with its own; do not wait forever for a dead one.
    if tokio::time::timeout(Duration::from_secs(5), pump)
        .await
        .is_err()
    {
        debug!("target channel did not close in time");
    }
}

async fn to_client(
    conn: Arc<Conn>,
    mut trx: ChannelReadHalf,
    tx: ChannelWriteHalf<Msg>,
    handle: Handle,
    id: ChannelId,
    link: Arc<link::TargetLink>,
) {
    let name = &link.name;
    let mut out = tx.make_writer();
    let mut err = tx.make_writer_ext(Some(1));
    let mut exited = false;
    while let Some(msg) = trx.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                if out.write_all(&data).await.is_err() {
                    break;
                }
                conn.bytes_to_client
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            ChannelMsg::ExtendedData { data, .. } if err.write_all(&data).await.is_err() => break,
            ChannelMsg::Eof => {
                let _ = tx.eof().await;
            }
            ChannelMsg::ExitStatus { exit_status } => {
                exited = true;
                let _ = tx.exit_status(exit_status).await;
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => {
                exited = true;
                let _ = handle
                    .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                    .await;
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    // russh ends the channel's stream both on a close and when the whole connection dies;
    // only the second leaves the session closed. Give its teardown a moment to show.
    let mut lost = false;
    if !exited {
        for _ in 0..10 {
            if link.session.handle.is_closed() {
                lost = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    if lost {
        warn!(target = %name, "target connection lost mid-session");
        let _ = err
            .write_all(format!("\r\nphirepass: the connection to {name} was lost\r\n").as_bytes())
            .await;
        let _ = tx.exit_status(255).await;
        let _ = tx.eof().await;
    }
    let _ = tx.close().await;
}
