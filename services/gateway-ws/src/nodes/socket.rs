//! `GET /api/nodes/ws`: agents connect here. The instance that holds an agent subscribes to the
//! node's subjects and relays tunnel frames verbatim between NATS and the agent's WebSocket, so
//! any edge can reach the node. Sequencing and credit are end to end (edge <-> agent).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use phirepass_proto::authz::{Node, VerifyNodeTokenRequest};
use phirepass_runtime::clock::now_millis;
use phirepass_tunnel::frame::Frame;
use phirepass_tunnel::node_link::{LinkMessage, NodeControl};
use phirepass_tunnel::{NodeSubject, OpenReply, OpenRequest, valid_token};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::commands::audit::{AgentAuditRelay, LinkNode};
use crate::http::client_ip::client_ip;
use crate::nodes::claim::{self, Claimant, REFUSED_RETRY};
use crate::nodes::presence::{Identity, NodePresenceReporter};
use crate::nodes::routes::{FIN_FROM_AGENT, FIN_FROM_EDGE, Routes};
use crate::state::{AppState, HeldNode, Kick};

/// Largest message an agent may send: a tunnel frame plus headroom.
const MAX_AGENT_MESSAGE: usize = 1024 * 1024;
/// Small socket buffers keep an idle agent connection cheap (the 1,000-agent budget is 64 KiB each).
const AGENT_BUFFER: usize = 4 * 1024;
/// An agent that sends nothing (not even a ping) for this long is considered gone.
const AGENT_IDLE_TIMEOUT: Duration = Duration::from_secs(95);

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // ip:port when the peer is the agent itself, the forwarded ip behind a trusted proxy.
    let ip = client_ip(&state.config, peer, &headers);
    let agent_addr = if ip == peer.ip().to_string() {
        peer.to_string()
    } else {
        ip
    };
    ws.max_message_size(MAX_AGENT_MESSAGE)
        .read_buffer_size(AGENT_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            let tasks = state.tasks.clone();
            tasks.track_future(async move {
                if let Err(e) = serve_agent(state, socket, agent_addr).await {
                    debug!(error = %e, "agent connection ended");
                }
            })
        })
}

type Outbox = mpsc::UnboundedSender<Message>;

fn send(outbox: &Outbox, msg: LinkMessage) {
    // A closed outbox means the writer task ended; the read loop notices and cleans up.
    let _ = outbox.send(Message::Binary(msg.encode()));
}

/// The per-connection facts `relay` records for this agent.
struct Connection {
    node: Node,
    conn_id: u64,
    agent_addr: String,
    instance: String,
}

async fn serve_agent(
    state: Arc<AppState>,
    socket: WebSocket,
    agent_addr: String,
) -> Result<(), String> {
    let (mut sink, mut stream) = socket.split();
    let (node, instance) = match tokio::time::timeout(
        state.config.auth_deadline,
        authenticate(&state, &mut stream),
    )
    .await
    {
        Ok(Ok(authed)) => authed,
        Ok(Err(reason)) => {
            let msg = LinkMessage::Control(NodeControl::AuthFailed {
                reason: reason.clone(),
            });
            let _ = sink.send(Message::Binary(msg.encode())).await;
            let _ = sink.close().await;
            return Err(reason);
        }
        Err(_) => return Err("agent did not authenticate in time".into()),
    };
    let conn_id = rand::random::<u64>();
    let claimant = Claimant {
        node: &node,
        conn_id: &format!("{conn_id:016x}"),
        agent_addr: &agent_addr,
        instance: &instance,
    };
    if let Err(reason) = claim::claim(&state, &claimant).await {
        info!(node = %node.name, from = %agent_addr, "second connection for a connected node refused");
        let msg = LinkMessage::Control(NodeControl::Refused {
            reason: reason.clone(),
            retry_after_secs: REFUSED_RETRY.as_secs(),
        });
        let _ = sink.send(Message::Binary(msg.encode())).await;
        let _ = sink.close().await;
        return Err(reason);
    }
    let span = info_span!("agent", node = %node.name, node_id = %node.node_id, gateway = %state.config.gateway_id);
    async move {
        let (outbox, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(msg) = outgoing.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        send(
            &outbox,
            LinkMessage::Control(NodeControl::AuthOk {
                node_id: node.node_id.clone(),
                node_name: node.name.clone(),
            }),
        );
        let conn = Connection {
            node,
            conn_id,
            agent_addr,
            instance,
        };
        let result = relay(&state, &conn, &outbox, &mut stream).await;
        drop(outbox);
        let _ = writer.await;
        result
    }
    .instrument(span)
    .await
}

async fn authenticate(
    state: &AppState,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<(Node, String), String> {
    let first = loop {
        match stream.next().await {
            Some(Ok(Message::Binary(b))) => break b,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(_)) => return Err("expected a binary auth message".into()),
            Some(Err(e)) => return Err(format!("websocket error: {e}")),
            None => return Err("closed before auth".into()),
        }
    };
    let (token, instance) = match LinkMessage::decode(first) {
        Ok(LinkMessage::Control(NodeControl::Auth {
            token, instance, ..
        })) => (token, instance),
        Ok(_) => return Err("the first message must be auth".into()),
        Err(e) => return Err(format!("malformed auth message: {e}")),
    };
    match state
        .authz
        .clone()
        .verify_node_token(VerifyNodeTokenRequest { token })
        .await
    {
        Ok(node) => Ok((node.into_inner(), instance)),
        Err(s) if s.code() == tonic::Code::Unauthenticated => {
            warn!("agent presented an invalid node token");
            Err("node token rejected: unknown, revoked or expired".into())
        }
        Err(s) => {
            warn!(code = ?s.code(), "token verification failed");
            Err("token verification unavailable, try again later".into())
        }
    }
}

async fn relay(
    state: &Arc<AppState>,
    conn: &Connection,
    outbox: &Outbox,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<(), String> {
    let (node, conn_id) = (&conn.node, conn.conn_id);
    let subjects = &state.subjects;
    let mut bus_rx = state
        .bus
        .subscribe(&subjects.node_wildcard(&node.node_id))
        .await
        .map_err(|e| format!("bus subscribe failed: {e}"))?;
    let (kick_tx, mut kick_rx) = mpsc::unbounded_channel::<Kick>();
    let last_seen = Arc::new(AtomicI64::new(now_millis()));
    let replaced = state.nodes().insert(
        node.node_id.clone(),
        HeldNode {
            conn_id,
            token_id: node.token_id.clone(),
            kick: kick_tx.clone(),
            agent_addr: conn.agent_addr.clone(),
            agent_instance: conn.instance.clone(),
            connected_at_ms: now_millis(),
            last_seen_ms: last_seen.clone(),
        },
    );
    // Only a connection silent past the takeover time is replaced (see `claim`).
    if let Some(old) = replaced {
        let silent = Duration::from_millis((now_millis() - old.last_heard()).max(0) as u64);
        let _ = old.kick.send(Kick {
            reason: format!(
                "another agent with this node's token connected after this connection was silent for {} s",
                silent.as_secs()
            ),
            fatal: false,
        });
    }
    let reporter = NodePresenceReporter::start(
        state.clone(),
        node.clone(),
        Identity {
            conn_id: format!("{conn_id:016x}"),
            agent_addr: conn.agent_addr.clone(),
            instance: conn.instance.clone(),
            last_seen: last_seen.clone(),
            kick: kick_tx,
        },
    );
    info!("agent connected");
    let mut link = Link {
        reporter,
        audit: AgentAuditRelay::start(
            state.audit.clone(),
            LinkNode {
                node_id: node.node_id.clone(),
                node_name: node.name.clone(),
                gateway_id: state.config.gateway_id.clone(),
            },
        ),
    };

    let mut routes = Routes::default();
    let mut idle = Box::pin(tokio::time::sleep(AGENT_IDLE_TIMEOUT));
    let outcome = loop {
        tokio::select! {
            msg = stream.next() => {
                idle.as_mut().reset(tokio::time::Instant::now() + AGENT_IDLE_TIMEOUT);
                last_seen.store(now_millis(), Ordering::Relaxed);
                match msg {
                    Some(Ok(Message::Binary(b))) => {
                        if let Err(e) = from_agent(state, b, outbox, &mut routes, &mut link).await {
                            warn!(error = %e, "agent protocol error");
                            break Err(e);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break Ok(()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Err(format!("websocket error: {e}")),
                }
            }
            msg = bus_rx.next() => match msg {
                Some(msg) => from_bus(state, &node.node_id, msg, outbox, &mut routes).await,
                None => break Err("bus subscription ended".into()),
            },
            kick = kick_rx.recv() => {
                if let Some(kick) = kick {
                    info!(reason = %kick.reason, fatal = kick.fatal, "disconnecting agent");
                    send(outbox, LinkMessage::Control(NodeControl::Disconnect { reason: kick.reason, fatal: kick.fatal }));
                }
                break Ok(());
            }
            _ = &mut idle => break Err("agent went silent".into()),
        }
    };
    drop(bus_rx);
    {
        let mut nodes = state.nodes();
        if nodes
            .get(&node.node_id)
            .is_some_and(|h| h.conn_id == conn_id)
        {
            nodes.remove(&node.node_id);
        }
    }
    reset_streams(state, &routes, "node disconnected").await;
    link.reporter.stop().await;
    link.audit.finish().await;
    info!("agent disconnected");
    outcome
}

/// What the link keeps about the agent besides its streams: presence and audit relay.
struct Link {
    reporter: NodePresenceReporter,
    audit: AgentAuditRelay,
}

/// Largest self-report an agent may send (its declared commands); bigger ones are ignored.
const MAX_AGENT_STATUS: usize = 128 * 1024;

async fn from_agent(
    state: &AppState,
    raw: Bytes,
    outbox: &Outbox,
    routes: &mut Routes,
    link: &mut Link,
) -> Result<(), String> {
    match LinkMessage::decode(raw).map_err(|e| format!("malformed message: {e}"))? {
        LinkMessage::Frame { stream_id, frame } => {
            let Some(subject) = routes.edges.get(&stream_id) else {
                return Ok(()); // a late frame for a stream already gone
            };
            state
                .bus
                .publish(subject, Vec::new(), frame.clone())
                .await
                .map_err(|e| format!("bus publish: {e}"))?;
            routes.observe(stream_id, &frame, FIN_FROM_AGENT);
        }
        LinkMessage::Control(NodeControl::OpenResult { stream_id, error }) => {
            if let Some(reply) = routes.pending_opens.remove(&stream_id) {
                if error.is_some() {
                    routes.edges.remove(&stream_id);
                }
                let body = serde_json::to_vec(&OpenReply { error }).unwrap_or_default();
                state
                    .bus
                    .publish(&reply, Vec::new(), body.into())
                    .await
                    .map_err(|e| format!("bus publish: {e}"))?;
            }
        }
        LinkMessage::Control(NodeControl::Heartbeat { stats }) => link.reporter.update(stats),
        LinkMessage::Control(NodeControl::Status { status }) => {
            match serde_json::to_string(&status) {
                Ok(json) if json.len() <= MAX_AGENT_STATUS => link.reporter.set_status(json),
                Ok(json) => warn!(size = json.len(), "agent status too large; ignored"),
                Err(e) => warn!(error = %e, "agent status not encodable; ignored"),
            }
        }
        LinkMessage::Control(NodeControl::Audit { event }) => link.audit.relay(event),
        LinkMessage::Control(NodeControl::Ping { nonce }) => {
            send(outbox, LinkMessage::Control(NodeControl::Pong { nonce }));
        }
        LinkMessage::Control(NodeControl::Pong { .. }) => {}
        LinkMessage::Control(other) => {
            debug!(message = ?std::mem::discriminant(&other), "ignoring unexpected control message");
        }
    }
    Ok(())
}

async fn from_bus(
    state: &AppState,
    node_id: &str,
    msg: phirepass_bus::Message,
    outbox: &Outbox,
    routes: &mut Routes,
) {
    match state.subjects.parse_node_subject(node_id, &msg.subject) {
        Some(NodeSubject::Open) => {
            let Some(reply) = msg.reply else { return };
            match serde_json::from_slice::<OpenRequest>(&msg.payload) {
                Ok(req) if valid_token(&req.edge_id) => {
                    let span =
                        info_span!("relay_open", stream = %req.stream_id, edge = %req.edge_id);
                    phirepass_runtime::telemetry::follow(&span, &msg.headers);
                    // Nothing reaches the agent without authz's ticket for exactly this open.
                    if let Err(e) = state.tickets.check_open(node_id, &req).await {
                        span.in_scope(
                            || warn!(target = ?req.target, refusal = %e, "open refused: ticket"),
                        );
                        let error = Some(format!("refused by the gateway: {e}"));
                        let body = serde_json::to_vec(&OpenReply { error }).unwrap_or_default();
                        let _ = state.bus.publish(&reply, Vec::new(), body.into()).await;
                        return;
                    }
                    let sent = &mut routes.endorsements_sent;
                    state.tickets.sync_agent(sent, |m| send(outbox, m));
                    span.in_scope(|| debug!(target = ?req.target, "forwarding open to the agent"));
                    let subject = state.subjects.edge_stream(&req.edge_id, req.stream_id);
                    routes.edges.insert(req.stream_id, subject);
                    routes.pending_opens.insert(req.stream_id, reply);
                    send(
                        outbox,
                        LinkMessage::Control(NodeControl::Open { request: req }),
                    );
                }
                _ => warn!("ignoring malformed open request"),
            }
        }
        Some(NodeSubject::Stream(stream_id)) => {
            routes.observe(stream_id, &msg.payload, FIN_FROM_EDGE);
            send(
                outbox,
                LinkMessage::Frame {
                    stream_id,
                    frame: msg.payload,
                },
            );
        }
        None => {}
    }
}

/// Tells every edge with a stream through this agent that it is gone, so nobody waits for a timeout.
async fn reset_streams(state: &AppState, routes: &Routes, reason: &str) {
    for subject in routes.edges.values() {
        let frame = Frame::Reset {
            reason: reason.to_string(),
        }
        .encode();
        let _ = state.bus.publish(subject, Vec::new(), frame).await;
    }
    for (stream_id, reply) in &routes.pending_opens {
        let body = serde_json::to_vec(&OpenReply {
            error: Some(reason.to_string()),
        })
        .unwrap_or_default();
        debug!(stream = %stream_id, "failing pending open");
        let _ = state.bus.publish(reply, Vec::new(), body.into()).await;
    }
}
