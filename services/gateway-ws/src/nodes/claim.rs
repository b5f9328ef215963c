//! One live connection per node. A second agent with the same token is refused, with a
//! message that says from where and since when the node is connected; the first stays.
//!
//! The rule: the same agent process reconnecting (its Auth `instance` matches; its old link is
//! dead to it, e.g. after a gateway restart) takes its node over at once. Otherwise a
//! connection that has sent anything (heartbeat, ping, frame) within
//! [`TAKEOVER_AFTER`] holds the node. A holder silent for longer (a half-dead link left by a
//! crash or a lost network) is taken over by the new connection, so an agent restarting after
//! a crash gets its node back within that time. The registry decides across gateways
//! (ClaimNode); this instance checks its own connections first, where it knows exactly when an
//! agent was last heard.

use std::time::Duration;

use phirepass_proto::authz::Node;
use phirepass_proto::registry::{ClaimNodeRequest, NodePresence};
use phirepass_runtime::clock::now_millis;
use tracing::{debug, warn};

use crate::state::AppState;

/// How long the holder must have been silent before another connection takes its node.
/// Agents send a heartbeat every 15 s and a ping every 30 s by default.
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(45);
/// How long a refused agent waits before it tries again.
pub const REFUSED_RETRY: Duration = Duration::from_secs(60);

/// Who holds a node, for the refusal message.
#[derive(Debug, Clone)]
pub struct Holder {
    pub agent_addr: String,
    pub gateway_id: String,
    pub connected_at_ms: i64,
    pub last_heard_ms: i64,
}

/// This connection's identity, as the registry records it.
pub struct Claimant<'a> {
    pub node: &'a Node,
    pub conn_id: &'a str,
    pub agent_addr: &'a str,
    /// The agent process; its own reconnect takes the node over at once.
    pub instance: &'a str,
}

/// `Ok` when this connection may hold the node, `Err(message for the agent)` when another
/// live connection holds it. An unreachable or older registry does not lock agents out.
pub async fn claim(state: &AppState, me: &Claimant<'_>) -> Result<(), String> {
    let now = now_millis();
    let takeover_after_ms = TAKEOVER_AFTER.as_millis() as i64;
    let same_agent = |held: &crate::state::HeldNode| {
        !me.instance.is_empty() && held.agent_instance == me.instance
    };
    let local = state
        .nodes()
        .get(&me.node.node_id)
        .filter(|h| !same_agent(h))
        .map(|held| Holder {
            agent_addr: held.agent_addr.clone(),
            gateway_id: state.config.gateway_id.clone(),
            connected_at_ms: held.connected_at_ms,
            last_heard_ms: held.last_heard(),
        });
    if let Some(holder) = local
        && now - holder.last_heard_ms < takeover_after_ms
    {
        return Err(refusal(me.node, &holder, now));
    }
    let presence = NodePresence {
        node_id: me.node.node_id.clone(),
        name: me.node.name.clone(),
        user_id: me.node.user_id.clone(),
        gateway_id: state.config.gateway_id.clone(),
        agent_addr: me.agent_addr.to_owned(),
        conn_id: me.conn_id.to_owned(),
        agent_seen_at: now,
        agent_instance: me.instance.to_owned(),
        ..Default::default()
    };
    let request = ClaimNodeRequest {
        presence: Some(presence),
        takeover_after_ms,
    };
    match state.registry.clone().claim_node(request).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            match (reply.granted, reply.holder) {
                (true, _) => Ok(()),
                (false, Some(p)) => {
                    let holder = Holder {
                        agent_addr: p.agent_addr,
                        gateway_id: p.gateway_id,
                        connected_at_ms: p.connected_at,
                        last_heard_ms: if p.agent_seen_at > 0 {
                            p.agent_seen_at
                        } else {
                            p.last_heartbeat
                        },
                    };
                    Err(refusal(me.node, &holder, now))
                }
                (false, None) => Err(format!(
                    "node {} is held by another connection; try again later",
                    me.node.name
                )),
            }
        }
        Err(s) if s.code() == tonic::Code::Unimplemented => {
            debug!("registry without ClaimNode; connection accepted");
            Ok(())
        }
        Err(s) => {
            warn!(code = ?s.code(), "registry did not answer the node claim; connection accepted");
            Ok(())
        }
    }
}

/// What the refused agent logs: where the node is connected from, since when, and the fix.
pub fn refusal(node: &Node, holder: &Holder, now_ms: i64) -> String {
    let from = if holder.agent_addr.is_empty() {
        "another address".to_owned()
    } else {
        holder.agent_addr.clone()
    };
    format!(
        "a node with this token ({name}) is already connected from {from} since {since} ({ago} ago, \
         gateway {gateway}, last heard {heard} ago). This connection is refused and that one stays; \
         this agent retries every {retry} s and takes the node over only once the other connection \
         has been silent for {takeover} s. If both machines should be connected, give this one its \
         own node: phirepass admin node token create --user {user} --name <another name>",
        name = node.name,
        since = timestamp(holder.connected_at_ms),
        ago = span(now_ms - holder.connected_at_ms),
        gateway = holder.gateway_id,
        heard = span(now_ms - holder.last_heard_ms),
        retry = REFUSED_RETRY.as_secs(),
        takeover = TAKEOVER_AFTER.as_secs(),
        user = node.username,
    )
}

/// `1 h 2 min`, `3 min 4 s`, `5 s`.
fn span(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// `2026-12-07 07:31:02 UTC` (Howard Hinnant's days-to-civil algorithm).
fn timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_timestamps_read_well() {
        assert_eq!(span(4_999), "4 s");
        assert_eq!(span(125_000), "2 min 5 s");
        assert_eq!(span(3_725_000), "1 h 2 min");
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(timestamp(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn the_refusal_says_from_where_since_when_and_the_fix() {
        let node = Node {
            name: "web-1".into(),
            username: "alice".into(),
            ..Default::default()
        };
        let holder = Holder {
            agent_addr: "10.0.0.5:41000".into(),
            gateway_id: "gw-1".into(),
            connected_at_ms: 1_700_000_000_000,
            last_heard_ms: 1_700_000_060_000,
        };
        let message = refusal(&node, &holder, 1_700_000_062_000);
        for needle in [
            "already connected from 10.0.0.5:41000",
            "since 2023-11-14 22:13:20 UTC (1 min 2 s ago",
            "last heard 2 s ago",
            "--user alice",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
    }
}
