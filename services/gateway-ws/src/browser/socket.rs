//! `GET /api/web/ws`: the browser terminal. One WebSocket serves one user; it may open one
//! terminal at a time, and another after the first ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use phirepass_proto::authz::User;
use phirepass_proto::registry::SessionPresence;
use phirepass_runtime::clock::now_millis;
use russh::ChannelMsg;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::accounts::auth::verify_session;
use crate::accounts::cookie::{Jar, session_token};
use crate::browser::authorize::{authorize_node, refuse};
use crate::browser::kick::{KICKED, KickSlot};
use crate::browser::presence::SessionReporter;
use crate::browser::revocation::{LOGGED_OUT, LiveGuard};
use crate::browser::terminal::{
    Checked, Counters, Terminal, ask_for_password, check_node, open_terminal,
};
use crate::error::GatewayError;
use crate::http::client_ip::client_ip;
use crate::http::origin;
use crate::state::{AppState, WebConnection};
use phirepass_tunnel::browser_protocol::{
    ErrorKind, HEADER_LEN, MAX_PAYLOAD, WebControl, WebFrame,
};

pub(super) type WsTx = SplitSink<WebSocket, Message>;
type WsRx = SplitStream<WebSocket>;

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Every mode refuses other sites' pages (cross-site WebSocket hijacking).
    if !origin::allowed(&state.config, &headers) {
        warn!(origin = ?headers.get("origin"), "refused browser websocket from a foreign origin");
        return GatewayError::ForeignOrigin.into_response();
    }
    let cookie_token = session_token(Jar::of(&state.config, &headers), &headers);
    let ip = client_ip(&state.config, peer, &headers);
    ws.max_message_size(HEADER_LEN + MAX_PAYLOAD)
        .max_frame_size(HEADER_LEN + MAX_PAYLOAD)
        .on_upgrade(move |socket| {
            let span = info_span!("web", client_ip = %ip, conn = tracing::field::Empty);
            let tasks = state.tasks.clone();
            tasks.track_future(web_connection(state, socket, cookie_token, ip).instrument(span))
        })
}

pub(super) async fn send(tx: &mut WsTx, frame: WebFrame) -> bool {
    tx.send(Message::Binary(frame.encode())).await.is_ok()
}

/// Reads the next frame; `Err` carries a message for a protocol violation (the connection closes).
async fn next_frame(rx: &mut WsRx) -> Option<Result<WebFrame, String>> {
    loop {
        match rx.next().await? {
            Ok(Message::Binary(b)) => return Some(WebFrame::decode(b).map_err(|e| e.to_string())),
            Ok(Message::Text(_)) => {
                return Some(Err("text messages are not part of the protocol".into()));
            }
            Ok(Message::Close(_)) => return None,
            Ok(_) => continue,
            Err(e) => return Some(Err(format!("websocket error: {e}"))),
        }
    }
}

async fn web_connection(
    state: Arc<AppState>,
    socket: WebSocket,
    cookie_token: Option<String>,
    ip: String,
) {
    let (mut tx, mut rx) = socket.split();
    let (user, token) = match authenticate(&state, &mut rx, cookie_token).await {
        Ok(authed) => authed,
        Err(message) => {
            let _ = send(&mut tx, WebFrame::error(ErrorKind::Generic, message)).await;
            let _ = tx.close().await;
            return;
        }
    };
    let conn_id = format!("{:016x}", rand::random::<u64>());
    tracing::Span::current().record("conn", conn_id.as_str());
    state.web().insert(
        conn_id.clone(),
        WebConnection {
            id: conn_id.clone(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            client_ip: ip,
            node_id: None,
            connected_at_ms: now_millis(),
        },
    );
    info!(user = %user.username, "browser connected");
    // Ends the socket (and its terminal) once the session is logged out or access revoked.
    let mut live = state
        .live
        .register(&user.id, &user.username, Some(token.clone()));
    let conn = Conn {
        user: &user,
        id: &conn_id,
        token: &token,
    };
    let ok = WebControl::Ok {
        message: Some(format!("authenticated as {}", user.username)),
        session_id: None,
    };
    if send(&mut tx, WebFrame::control(ok)).await
        && let Err(reason) = control_loop(&state, &conn, &mut live, &mut tx, &mut rx).await
    {
        debug!(reason = %reason, "closing browser connection");
        let _ = send(&mut tx, WebFrame::error(ErrorKind::Generic, reason)).await;
    }
    let _ = tx.close().await;
    state.web().remove(&conn_id);
    info!(user = %user.username, "browser disconnected");
}

async fn authenticate(
    state: &AppState,
    rx: &mut WsRx,
    cookie_token: Option<String>,
) -> Result<(User, String), String> {
    let token = match cookie_token {
        Some(token) => token,
        None => match tokio::time::timeout(state.config.auth_deadline, next_frame(rx)).await {
            Ok(Some(Ok(WebFrame::Control(WebControl::Auth { token })))) => token,
            Ok(Some(Ok(_))) => return Err("not logged in: send auth first".into()),
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) => return Err("closed".into()),
            Err(_) => return Err("not logged in: auth timed out".into()),
        },
    };
    let user = verify_session(state, token.clone())
        .await
        .map_err(session_error)?;
    Ok((user, token))
}

fn session_error(e: GatewayError) -> String {
    match e {
        GatewayError::Unauthenticated => "not logged in: session invalid or expired".to_string(),
        other => other.public_message(),
    }
}

/// The authenticated browser connection: who, which connection, on which session.
struct Conn<'a> {
    user: &'a User,
    id: &'a str,
    token: &'a str,
}

/// Between terminals: wait for OpenTunnel, answer heartbeats, refuse everything else.
async fn control_loop(
    state: &Arc<AppState>,
    conn: &Conn<'_>,
    live: &mut LiveGuard,
    tx: &mut WsTx,
    rx: &mut WsRx,
) -> Result<(), String> {
    let (user, conn_id) = (conn.user, conn.id);
    // A node checked by an `open_tunnel` without a password, kept for the login that follows.
    let mut checked: Option<Checked> = None;
    loop {
        let frame = tokio::select! {
            reason = live.revoked() => return Err(reason),
            frame = next_frame(rx) => frame,
        };
        let Some(frame) = frame else { break };
        match frame? {
            WebFrame::Control(WebControl::Heartbeat) => {
                send(tx, WebFrame::control(WebControl::Heartbeat)).await;
            }
            WebFrame::Control(WebControl::OpenTunnel {
                node,
                username,
                password,
                cols,
                rows,
            }) => {
                // The session must still be valid now, not only when the socket opened.
                if let Err(e) = verify_session(state, conn.token.to_string()).await {
                    return Err(match e {
                        GatewayError::Unauthenticated => LOGGED_OUT.to_string(),
                        other => other.public_message(),
                    });
                }
                let Some((node_id, node_name)) =
                    authorize_node(state, user, conn_id, &node, &username, tx).await
                else {
                    continue;
                };
                // The node is checked live (online, sshd answering, SSH handshake) before the
                // browser asks for a password; that connection then carries the login.
                let mut node_check = match checked.take().filter(|c| c.usable_for(&node_id)) {
                    Some(c) => c,
                    None => match check_node(state, &node_id, &node_name, &user.username).await {
                        Ok(c) => c,
                        Err(failure) => {
                            refuse(tx, &node_name, failure).await;
                            continue;
                        }
                    },
                };
                let Some(password) = password.filter(|p| !p.is_empty()) else {
                    let mut ask = ask_for_password(&node_name, &username);
                    // A key pinned just now is told before anyone types a password.
                    if let Some(notice) = node_check.notice.take() {
                        ask = format!("{notice}\n{ask}");
                    }
                    checked = Some(node_check);
                    send(tx, WebFrame::error(ErrorKind::RequiresPassword, ask)).await;
                    continue;
                };
                match open_terminal(node_check, &node_name, &username, &password, (cols, rows))
                    .await
                {
                    Ok(terminal) => {
                        let node = (node_id.as_str(), node_name.as_str());
                        run_terminal(state, conn, live, node, terminal, (tx, rx)).await?
                    }
                    Err(failure) => refuse(tx, &node_name, failure).await,
                }
            }
            WebFrame::Control(WebControl::TunnelClosed { .. }) => {}
            WebFrame::Control(other) => {
                let m = format!("unexpected {} with no terminal open", control_name(&other));
                send(tx, WebFrame::error(ErrorKind::Generic, m)).await;
            }
            WebFrame::Ssh(_) => {
                send(tx, WebFrame::error(ErrorKind::Generic, "no terminal open")).await;
            }
        }
    }
    Ok(())
}

fn control_name(msg: &WebControl) -> &'static str {
    match msg {
        WebControl::Heartbeat => "heartbeat",
        WebControl::Auth { .. } => "auth",
        WebControl::OpenTunnel { .. } => "open_tunnel",
        WebControl::Resize { .. } => "resize",
        WebControl::TunnelClosed { .. } => "tunnel_closed",
        WebControl::Error { .. } => "error",
        WebControl::Ok { .. } => "ok",
    }
}

/// Bridges one terminal until the shell exits, the node goes away, or the browser closes it.
async fn run_terminal(
    state: &Arc<AppState>,
    conn: &Conn<'_>,
    live: &mut LiveGuard,
    (node_id, node_name): (&str, &str),
    terminal: Terminal,
    (tx, rx): (&mut WsTx, &mut WsRx),
) -> Result<(), String> {
    let (user, conn_id) = (conn.user, conn.id);
    live.set_target(Some((node_id, node_name)));
    let Terminal {
        handle,
        mut reader,
        writer,
        notice,
    } = terminal;
    let channel_id = writer.id();
    let session_id = conn_id.to_string();
    if let Some(c) = state.web().get_mut(conn_id) {
        c.node_id = Some(node_id.to_string());
    }
    let counters = Arc::new(Counters::default());
    let client_ip = state
        .web()
        .get(conn_id)
        .map(|c| c.client_ip.clone())
        .unwrap_or_default();
    let presence = SessionPresence {
        session_id: session_id.clone(),
        user_id: user.id.clone(),
        username: user.username.clone(),
        node_id: node_id.to_string(),
        gateway_id: state.config.gateway_id.clone(),
        target_name: node_name.to_string(),
        edge_kind: "web".into(),
        client_ip,
        ..Default::default()
    };
    let (_kick_slot, mut kicked) = KickSlot::register(state.clone(), &session_id);
    let reporter = SessionReporter::start(state.clone(), presence, counters.clone());
    info!(node_id = %node_id, "terminal opened");
    let ok = WebControl::Ok {
        message: Some("terminal open".into()),
        session_id: Some(session_id),
    };
    send(tx, WebFrame::control(ok)).await;
    if let Some(notice) = notice {
        let line = format!("phirepass: {notice}\r\n");
        send(tx, WebFrame::Ssh(bytes::Bytes::from(line))).await;
    }

    let mut exit_status = None;
    let mut reason = None;
    let result = loop {
        tokio::select! {
            _ = &mut kicked => {
                reason = Some(KICKED.into());
                let _ = writer.close().await;
                break Ok(());
            }
            revoked = live.revoked() => {
                reason = Some(revoked);
                let _ = writer.close().await;
                break Ok(());
            }
            msg = reader.wait() => match msg {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    counters.bytes_out.fetch_add(data.len() as u64, Ordering::Relaxed);
                    if !send(tx, WebFrame::Ssh(bytes::Bytes::copy_from_slice(&data))).await {
                        break Ok(());
                    }
                }
                Some(ChannelMsg::ExitStatus { exit_status: s }) => exit_status = Some(s),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => reason = Some(format!("killed by signal {signal_name:?}")),
                Some(ChannelMsg::Close) | None => break Ok(()),
                Some(_) => {}
            },
            frame = next_frame(rx) => match frame {
                None => break Ok(()),
                Some(Err(e)) => break Err(e),
                Some(Ok(WebFrame::Ssh(data))) => {
                    counters.bytes_in.fetch_add(data.len() as u64, Ordering::Relaxed);
                    // Through the session handle: russh queues against the SSH window itself,
                    // which never stalls when the server opened the channel with a zero window
                    // (ChannelWriteHalf::data did in russh 0.54).
                    if handle.data(channel_id, data).await.is_err() {
                        reason = Some("connection to the node was lost".into());
                        break Ok(());
                    }
                }
                Some(Ok(WebFrame::Control(WebControl::Resize { cols, rows }))) => {
                    let _ = writer.window_change(cols, rows, 0, 0).await;
                }
                Some(Ok(WebFrame::Control(WebControl::Heartbeat))) => {
                    send(tx, WebFrame::control(WebControl::Heartbeat)).await;
                }
                Some(Ok(WebFrame::Control(WebControl::TunnelClosed { .. }))) => {
                    reason = Some("closed by client".into());
                    let _ = writer.close().await;
                    break Ok(());
                }
                Some(Ok(WebFrame::Control(other))) => {
                    let m = format!("unexpected {} while a terminal is open", control_name(&other));
                    send(tx, WebFrame::error(ErrorKind::Generic, m)).await;
                }
            },
        }
    };
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    reporter.close().await;
    live.set_target(None);
    if let Some(c) = state.web().get_mut(conn_id) {
        c.node_id = None;
    }
    info!(node_id = %node_id, exit_status = ?exit_status, "terminal closed");
    if result.is_ok() {
        send(
            tx,
            WebFrame::control(WebControl::TunnelClosed {
                reason,
                exit_status,
            }),
        )
        .await;
    }
    result
}
