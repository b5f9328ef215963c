//! Tunnel streams of one gateway connection: which targets may be opened,
//! the table of live streams, and the task that joins a stream to TCP.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use phirepass_tunnel::{
    FrameInput, FrameSink, LinkMessage, NodeControl, OpenRequest, SinkClosed, StreamConfig,
    StreamId, Target, TunnelStream,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::config::AgentConfig;

/// Refusal sent for a target outside the allowlist.
pub const NOT_ALLOWED: &str = "target not allowed";
/// Most streams one connection carries at once.
pub const MAX_STREAMS: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the session's writer task sends to the gateway.
#[derive(Debug)]
pub(crate) enum Outbound {
    Message(Bytes),
    Close,
}

pub(crate) type LinkTx = UnboundedSender<Outbound>;

pub(crate) fn send_control(tx: &LinkTx, control: NodeControl) -> Result<(), SinkClosed> {
    tx.send(Outbound::Message(LinkMessage::Control(control).encode()))
        .map_err(|_| SinkClosed)
}

/// The only address a target may reach: SSH_HOST:SSH_PORT for SSH,
/// 127.0.0.1:<port> for an allowlisted port.
pub fn resolve(config: &AgentConfig, target: &Target) -> Result<(String, u16), &'static str> {
    match target {
        Target::Ssh => Ok((config.ssh_host.clone(), config.ssh_port)),
        Target::Port { port } if config.allowed_ports.contains(port) => {
            Ok(("127.0.0.1".to_owned(), *port))
        }
        Target::Port { .. } => Err(NOT_ALLOWED),
        Target::Command(_) => Err("a command is not a TCP target"),
    }
}

/// Frames of one stream, wrapped as link messages for the writer task.
pub(crate) struct LinkSink {
    id: StreamId,
    tx: LinkTx,
}

impl LinkSink {
    pub(crate) fn new(id: StreamId, tx: LinkTx) -> Self {
        Self { id, tx }
    }
}

impl FrameSink for LinkSink {
    fn send(&self, frame: Bytes) -> Result<(), SinkClosed> {
        let message = LinkMessage::Frame {
            stream_id: self.id,
            frame,
        }
        .encode();
        self.tx
            .send(Outbound::Message(message))
            .map_err(|_| SinkClosed)
    }
}

#[derive(Default)]
struct Table {
    closed: bool,
    /// `None` while the TCP connection is being made.
    entries: HashMap<StreamId, Option<FrameInput>>,
}

/// Live streams of one connection. Shared by the session (which delivers
/// frames) and the stream tasks (which register and remove themselves).
#[derive(Default)]
pub(crate) struct Streams {
    table: Mutex<Table>,
}

impl Streams {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn reserve(&self, id: StreamId) -> Result<(), &'static str> {
        let mut table = self.lock();
        if table.closed {
            return Err("gateway connection lost");
        }
        if table.entries.len() >= MAX_STREAMS {
            return Err("too many streams");
        }
        match table.entries.entry(id) {
            Entry::Occupied(_) => Err("stream id in use"),
            Entry::Vacant(slot) => {
                slot.insert(None);
                Ok(())
            }
        }
    }

    /// False when the connection is gone (the caller abandons the stream).
    pub(crate) fn activate(&self, id: StreamId, input: FrameInput) -> bool {
        let mut table = self.lock();
        if table.closed {
            return false;
        }
        match table.entries.get_mut(&id) {
            Some(slot) => {
                *slot = Some(input);
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove(&self, id: StreamId) {
        self.lock().entries.remove(&id);
    }

    /// Hands a frame to its stream; false if no such live stream.
    pub(crate) fn deliver(&self, id: StreamId, frame: Bytes) -> bool {
        let input = self.lock().entries.get(&id).and_then(Clone::clone);
        match input {
            Some(input) => {
                input.deliver(frame);
                true
            }
            None => false,
        }
    }

    /// Resets every stream and refuses new ones.
    pub(crate) fn close_all(&self, reason: &str) {
        let drained: Vec<FrameInput> = {
            let mut table = self.lock();
            table.closed = true;
            table
                .entries
                .drain()
                .filter_map(|(_, input)| input)
                .collect()
        };
        for input in drained {
            input.reset(reason);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// Everything a stream task needs from its connection.
#[derive(Clone)]
pub(crate) struct OpenCtx {
    pub config: Arc<AgentConfig>,
    pub streams: Arc<Streams>,
    pub tx: LinkTx,
    pub stream_cfg: StreamConfig,
    /// The stream tasks, so shutdown can wait for them to let go of their connections.
    pub tasks: TaskTracker,
    /// authz's pinned ticket keys: every open's ticket is checked before anything is dialled.
    pub pins: Arc<crate::pins::Pins>,
    /// This node's id, from the gateway's `AuthOk`.
    pub node_id: Arc<std::sync::OnceLock<String>>,
    /// The host's declared commands and their limits (shared across reconnects).
    pub commands: Arc<crate::commands::Commands>,
}

/// Answers an `Open`: refuses at once, or spawns the stream's task, which
/// answers once the TCP connection is made (or failed).
pub(crate) fn open(ctx: &OpenCtx, request: OpenRequest) {
    let id = request.stream_id;
    let node_id = ctx.node_id.get().map(String::as_str).unwrap_or_default();
    let claims = match ctx.pins.verify(node_id, &request) {
        Ok(claims) => claims,
        Err(e) => {
            let reason = format!("refused by the agent: {e}");
            if let Target::Command(command) = &request.target {
                // Audited like every command refusal (no user: the ticket did not prove one).
                return crate::commands::link::refuse(ctx, id, command, "", reason);
            }
            tracing::warn!(stream_id = %id, edge_id = %request.edge_id, target = ?request.target, refusal = %e, "open refused: ticket");
            let _ = send_control(
                &ctx.tx,
                NodeControl::OpenResult {
                    stream_id: id,
                    error: Some(reason),
                },
            );
            return;
        }
    };
    if let Target::Command(command) = &request.target {
        return crate::commands::link::open(ctx, id, command, &claims.user);
    }
    let refusal = match resolve(&ctx.config, &request.target) {
        Ok(addr) => match ctx.streams.reserve(id) {
            Ok(()) => {
                let span =
                    tracing::info_span!("stream", stream_id = %id, edge_id = %request.edge_id);
                ctx.tasks
                    .spawn(run_stream(ctx.clone(), id, addr).instrument(span));
                return;
            }
            Err(reason) => reason,
        },
        Err(reason) => reason,
    };
    tracing::info!(stream_id = %id, target = ?request.target, refusal, "refused open request");
    let _ = send_control(
        &ctx.tx,
        NodeControl::OpenResult {
            stream_id: id,
            error: Some(refusal.to_owned()),
        },
    );
}

async fn run_stream(ctx: OpenCtx, id: StreamId, (host, port): (String, u16)) {
    let connected =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port))).await;
    let mut tcp = match connected {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return refuse(&ctx, id, format!("connect to {host}:{port} failed: {e}")),
        Err(_) => return refuse(&ctx, id, format!("connect to {host}:{port} timed out")),
    };
    let _ = tcp.set_nodelay(true);

    let sink = Arc::new(LinkSink {
        id,
        tx: ctx.tx.clone(),
    });
    // Sends our initial credit right away; the writer keeps it ahead of
    // the OpenResult, like the bus node side does.
    let (mut tunnel, input) = TunnelStream::new(id, sink, ctx.stream_cfg.clone());
    if !ctx.streams.activate(id, input.clone()) {
        return; // the connection went away meanwhile; dropping resets
    }
    if send_control(
        &ctx.tx,
        NodeControl::OpenResult {
            stream_id: id,
            error: None,
        },
    )
    .is_err()
    {
        ctx.streams.remove(id);
        return;
    }
    tracing::debug!(%host, port, "stream opened");

    // Preserves half-close both ways: EOF on one side becomes Fin/shutdown
    // on the other. Buffers match the tunnel's largest payload: each read
    // becomes one frame, so bigger reads mean fewer frames for bulk output.
    let copy_buffer = ctx.stream_cfg.max_payload;
    match tokio::io::copy_bidirectional_with_sizes(&mut tcp, &mut tunnel, copy_buffer, copy_buffer)
        .await
    {
        Ok((to_edge, to_target)) => tracing::debug!(to_edge, to_target, "stream finished"),
        Err(error) => tracing::debug!(%error, "stream ended with an error"),
    }
    drop(tunnel);
    drop(tcp);
    // Stay registered until the endpoint needs no more frames (final acks).
    input.closed().await;
    ctx.streams.remove(id);
}

fn refuse(ctx: &OpenCtx, id: StreamId, reason: String) {
    tracing::info!(reason, "open failed");
    ctx.streams.remove(id);
    let _ = send_control(
        &ctx.tx,
        NodeControl::OpenResult {
            stream_id: id,
            error: Some(reason),
        },
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "streams_tests.rs"]
mod tests;
