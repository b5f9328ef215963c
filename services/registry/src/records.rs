//! Stored presence records (JSON in the presence store) and their
//! conversions to and from the wire types.

use phirepass_proto::registry as pb;
use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};

pub(crate) const NODE_PREFIX: &str = "node:";
pub(crate) const SESSION_PREFIX: &str = "session:";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub(crate) struct Stats {
    pub hostname: String,
    /// `None` until the agent has measured it (records written before this was optional
    /// hold a number, which still reads).
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    pub mem_total_bytes: u64,
    pub mem_used_bytes: u64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub uptime_secs: u64,
    // Added after the first release: older records and agents lack them (unknown).
    #[serde(default)]
    pub allowed_ports: Option<Vec<u32>>,
    #[serde(default)]
    pub ssh_reachable: Option<bool>,
}

impl From<pb::NodeStats> for Stats {
    fn from(s: pb::NodeStats) -> Self {
        Self {
            hostname: s.hostname,
            cpu_percent: s.cpu_percent,
            mem_total_bytes: s.mem_total_bytes,
            mem_used_bytes: s.mem_used_bytes,
            load1: s.load1,
            load5: s.load5,
            load15: s.load15,
            uptime_secs: s.uptime_secs,
            allowed_ports: s.allowed_ports.map(|p| p.ports),
            ssh_reachable: s.ssh_reachable,
        }
    }
}

impl From<Stats> for pb::NodeStats {
    fn from(s: Stats) -> Self {
        Self {
            hostname: s.hostname,
            cpu_percent: s.cpu_percent,
            mem_total_bytes: s.mem_total_bytes,
            mem_used_bytes: s.mem_used_bytes,
            load1: s.load1,
            load5: s.load5,
            load15: s.load15,
            uptime_secs: s.uptime_secs,
            allowed_ports: s.allowed_ports.map(|ports| pb::AllowedPorts { ports }),
            ssh_reachable: s.ssh_reachable,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeRecord {
    pub node_id: String,
    pub name: String,
    pub user_id: String,
    pub gateway_id: String,
    pub connected_at: i64,
    pub last_heartbeat: i64,
    #[serde(default)]
    pub stats: Option<Stats>,
    // Added with ClaimNode; records from older gateways lack them.
    #[serde(default)]
    pub agent_addr: String,
    #[serde(default)]
    pub conn_id: String,
    #[serde(default)]
    pub agent_seen_at: i64,
    #[serde(default)]
    pub agent_instance: String,
    /// The agent's self-report as JSON (issue #10); empty from agents that predate it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent_status_json: String,
}

impl NodeRecord {
    /// Whether `other` is a different agent connection than this record's: another gateway,
    /// or (when both carry one) another connection id.
    pub(crate) fn other_connection(&self, other: &NodeRecord) -> bool {
        self.gateway_id != other.gateway_id
            || (!self.conn_id.is_empty()
                && !other.conn_id.is_empty()
                && self.conn_id != other.conn_id)
    }

    /// Whether `other` comes from the same agent process (a reconnect).
    pub(crate) fn same_agent(&self, other: &NodeRecord) -> bool {
        !self.agent_instance.is_empty() && self.agent_instance == other.agent_instance
    }

    /// When the holder's agent was last heard from.
    pub(crate) fn last_heard(&self) -> i64 {
        if self.agent_seen_at > 0 {
            self.agent_seen_at
        } else {
            self.last_heartbeat
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub session_id: String,
    pub user_id: String,
    pub username: String,
    pub node_id: String,
    pub gateway_id: String,
    pub started_at: i64,
    pub last_seen: i64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    // Added after the first release: older entries lack them.
    #[serde(default)]
    pub target_name: String,
    #[serde(default)]
    pub edge_kind: String,
    #[serde(default)]
    pub client_ip: String,
}

/// Ids become presence keys: keep them short and free of glob/space
/// characters.
pub(crate) fn check_id(field: &str, id: &str) -> Result<()> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidArgument(format!(
            "{field} must be 1-128 characters of A-Z, a-z, 0-9, '_', '.', '-'"
        )))
    }
}

/// Largest agent self-report kept with a node (a host declaring many commands fits easily).
pub(crate) const MAX_AGENT_STATUS: usize = 256 * 1024;

/// The agent's self-report must be a JSON object of bounded size (the holder gateway parsed
/// it from the agent; this keeps a buggy or hostile writer from filling the store).
fn check_status_json(json: String) -> Result<String> {
    if json.is_empty() {
        return Ok(json);
    }
    if json.len() > MAX_AGENT_STATUS {
        return Err(RegistryError::InvalidArgument(format!(
            "agent_status_json is longer than {MAX_AGENT_STATUS} bytes"
        )));
    }
    match serde_json::from_str::<serde_json::Value>(&json) {
        Ok(serde_json::Value::Object(_)) => Ok(json),
        _ => Err(RegistryError::InvalidArgument(
            "agent_status_json must be a JSON object".into(),
        )),
    }
}

pub(crate) fn node_key(node_id: &str) -> String {
    format!("{NODE_PREFIX}{node_id}")
}

pub(crate) fn session_key(session_id: &str) -> String {
    format!("{SESSION_PREFIX}{session_id}")
}

impl TryFrom<pb::NodePresence> for NodeRecord {
    type Error = RegistryError;

    fn try_from(p: pb::NodePresence) -> Result<Self> {
        check_id("node_id", &p.node_id)?;
        check_id("gateway_id", &p.gateway_id)?;
        Ok(Self {
            node_id: p.node_id,
            name: p.name,
            user_id: p.user_id,
            gateway_id: p.gateway_id,
            connected_at: p.connected_at,
            last_heartbeat: p.last_heartbeat,
            stats: p.stats.map(Stats::from),
            agent_addr: p.agent_addr,
            conn_id: p.conn_id,
            agent_seen_at: p.agent_seen_at,
            agent_instance: p.agent_instance,
            agent_status_json: check_status_json(p.agent_status_json)?,
        })
    }
}

impl From<NodeRecord> for pb::NodePresence {
    fn from(r: NodeRecord) -> Self {
        Self {
            node_id: r.node_id,
            name: r.name,
            user_id: r.user_id,
            gateway_id: r.gateway_id,
            connected_at: r.connected_at,
            last_heartbeat: r.last_heartbeat,
            stats: r.stats.map(pb::NodeStats::from),
            agent_addr: r.agent_addr,
            conn_id: r.conn_id,
            agent_seen_at: r.agent_seen_at,
            agent_instance: r.agent_instance,
            agent_status_json: r.agent_status_json,
        }
    }
}

impl TryFrom<pb::SessionPresence> for SessionRecord {
    type Error = RegistryError;

    fn try_from(p: pb::SessionPresence) -> Result<Self> {
        check_id("session_id", &p.session_id)?;
        Ok(Self {
            session_id: p.session_id,
            user_id: p.user_id,
            username: p.username,
            node_id: p.node_id,
            gateway_id: p.gateway_id,
            started_at: p.started_at,
            last_seen: p.last_seen,
            bytes_in: p.bytes_in,
            bytes_out: p.bytes_out,
            target_name: p.target_name,
            edge_kind: p.edge_kind,
            client_ip: p.client_ip,
        })
    }
}

impl From<SessionRecord> for pb::SessionPresence {
    fn from(r: SessionRecord) -> Self {
        Self {
            session_id: r.session_id,
            user_id: r.user_id,
            username: r.username,
            node_id: r.node_id,
            gateway_id: r.gateway_id,
            started_at: r.started_at,
            last_seen: r.last_seen,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            target_name: r.target_name,
            edge_kind: r.edge_kind,
            client_ip: r.client_ip,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(check_id("x", "0123abcd").is_ok());
        assert!(check_id("x", "gw-1.eu_west").is_ok());
        for bad in ["", "a b", "a*", "a:b", &"a".repeat(129)] {
            assert!(check_id("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_roundtrip_keeps_stats() {
        let p = pb::NodePresence {
            node_id: "n1".into(),
            name: "web".into(),
            user_id: "u1".into(),
            gateway_id: "gw".into(),
            connected_at: 1,
            last_heartbeat: 2,
            stats: Some(pb::NodeStats {
                hostname: "h".into(),
                load1: 0.5,
                allowed_ports: Some(pb::AllowedPorts { ports: vec![8080] }),
                ssh_reachable: Some(true),
                ..Default::default()
            }),
            agent_addr: "10.0.0.5:41000".into(),
            conn_id: "c1".into(),
            agent_seen_at: 2,
            agent_instance: "a1".into(),
            agent_status_json: String::new(),
        };
        let record = NodeRecord::try_from(p.clone()).unwrap();
        let json = serde_json::to_string(&record).unwrap();
        let back: NodeRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(pb::NodePresence::from(back), p);
    }

    #[test]
    fn records_of_older_releases_still_read() {
        let old = r#"{"node_id":"n1","name":"web","user_id":"u1","gateway_id":"gw","connected_at":1,"last_heartbeat":2,"stats":{"hostname":"h","cpu_percent":3.5,"mem_total_bytes":0,"mem_used_bytes":0,"load1":0.0,"load5":0.0,"load15":0.0,"uptime_secs":0}}"#;
        let record: NodeRecord = serde_json::from_str(old).unwrap();
        let stats = record.stats.clone().unwrap();
        assert_eq!(stats.cpu_percent, Some(3.5));
        assert_eq!((stats.allowed_ports, stats.ssh_reachable), (None, None));
        assert_eq!((record.conn_id.as_str(), record.last_heard()), ("", 2));
    }
}
