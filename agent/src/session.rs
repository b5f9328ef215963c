//! One connection to the gateway: dial, authenticate, then serve control
//! messages and tunnel frames until the link dies or shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use phirepass_tunnel::{LinkMessage, NodeControl};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::task::TaskTracker;

use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::stats::StatsSampler;
use crate::status_board::StatusBoard;
use crate::streams::{OpenCtx, Outbound, Streams, send_control};

/// How long the gateway has to answer `Auth`.
const AUTH_TIMEOUT: Duration = Duration::from_secs(15);
/// An authenticated connection that lasted this long resets the backoff.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Largest WebSocket message accepted (a tunnel frame is ~32 KiB).
pub const MAX_MESSAGE: usize = 1 << 20;
/// Writer messages flushed together at most.
const WRITE_BATCH: usize = 64;

fn now_ms() -> u64 {
    u64::try_from(phirepass_runtime::clock::now_millis()).unwrap_or_default()
}

/// How a connection ended, when the agent should try again.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    Shutdown,
    Lost {
        reason: String,
        stable: bool,
    },
    /// Another live connection holds this node: wait `retry_after`, do not reconnect now.
    Refused {
        reason: String,
        retry_after: Duration,
    },
}

/// The shortest and longest wait after a refusal, whatever the gateway asks.
const REFUSED_RETRY_MIN: Duration = Duration::from_secs(5);
const REFUSED_RETRY_MAX: Duration = Duration::from_secs(600);

/// A heartbeat: host stats, the ports tunnels may reach, and the last SSH check.
fn heartbeat(config: &AgentConfig, sampler: &mut StatsSampler, ssh: Option<bool>) -> NodeControl {
    let mut stats = sampler.sample();
    stats.allowed_ports = Some(config.allowed_ports.iter().copied().collect());
    stats.ssh_reachable = ssh;
    NodeControl::Heartbeat { stats }
}

fn ws_config() -> WebSocketConfig {
    // Small buffers keep an idle agent's footprint low.
    WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(2 * MAX_MESSAGE)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Resets every stream of the connection however the session ends.
struct CloseStreams(Arc<Streams>);

impl Drop for CloseStreams {
    fn drop(&mut self) {
        self.0.close_all("gateway connection lost");
    }
}

fn lost(reason: impl Into<String>, authed_at: Option<Instant>) -> Result<SessionEnd, AgentError> {
    let stable = authed_at.is_some_and(|t| t.elapsed() >= STABLE_AFTER);
    Ok(SessionEnd::Lost {
        reason: reason.into(),
        stable,
    })
}

/// What lasts for the whole agent run, across reconnects.
pub(crate) struct RunShared {
    pub pins: Arc<crate::pins::Pins>,
    pub commands: Arc<crate::commands::Commands>,
    pub board: StatusBoard,
    /// Tells the gateway that a reconnect comes from this same run (see NodeControl::Auth).
    pub instance: String,
}

pub(crate) async fn run<F: Future<Output = ()>>(
    config: &Arc<AgentConfig>,
    shared: &RunShared,
    token: &str,
    sampler: &mut StatsSampler,
    ssh: &mut watch::Receiver<Option<bool>>,
    mut shutdown: Pin<&mut F>,
) -> Result<SessionEnd, AgentError> {
    // Built per connection: a replaced CA file is read at the next reconnect.
    let tls = match crate::tls::client_config(config.gateway_ca.as_deref()) {
        Ok(tls) => tls,
        Err(e) => return lost(e.to_string(), None),
    };
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        config.server_url.as_str(),
        Some(ws_config()),
        true,
        Some(tokio_tungstenite::Connector::Rustls(tls)),
    );
    let ws = tokio::select! {
        () = &mut shutdown => return Ok(SessionEnd::Shutdown),
        res = connect => match res {
            Ok((ws, _response)) => ws,
            Err(e) => return lost(format!("cannot connect to {}: {e}", config.server_url), None),
        },
    };
    tracing::info!(url = %config.server_url, "connected to the gateway");
    let (mut ws_tx, mut ws_rx) = ws.split();

    // The single writer: everything for the gateway goes through `tx`.
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    let writer = async move {
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            let mut batch = 0;
            while let Some(out) = next.take() {
                match out {
                    Outbound::Message(bytes) => ws_tx.feed(Message::Binary(bytes)).await?,
                    Outbound::Close => return ws_tx.close().await,
                }
                batch += 1;
                if batch < WRITE_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            ws_tx.flush().await?;
        }
        Ok(())
    };
    tokio::pin!(writer);

    let streams = Arc::new(Streams::default());
    let _close_streams = CloseStreams(streams.clone());
    let ctx = OpenCtx {
        config: config.clone(),
        streams: streams.clone(),
        tx: tx.clone(),
        stream_cfg: config.stream.clone(),
        tasks: TaskTracker::new(),
        pins: shared.pins.clone(),
        node_id: Arc::new(std::sync::OnceLock::new()),
        commands: shared.commands.clone(),
    };
    let version = env!("CARGO_PKG_VERSION").to_owned();
    let _ = send_control(
        &tx,
        NodeControl::Auth {
            token: token.to_owned(),
            version,
            instance: shared.instance.clone(),
        },
    );

    let ping_every = config.ping_interval;
    let mut heartbeat = tokio::time::interval_at(
        Instant::now() + config.stats_refresh_interval,
        config.stats_refresh_interval,
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let silence_limit = ping_every * 3;
    let dead = tokio::time::sleep(silence_limit);
    tokio::pin!(dead);
    let auth_deadline = tokio::time::sleep(AUTH_TIMEOUT);
    tokio::pin!(auth_deadline);
    let mut authed_at: Option<Instant> = None;
    let mut nonce = 0u64;
    let mut ssh_checks = true;

    loop {
        tokio::select! {
            () = &mut shutdown => {
                streams.close_all("agent shutting down");
                let _ = tx.send(Outbound::Close);
                // Give the close frame a moment to leave, and the reset streams a moment to
                // close their local connections.
                ctx.tasks.close();
                let drained = async { tokio::join!(&mut writer, ctx.tasks.wait()) };
                let _ = tokio::time::timeout(Duration::from_secs(1), drained).await;
                return Ok(SessionEnd::Shutdown);
            }
            res = &mut writer => {
                let reason = match res {
                    Ok(()) => "writer stopped".to_owned(),
                    Err(e) => format!("write failed: {e}"),
                };
                return lost(reason, authed_at);
            }
            () = &mut auth_deadline, if authed_at.is_none() => {
                return lost("the gateway did not answer the auth request", None);
            }
            () = &mut dead => {
                return lost(format!("no traffic from the gateway for {}s", silence_limit.as_secs()), authed_at);
            }
            _ = heartbeat.tick(), if authed_at.is_some() => {
                let _ = send_control(&tx, self::heartbeat(config, sampler, *ssh.borrow()));
                shared.board.heartbeat_sent(now_ms());
                tracing::debug!(streams = streams.len(), "heartbeat sent");
            }
            // A changed SSH check is reported at once, not at the next heartbeat.
            changed = ssh.changed(), if authed_at.is_some() && ssh_checks => {
                match changed {
                    Ok(()) => {
                        let _ = send_control(&tx, self::heartbeat(config, sampler, *ssh.borrow_and_update()));
                    }
                    Err(_) => ssh_checks = false,
                }
            }
            _ = ping.tick() => {
                nonce = nonce.wrapping_add(1);
                let _ = send_control(&tx, NodeControl::Ping { nonce });
            }
            msg = ws_rx.next() => {
                dead.as_mut().reset(Instant::now() + silence_limit);
                let bytes = match msg {
                    None => return lost("connection closed", authed_at),
                    Some(Err(e)) => return lost(format!("read failed: {e}"), authed_at),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Close(frame))) => {
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        return lost(format!("the gateway closed the connection: {reason}"), authed_at);
                    }
                    // WebSocket pings are answered by tungstenite itself.
                    Some(Ok(_)) => continue,
                };
                if let Some(end) = on_message(bytes, &ctx, shared, &mut authed_at, sampler, ssh)? {
                    return Ok(end);
                }
            }
        }
    }
}

/// Handles one binary message; `Some` ends the session.
fn on_message(
    bytes: Bytes,
    ctx: &OpenCtx,
    shared: &RunShared,
    authed_at: &mut Option<Instant>,
    sampler: &mut StatsSampler,
    ssh: &mut watch::Receiver<Option<bool>>,
) -> Result<Option<SessionEnd>, AgentError> {
    let control = match LinkMessage::decode(bytes) {
        Ok(LinkMessage::Frame { stream_id, frame }) => {
            if !ctx.streams.deliver(stream_id, frame) {
                tracing::debug!(%stream_id, "frame for an unknown stream dropped");
            }
            return Ok(None);
        }
        Ok(LinkMessage::Control(control)) => control,
        Err(error) => {
            tracing::warn!(%error, "undecodable message from the gateway ignored");
            return Ok(None);
        }
    };
    match control {
        NodeControl::AuthOk { node_id, node_name } => {
            tracing::info!(%node_id, %node_name, "authenticated with the gateway");
            // Tickets name the node: only this id's opens pass.
            shared
                .board
                .connected(&node_id, &node_name, &ctx.config.server_url, now_ms());
            let _ = ctx.node_id.set(node_id);
            *authed_at = Some(Instant::now());
            // The self-report first: the gateway keeps it with the node's presence.
            let status = shared.board.status();
            let _ = send_control(&ctx.tx, NodeControl::Status { status });
            let ssh = *ssh.borrow_and_update();
            let _ = send_control(&ctx.tx, heartbeat(&ctx.config, sampler, ssh));
            shared.board.heartbeat_sent(now_ms());
        }
        NodeControl::AuthFailed { reason } => return Err(AgentError::Rejected(reason)),
        NodeControl::Refused {
            reason,
            retry_after_secs,
        } => {
            let retry_after =
                Duration::from_secs(retry_after_secs).clamp(REFUSED_RETRY_MIN, REFUSED_RETRY_MAX);
            return Ok(Some(SessionEnd::Refused {
                reason,
                retry_after,
            }));
        }
        NodeControl::Disconnect {
            reason,
            fatal: true,
        } => return Err(AgentError::Disconnected(reason)),
        NodeControl::Disconnect {
            reason,
            fatal: false,
        } => {
            let end = lost(
                format!("the gateway asked to reconnect: {reason}"),
                *authed_at,
            )?;
            return Ok(Some(end));
        }
        NodeControl::Ping { nonce } => {
            let _ = send_control(&ctx.tx, NodeControl::Pong { nonce });
        }
        NodeControl::Pong { .. } => {}
        NodeControl::TicketKeys { endorsements, keys } => {
            ctx.pins.first_use(&keys);
            ctx.pins.accept(&endorsements);
        }
        NodeControl::Open { request } if authed_at.is_some() => crate::streams::open(ctx, request),
        NodeControl::Open { request } => {
            let error = Some("not authenticated".to_owned());
            let _ = send_control(
                &ctx.tx,
                NodeControl::OpenResult {
                    stream_id: request.stream_id,
                    error,
                },
            );
        }
        // Agent-to-gateway messages; never log their content (Auth has the token).
        NodeControl::Auth { .. }
        | NodeControl::Heartbeat { .. }
        | NodeControl::OpenResult { .. }
        | NodeControl::Status { .. }
        | NodeControl::Audit { .. } => {
            tracing::debug!("unexpected control message ignored");
        }
    }
    Ok(None)
}
