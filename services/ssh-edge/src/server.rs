//! The SSH listener: a cap on unauthenticated connections, a pre-auth deadline, and one task per
//! connection, so a stalled or hostile client only ever costs its own slot. On shutdown every
//! connection is told why and closed, and the listener waits (bounded) for their cleanup, which
//! unregisters sessions and tunnels.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::{Config, run_stream};
use russh::{Disconnect, MethodKind, MethodSet, SshId};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::edge::{Conn, Edge};
use crate::handler::EdgeHandler;
use crate::per_source::{Outcome, Refusal, SourceSlot};
use crate::{sessions, tunnels};

/// Matches `TargetSpec::interactive_timeout`: how long a person may take to answer.
const INTERACTIVE_ANSWER_TIME: Duration = Duration::from_secs(120);

/// How long shutdown waits for connections to finish their cleanup: under the 5 s a service set
/// gives each service to stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) fn russh_config(key: PrivateKey, post_quantum_only: bool) -> Config {
    Config {
        server_id: SshId::Standard("SSH-2.0-phirepass".into()),
        methods: MethodSet::from(
            &[
                MethodKind::PublicKey,
                MethodKind::Password,
                MethodKind::KeyboardInteractive,
            ][..],
        ),
        // Failures take at least this long whatever failed; the first "none" probe answers at once.
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        window_size: 8 * 1024 * 1024,
        preferred: crate::algorithms::preferred(post_quantum_only),
        max_auth_attempts: 10,
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        nodelay: true,
        ..Config::default()
    }
}

/// Accepts until `shutdown` resolves, then waits (at most [`DRAIN_TIMEOUT`]) for the
/// connections, which see the same `shutdown` and close.
pub(crate) async fn accept_loop<S>(
    edge: Arc<Edge>,
    listener: TcpListener,
    config: Arc<Config>,
    shutdown: S,
) where
    S: Future<Output = ()> + Clone + Send + 'static,
{
    let connections = TaskTracker::new();
    let stop = shutdown.clone();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => match edge.per_source.admit(peer.ip()) {
                    Ok(slot) => {
                        let span = info_span!("ssh_conn", %peer);
                        let task = connection(edge.clone(), config.clone(), socket, peer, slot, shutdown.clone());
                        connections.spawn(task.instrument(span));
                    }
                    Err(refusal) => refuse(socket, peer, refusal),
                },
                Err(error) => {
                    // e.g. EMFILE: back off instead of spinning.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    info!("ssh listener stopped");
    drop(listener);
    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait())
        .await
        .is_err()
    {
        warn!(
            left = connections.len(),
            "ssh connections still open after the drain timeout"
        );
    }
}

/// Closes a connection the per-source limits refused, before any key exchange: one line
/// (shown by `ssh -v`) and the end of the stream. Never waits on the peer.
fn refuse(socket: TcpStream, peer: SocketAddr, refusal: Refusal) {
    let line: &[u8] = match refusal {
        Refusal::Penalised(left) => {
            debug!(%peer, left_secs = left.as_secs(), "ssh connection refused: source penalised");
            b"phirepass: too many failed or incomplete logins from your address, retry later\r\n"
        }
        Refusal::TooMany => {
            debug!(%peer, "ssh connection refused: too many unauthenticated connections from this source");
            b"phirepass: too many unauthenticated connections from your address\r\n"
        }
    };
    let _ = socket.try_write(line);
}

async fn connection(
    edge: Arc<Edge>,
    config: Arc<Config>,
    socket: TcpStream,
    peer: SocketAddr,
    source: SourceSlot,
    shutdown: impl Future<Output = ()>,
) {
    let Ok(permit) = edge.preauth.clone().try_acquire_owned() else {
        warn!(
            limit = edge.config.max_unauthenticated,
            "too many unauthenticated connections: closing this one"
        );
        return;
    };
    let _ = socket.set_nodelay(true);
    let conn = Arc::new(Conn::new(edge.clone(), peer));
    let handler = EdgeHandler::new(conn.clone(), permit, source);
    let outcome = serve(&conn, config, socket, handler, shutdown).await;
    tunnels::closed(&conn).await;
    sessions::closed(&conn).await;
    edge.per_source.closed(peer.ip(), outcome);
}

/// Runs one connection to its end; says how it ended for its source's penalty.
async fn serve(
    conn: &Arc<Conn>,
    config: Arc<Config>,
    socket: TcpStream,
    handler: EdgeHandler,
    shutdown: impl Future<Output = ()>,
) -> Outcome {
    let edge = &conn.edge;
    let mut deadline = Instant::now() + edge.config.auth_deadline;
    tokio::pin!(shutdown);
    // The banner exchange is inside the deadline too: a client that never sends one is dropped.
    let handshake = tokio::time::timeout_at(deadline, run_stream(config, socket, handler));
    let running = tokio::select! {
        result = handshake => match result {
            Ok(Ok(running)) => running,
            Ok(Err(error)) => {
                debug!(%error, "ssh connection ended during the banner exchange");
                return Outcome::NoAuth;
            }
            Err(_) => {
                info!("no ssh banner before the authentication deadline: closed");
                return Outcome::GraceExceeded;
            }
        },
        () = &mut shutdown => {
            debug!("ssh-edge shutting down during the banner exchange: closed");
            return Outcome::Shutdown;
        }
    };
    let handle = running.handle();
    let _ = conn.handle.set(handle.clone());
    tokio::pin!(running);
    let mut armed = true;
    let mut extended = false;
    let mut heartbeat = tokio::time::interval(edge.config.heartbeat_interval);
    heartbeat.tick().await;
    let mut tunnel_heartbeat = tokio::time::interval(edge.config.tunnel_heartbeat_interval);
    tunnel_heartbeat.tick().await;
    loop {
        tokio::select! {
            result = &mut running => {
                if let Err(error) = result {
                    debug!(%error, "ssh connection ended with an error");
                }
                return conn.outcome();
            }
            _ = tokio::time::sleep_until(deadline), if armed => {
                if conn.authed.get().is_none() && !extended && conn.interactive.load(Ordering::Relaxed) {
                    // A verified user typing the target's password: give her the time the
                    // target itself allows (handshake and login, each with a person's answer).
                    extended = true;
                    deadline += (edge.config.target_timeout + INTERACTIVE_ANSWER_TIME) * 2;
                    continue;
                }
                armed = false;
                if conn.authed.get().is_none() {
                    info!(deadline_secs = edge.config.auth_deadline.as_secs(), "not authenticated before the deadline: disconnecting");
                    let _ = handle
                        .disconnect(Disconnect::ByApplication, "phirepass: authentication timed out".into(), "en".into())
                        .await;
                    let _ = tokio::time::timeout(Duration::from_secs(1), &mut running).await;
                    return match conn.outcome() {
                        Outcome::Verified => Outcome::Verified,
                        _ => Outcome::GraceExceeded,
                    };
                }
            }
            () = &mut shutdown => {
                info!("ssh-edge shutting down: disconnecting");
                let _ = handle
                    .disconnect(Disconnect::ByApplication, "phirepass: the edge is shutting down".into(), "en".into())
                    .await;
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut running).await;
                return Outcome::Shutdown;
            }
            _ = heartbeat.tick() => sessions::heartbeat(conn).await,
            _ = tunnel_heartbeat.tick() => tunnels::heartbeat(conn).await,
        }
    }
}
