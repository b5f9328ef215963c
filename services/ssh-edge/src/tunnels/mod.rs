//! `ssh -R` tunnels held by management logins (`alice@edge`, `alice+strict@edge`).
//!
//! A forward is a "virtual bind": no port is opened here. The session gets a bus node id
//! (`sshr-<hex>`) and answers TunnelStream opens with `Target::Port { port }` by opening a
//! `forwarded-tcpip` channel to the client; the registry maps (name, port) to that node id,
//! so any edge reaches the tunnel. Port 80 is a public HTTP tunnel, any other port a private
//! TCP alias reached through `direct-tcpip` on this edge (see [`direct`]).

mod bind;
mod direct;
mod names;
mod node;
mod pipe;
mod presence;
mod screen;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub(crate) use bind::{cancel, forward};
pub(crate) use direct::open_alias;
pub(crate) use presence::{closed, heartbeat};
pub(crate) use screen::serve_channel;

/// Byte and stream counters of one forward.
#[derive(Default)]
pub(crate) struct Counters {
    /// Bytes toward the client's local service.
    pub bytes_in: AtomicU64,
    /// Bytes from the client's local service.
    pub bytes_out: AtomicU64,
    /// Streams opened through the forward.
    pub connections: AtomicU64,
}

/// One granted forward.
pub(crate) struct Forward {
    /// The registry name (a DNS label).
    pub name: String,
    pub port: u16,
    /// The bind address as the client sent it: OpenSSH matches `forwarded-tcpip` channels
    /// against it, so it goes back verbatim.
    pub address: String,
    pub node_id: String,
    pub kind: &'static str,
    pub counters: Counters,
}

impl Forward {
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.counters.bytes_in.load(Ordering::Relaxed),
            self.counters.bytes_out.load(Ordering::Relaxed),
            self.counters.connections.load(Ordering::Relaxed),
        )
    }
}

/// A bus node id this session listens on, with its listener task.
struct NodeSlot {
    node_id: String,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    forwards: Vec<std::sync::Arc<Forward>>,
    nodes: Vec<NodeSlot>,
    /// Forward requests seen (granted or not): a session channel then shows the tunnel
    /// screen instead of the target menu.
    requests: usize,
    closed: bool,
}

/// The tunnels of one SSH connection, and the notes its screen shows.
#[derive(Default)]
pub(crate) struct SessionTunnels {
    state: Mutex<State>,
    notes: Mutex<Vec<String>>,
    changed: Notify,
}

impl SessionTunnels {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the client asked for any forward.
    pub fn requested(&self) -> bool {
        self.state().requests > 0
    }

    pub fn forwards(&self) -> Vec<std::sync::Arc<Forward>> {
        self.state().forwards.clone()
    }

    /// The forward that answers opens to `node_id` on `port`.
    pub fn find(&self, node_id: &str, port: u16) -> Option<std::sync::Arc<Forward>> {
        self.state()
            .forwards
            .iter()
            .find(|f| f.node_id == node_id && f.port == port)
            .cloned()
    }

    /// Adds a line for the session's screen (and wakes it).
    pub fn note(&self, line: String) {
        self.notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
        self.changed.notify_waiters();
    }

    /// Notes from index `from` on.
    pub fn notes_from(&self, from: usize) -> Vec<String> {
        let notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        notes
            .get(from..)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }
}
