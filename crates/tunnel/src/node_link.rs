//! The agent <-> gateway WebSocket protocol (encode/decode only, no I/O).
//!
//! Each binary WebSocket message is one [`LinkMessage`]:
//!
//! ```text
//! [0x00][JSON NodeControl]                      control message
//! [0x01][stream id: u64 big-endian][tunnel frame] frame of one stream
//! ```
//!
//! The gateway relays tunnel frames verbatim between the bus and the
//! agent; the agent is the TunnelStream endpoint, so sequencing, credit and
//! replay run end to end between edge and agent.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::error::LinkError;
use crate::open::OpenRequest;
use crate::subjects::StreamId;

const CONTROL: u8 = 0x00;
const FRAME: u8 = 0x01;
const FRAME_HEADER: usize = 9;

#[derive(Debug, Clone, PartialEq)]
pub enum LinkMessage {
    Control(NodeControl),
    Frame { stream_id: StreamId, frame: Bytes },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeControl {
    /// Agent -> gateway, first message. `instance` is random per agent process: a
    /// reconnect of the same process takes its node over at once (its old link is dead
    /// to it), while another process with the same token is refused. Empty from older agents.
    Auth {
        token: String,
        version: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        instance: String,
    },
    /// Gateway -> agent.
    AuthOk {
        node_id: String,
        node_name: String,
    },
    /// Gateway -> agent, then close; the agent exits non-zero without retrying.
    AuthFailed {
        reason: String,
    },
    /// Agent -> gateway.
    Heartbeat {
        stats: HostStats,
    },
    /// Both ways.
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    /// Gateway -> agent: an open request forwarded from the bus.
    Open {
        request: OpenRequest,
    },
    /// Agent -> gateway: the answer to `Open` (`error: None` = accepted).
    OpenResult {
        stream_id: StreamId,
        error: Option<String>,
    },
    /// Gateway -> agent, instead of `AuthOk`: another live connection already holds this
    /// node (same token). `reason` says from where and since when; the agent logs it and
    /// tries again after `retry_after_secs`, so the first connection is never kicked.
    Refused {
        reason: String,
        retry_after_secs: u64,
    },
    /// Gateway -> agent: authz's ticket keys, each endorsed by the key before it (issue #8).
    /// The agent adds a key only when a key it already pins signed its endorsement, and
    /// persists it. Agents older than tickets ignore the message (it does not decode).
    TicketKeys {
        endorsements: Vec<phirepass_ticket::KeyEndorsement>,
        /// authz's current keys, on a link's first `TicketKeys`: what an agent that has pinned
        /// nothing yet (enrolled with a typed token) pins, on a link whose gateway it verified.
        #[serde(default)]
        keys: Vec<phirepass_ticket::PublicKey>,
    },
    /// Agent -> gateway, after `AuthOk` and whenever it changes: version, start time and the
    /// commands this host declares (issue #10). Gateways keep it with the node's presence.
    Status {
        status: crate::command::AgentStatus,
    },
    /// Agent -> gateway: an audit event about a command request (refusals included); the
    /// gateway publishes it with the node id it authenticated, never one the agent names.
    Audit {
        event: crate::command::AgentAudit,
    },
    /// Gateway -> agent. `fatal` (e.g. token revoked): the agent exits
    /// non-zero instead of reconnecting.
    Disconnect {
        reason: String,
        #[serde(default)]
        fatal: bool,
    },
}

/// What an agent reports in each heartbeat. Fields added after the first release are
/// optional on the wire, so older agents keep working (absent = unknown).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct HostStats {
    pub hostname: String,
    /// CPU use since the previous sample; meaningful only when `cpu_measured`.
    /// Kept a plain number (0 when unmeasured) so gateways that predate
    /// `cpu_measured` still decode new agents' heartbeats.
    #[serde(deserialize_with = "finite_f32")]
    pub cpu_percent: f32,
    /// False until the agent has two CPU samples at least a second apart (its first
    /// heartbeat). Agents that predate the field always measured: true.
    #[serde(default = "measured_by_default")]
    pub cpu_measured: bool,
    pub mem_total_bytes: u64,
    pub mem_used_bytes: u64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub uptime_secs: u64,
    /// The local ports `ALLOWED_PORTS` lets tunnels reach; `None` from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ports: Option<Vec<u16>>,
    /// Whether `SSH_HOST:SSH_PORT` answered as an SSH server at the agent's last check;
    /// `None` before the first check and from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_reachable: Option<bool>,
}

/// JSON has no infinity, but `1e39` read as an `f32` is one: it would be passed on (to the
/// registry, the dashboard) as `null`, and its own encoding would not decode. Found by
/// fuzz/fuzz_targets/node_link.rs.
fn finite_f32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let v = f32::deserialize(d)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(serde::de::Error::custom("cpu_percent out of range for f32"))
    }
}

fn measured_by_default() -> bool {
    true
}

impl HostStats {
    /// CPU use in percent, `None` until the agent has measured it.
    pub fn cpu(&self) -> Option<f32> {
        self.cpu_measured.then_some(self.cpu_percent)
    }
}

impl LinkMessage {
    pub fn encode(&self) -> Bytes {
        match self {
            LinkMessage::Control(ctrl) => {
                let mut out = vec![CONTROL];
                // Serializing these plain structs cannot fail (no maps with
                // non-string keys, no failing Serialize impls).
                if serde_json::to_writer(&mut out, ctrl).is_err() {
                    out.truncate(1);
                    out.extend_from_slice(b"{}");
                }
                Bytes::from(out)
            }
            LinkMessage::Frame { stream_id, frame } => {
                let mut out = BytesMut::with_capacity(FRAME_HEADER + frame.len());
                out.put_u8(FRAME);
                out.put_u64(stream_id.0);
                out.extend_from_slice(frame);
                out.freeze()
            }
        }
    }

    /// Decodes one message; the frame of a `Frame` message is a zero-copy
    /// slice of `b` and is not decoded (the relay forwards it verbatim).
    pub fn decode(b: Bytes) -> Result<LinkMessage, LinkError> {
        let Some(&kind) = b.first() else {
            return Err(LinkError::Empty);
        };
        match kind {
            CONTROL => Ok(LinkMessage::Control(serde_json::from_slice(&b[1..])?)),
            FRAME => {
                if b.len() <= FRAME_HEADER {
                    return Err(LinkError::Truncated("link frame"));
                }
                let mut id = [0u8; 8];
                id.copy_from_slice(&b[1..FRAME_HEADER]);
                Ok(LinkMessage::Frame {
                    stream_id: StreamId(u64::from_be_bytes(id)),
                    frame: b.slice(FRAME_HEADER..),
                })
            }
            other => Err(LinkError::UnknownLinkKind(other)),
        }
    }
}
