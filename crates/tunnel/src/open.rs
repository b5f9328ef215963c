//! Open request/reply payloads (JSON). Trace context travels in bus
//! headers, which the caller passes to [`crate::open()`].

use serde::{Deserialize, Serialize};

use crate::subjects::StreamId;

/// What the node should connect the stream to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// The node's SSH server.
    Ssh,
    /// A local TCP port the node allows.
    Port { port: u16 },
    /// Run one of the commands the node's host declares (issue #10, [`crate::command`]); the
    /// stream carries its output records toward the edge.
    Command(crate::command::CommandRequest),
}

impl From<&Target> for phirepass_ticket::TicketTarget {
    /// What a ticket for an open to `target` must say (a command: its name and digest).
    fn from(target: &Target) -> Self {
        match target {
            Target::Ssh => Self::Ssh,
            Target::Port { port } => Self::Port { port: *port },
            Target::Command(req) => Self::Command {
                name: req.name.clone(),
                digest: req.digest(),
            },
        }
    }
}

/// Sent by the edge to `node_open(node)`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OpenRequest {
    pub stream_id: StreamId,
    /// Where frames toward the edge go: `edge_stream(edge_id, stream_id)`.
    pub edge_id: String,
    pub target: Target,
    /// The edge's receive window in bytes (informational: credit itself is
    /// granted with `Ack` frames).
    pub window: u32,
    /// authz's signed ticket for exactly this open (`phirepass-ticket`): the holder and the
    /// agent refuse an open without a valid one. Absent from edges older than tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// The node's answer; `error: None` means accepted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OpenReply {
    pub error: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let req = OpenRequest {
            stream_id: StreamId(7),
            edge_id: "gw-1".into(),
            target: Target::Port { port: 8080 },
            window: 65536,
            ticket: None,
        };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            json,
            r#"{"stream_id":7,"edge_id":"gw-1","target":{"kind":"port","port":8080},"window":65536}"#
        );
        assert_eq!(
            serde_json::to_string(&Target::Ssh).unwrap(),
            r#"{"kind":"ssh"}"#
        );
        let back: OpenRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.target, req.target);
        let ticketed = OpenRequest {
            ticket: Some("t.s".into()),
            ..req
        };
        let json = serde_json::to_string(&ticketed).unwrap();
        assert!(
            json.ends_with(r#","window":65536,"ticket":"t.s"}"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<OpenRequest>(&json).unwrap(),
            ticketed
        );
    }
}
