//! Bus subject names for nodes, edges and events.
//!
//! ```text
//! <prefix>.node.<node_id>.open            open request/reply (answered by the node's holder)
//! <prefix>.node.<node_id>.s.<stream_id>   frames toward the node
//! <prefix>.edge.<edge_id>.s.<stream_id>   frames toward the edge
//! <prefix>.events.<kind>                  presence and audit events
//! <prefix>.control.kick                   end a session (payload: its id) on whichever edge holds it
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Identifies one stream; random, so no coordination is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamId(pub u64);

impl StreamId {
    pub fn random() -> Self {
        StreamId(rand::random())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream id must be 16 lowercase hex digits")]
pub struct ParseStreamIdError;

impl FromStr for StreamId {
    type Err = ParseStreamIdError;

    /// Parses exactly the [`Display`](fmt::Display) form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let canonical = s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !canonical {
            return Err(ParseStreamIdError);
        }
        u64::from_str_radix(s, 16)
            .map(StreamId)
            .map_err(|_| ParseStreamIdError)
    }
}

/// Whether `s` may be used as a node or edge id inside a subject:
/// 1 to 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What a subject under [`Subjects::node_wildcard`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeSubject {
    Open,
    Stream(StreamId),
}

/// Subject names under one prefix (`pp` by default; tests use a random one).
/// Ids must pass [`valid_token`] before they are put into a subject.
#[derive(Clone, Debug)]
pub struct Subjects {
    prefix: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects::new("pp")
    }
}

impl Subjects {
    pub fn new(prefix: impl Into<String>) -> Self {
        Subjects {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn node_wildcard(&self, node_id: &str) -> String {
        format!("{}.node.{node_id}.>", self.prefix)
    }

    pub fn node_open(&self, node_id: &str) -> String {
        format!("{}.node.{node_id}.open", self.prefix)
    }

    pub fn node_stream(&self, node_id: &str, s: StreamId) -> String {
        format!("{}.node.{node_id}.s.{s}", self.prefix)
    }

    pub fn edge_stream(&self, edge_id: &str, s: StreamId) -> String {
        format!("{}.edge.{edge_id}.s.{s}", self.prefix)
    }

    pub fn events(&self, kind: &str) -> String {
        format!("{}.events.{kind}", self.prefix)
    }

    /// Every edge subscribes; the one holding the session (UTF-8 id in the
    /// payload) ends it. Sessions are few and kicks rare, so one subject.
    pub fn session_kick(&self) -> String {
        format!("{}.control.kick", self.prefix)
    }

    /// Every edge subscribes; the payload (UTF-8) names a user whose access
    /// changed (a logout), and each edge re-checks that user's live streams.
    pub fn access_changed(&self) -> String {
        format!("{}.control.access", self.prefix)
    }

    /// Classifies a subject received on `node_wildcard(node_id)`.
    pub fn parse_node_subject(&self, node_id: &str, subject: &str) -> Option<NodeSubject> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".node.")?
            .strip_prefix(node_id)?
            .strip_prefix('.')?;
        if rest == "open" {
            return Some(NodeSubject::Open);
        }
        rest.strip_prefix("s.")?
            .parse()
            .ok()
            .map(NodeSubject::Stream)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parsing() {
        let s = Subjects::default();
        let id = StreamId(0xab);
        assert_eq!(id.to_string(), "00000000000000ab");
        assert_eq!(s.node_wildcard("n1"), "pp.node.n1.>");
        assert_eq!(s.node_open("n1"), "pp.node.n1.open");
        assert_eq!(s.node_stream("n1", id), "pp.node.n1.s.00000000000000ab");
        assert_eq!(s.edge_stream("e1", id), "pp.edge.e1.s.00000000000000ab");
        assert_eq!(s.session_kick(), "pp.control.kick");
        assert_eq!(s.access_changed(), "pp.control.access");
        assert_eq!(s.events("presence"), "pp.events.presence");
        assert_eq!(
            s.parse_node_subject("n1", &s.node_open("n1")),
            Some(NodeSubject::Open)
        );
        assert_eq!(
            s.parse_node_subject("n1", &s.node_stream("n1", id)),
            Some(NodeSubject::Stream(id))
        );
        assert_eq!(s.parse_node_subject("n", &s.node_open("n1")), None);
        assert_eq!(s.parse_node_subject("n1", "pp.node.n1.s.AB"), None);
        assert_eq!(
            s.parse_node_subject("n1", "pp.node.n1.s.00000000000000ab.x"),
            None
        );
        assert_eq!(s.parse_node_subject("n1", "qq.node.n1.open"), None);
        let r = StreamId::random();
        assert_eq!(r.to_string().parse::<StreamId>().unwrap(), r);
    }

    #[test]
    fn tokens() {
        assert!(valid_token("node-1_A"));
        assert!(!valid_token(""));
        assert!(!valid_token("a.b"));
        assert!(!valid_token("a*"));
        assert!(!valid_token(&"x".repeat(65)));
        assert!(valid_token(&"x".repeat(64)));
    }
}
