//! The bus side of a tunnel session: answers TunnelStream opens by opening a `forwarded-tcpip`
//! channel to the SSH client. Each open is handled in its own task, so a slow or refused one
//! never holds up another.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use phirepass_tunnel::{IncomingOpen, StreamConfig, Target};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use super::pipe;
use crate::edge::Conn;

/// How long the client may take to connect to its local service and confirm the channel
/// (below the opener's own timeout, so it hears the reason).
const CHANNEL_OPEN_TIME: Duration = Duration::from_secs(8);

/// Listens on `node_id` (subscribed when this returns) until the task is aborted.
pub(super) async fn start(conn: Arc<Conn>, node_id: String) -> Result<JoinHandle<()>, String> {
    let edge = &conn.edge;
    let mut listener = phirepass_tunnel::listen(
        edge.bus.clone(),
        edge.subjects.clone(),
        &node_id,
        // Tunnels carry bulk HTTP/TCP bytes, unlike the relay's interactive SSH.
        StreamConfig::bulk(),
    )
    .await
    .map_err(|e| {
        warn!(error = %e, node = %node_id, "cannot listen for tunnel streams");
        "the message bus is unavailable; try again later".to_string()
    })?;
    let span = info_span!("tunnel_node", session = %conn.id, node = %node_id);
    Ok(tokio::spawn(
        async move {
            debug!("listening for tunnel streams");
            while let Some(open) = listener.next().await {
                tokio::spawn(
                    serve_open(conn.clone(), node_id.clone(), open)
                        .instrument(tracing::Span::current()),
                );
            }
            debug!("tunnel listener ended");
        }
        .instrument(span),
    ))
}

async fn serve_open(conn: Arc<Conn>, node_id: String, open: IncomingOpen) {
    let request = open.request().clone();
    // Nothing reaches the client without authz's ticket for exactly this open.
    if let Err(e) = conn
        .edge
        .tickets
        .check_open(&conn.edge, &node_id, &request)
        .await
    {
        warn!(edge = %request.edge_id, stream = %request.stream_id, refusal = %e, "open refused: ticket");
        let _ = open.reject(&format!("refused by the ssh edge: {e}")).await;
        return;
    }
    let Target::Port { port } = request.target else {
        let _ = open
            .reject("this node is an ssh -R tunnel: only port streams")
            .await;
        return;
    };
    let Some(forward) = conn.tunnels.find(&node_id, port) else {
        debug!(port, "open for a port this tunnel does not publish");
        let _ = open
            .reject(&format!("no tunnel on port {port} in this session"))
            .await;
        return;
    };
    let Some(handle) = conn.handle.get().cloned() else {
        let _ = open.reject("the ssh session is not ready").await;
        return;
    };
    // The client connects to its local service before it confirms: open the channel first,
    // so a refusal reaches the opener as a reason instead of a reset stream.
    let channel = tokio::time::timeout(
        CHANNEL_OPEN_TIME,
        handle.channel_open_forwarded_tcpip(
            forward.address.clone(),
            u32::from(port),
            "127.0.0.1",
            0,
        ),
    )
    .await;
    let channel = match channel {
        Ok(Ok(channel)) => channel,
        Ok(Err(error)) => {
            info!(name = %forward.name, port, %error, "ssh client refused the tunnel channel");
            let _ = open
                .reject(&format!(
                    "the ssh client of tunnel {} could not connect to its local service",
                    forward.name
                ))
                .await;
            return;
        }
        Err(_) => {
            info!(name = %forward.name, port, "ssh client did not confirm the tunnel channel in time");
            let _ = open
                .reject(&format!(
                    "the ssh client of tunnel {} did not answer in time",
                    forward.name
                ))
                .await;
            return;
        }
    };
    let stream = match open.accept().await {
        Ok(stream) => stream,
        Err(error) => {
            warn!(%error, "accepting a tunnel stream failed");
            let _ = channel.close().await;
            return;
        }
    };
    forward.counters.connections.fetch_add(1, Ordering::Relaxed);
    debug!(name = %forward.name, port, edge = %request.edge_id, stream = %request.stream_id, "tunnel stream bridged");
    let (to_client, from_client) = pipe::bridge(stream, channel, &forward.counters).await;
    debug!(
        name = %forward.name,
        to_client,
        from_client,
        "tunnel stream ended"
    );
}
