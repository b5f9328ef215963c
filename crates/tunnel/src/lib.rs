//! Tunnels: how user bytes travel between an edge (gateway-ws, ssh-edge)
//! and a node (an agent, or an `ssh -R` session) over the bus.
//!
//! * [`subjects`]: subject names and ids.
//! * [`open`](mod@open): open request/reply payloads.
//! * [`frame`]: tunnel frames and the protocol rules (sequence numbers,
//!   credit, replay, keepalive).
//! * [`stream`]: [`TunnelStream`], the `AsyncRead + AsyncWrite` endpoint.
//! * `open()` and `listen()`: streams directly over the bus (feature `bus`,
//!   default; the agent builds without it).
//! * [`node_link`]: the agent <-> gateway WebSocket messages.
//! * [`command`]: allowlisted commands: requests, the agent's manifest, output records.

pub mod browser_protocol;
#[cfg(feature = "bus")]
mod bus_stream;
pub mod command;
mod endpoint;
mod error;
pub mod frame;
pub mod node_link;
pub mod open;
mod state;
pub mod stream;
pub mod subjects;

#[cfg(feature = "bus")]
pub use bus_stream::{IncomingOpen, NodeListener, listen, open, open_ticketed};
pub use endpoint::{FrameSink, SinkClosed, StreamConfig, StreamStats};
pub use error::{DecodeError, LinkError, OpenError};
pub use frame::Frame;
pub use node_link::{HostStats, LinkMessage, NodeControl};
pub use open::{OpenReply, OpenRequest, Target};
pub use stream::{FrameInput, TunnelStream};
pub use subjects::{NodeSubject, ParseStreamIdError, StreamId, Subjects, valid_token};
