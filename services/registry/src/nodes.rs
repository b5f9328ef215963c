//! Node and session presence: `node:<id>` and `session:<id>` records as
//! JSON with a TTL that heartbeats refresh. A node belongs to the gateway
//! that last connected it; others' heartbeats and disconnects are ignored.

use phirepass_proto::registry as pb;
use phirepass_runtime::clock::now_millis;

use crate::error::{RegistryError, Result};
use crate::records::{
    NODE_PREFIX, NodeRecord, SESSION_PREFIX, SessionRecord, check_id, node_key, session_key,
};
use crate::state::RegistryService;

// Compare-and-delete retries when a heartbeat rewrites the record between
// our read and our delete.
const DISCONNECT_ATTEMPTS: usize = 3;
// Compare-and-set retries of a claim when the record changes under it.
const CLAIM_ATTEMPTS: usize = 5;

/// What [`RegistryService::claim_node`] decided.
#[derive(Debug)]
pub(crate) enum Claim {
    Granted,
    /// Another live connection holds the node: this record.
    Held(Box<NodeRecord>),
}

impl RegistryService {
    async fn put_node(&self, record: &NodeRecord) -> Result<()> {
        let json = serde_json::to_string(record)?;
        self.presence()
            .put(&node_key(&record.node_id), &json, self.node_ttl())
            .await?;
        Ok(())
    }

    pub(crate) async fn node_connected(&self, presence: pb::NodePresence) -> Result<()> {
        let mut record = NodeRecord::try_from(presence)?;
        let now = now_millis();
        if record.connected_at == 0 {
            record.connected_at = now;
        }
        record.last_heartbeat = now;
        self.put_node(&record).await?;
        tracing::info!(node_id = %record.node_id, gateway_id = %record.gateway_id, "node connected");
        Ok(())
    }

    /// Claims the node for `presence.conn_id` unless another connection holds it and was
    /// heard from less than `takeover_after_ms` ago (see the proto for the rule).
    pub(crate) async fn claim_node(
        &self,
        presence: pb::NodePresence,
        takeover_after_ms: i64,
    ) -> Result<Claim> {
        let mut record = NodeRecord::try_from(presence)?;
        let key = node_key(&record.node_id);
        let mut last_holder = None;
        for _ in 0..CLAIM_ATTEMPTS {
            let now = now_millis();
            record.last_heartbeat = now;
            if record.agent_seen_at == 0 {
                record.agent_seen_at = now;
            }
            let Some((raw, current)) = self.get_json::<NodeRecord>(&key).await? else {
                if record.connected_at == 0 {
                    record.connected_at = now;
                }
                let json = serde_json::to_string(&record)?;
                if self
                    .presence()
                    .put_if_absent(&key, &json, self.node_ttl())
                    .await?
                {
                    tracing::info!(node_id = %record.node_id, gateway_id = %record.gateway_id, "node claimed");
                    return Ok(Claim::Granted);
                }
                continue;
            };
            let silent_for = now - current.last_heard();
            if current.other_connection(&record) {
                if silent_for < takeover_after_ms && !current.same_agent(&record) {
                    return Ok(Claim::Held(Box::new(current)));
                }
                tracing::info!(node_id = %record.node_id, holder = %current.gateway_id, silent_for_ms = silent_for, "silent node connection taken over");
                record.connected_at = now;
            } else if record.connected_at == 0 {
                record.connected_at = current.connected_at;
            }
            let json = serde_json::to_string(&record)?;
            if self
                .presence()
                .replace_if(&key, &raw, &json, self.node_ttl())
                .await?
            {
                return Ok(Claim::Granted);
            }
            last_holder = Some(current);
        }
        // Only when the record keeps changing under us: report it held rather than guess.
        match last_holder {
            Some(holder) => Ok(Claim::Held(Box::new(holder))),
            None => Err(RegistryError::AlreadyExists("node")),
        }
    }

    /// Refreshes the node unless another gateway (or connection) holds it now.
    pub(crate) async fn node_heartbeat(&self, presence: pb::NodePresence) -> Result<bool> {
        let mut record = NodeRecord::try_from(presence)?;
        let existing: Option<(String, NodeRecord)> =
            self.get_json(&node_key(&record.node_id)).await?;
        if let Some((_, current)) = existing {
            if current.other_connection(&record) {
                tracing::info!(node_id = %record.node_id, holder = %current.gateway_id, "heartbeat from a stale gateway ignored");
                return Ok(false);
            }
            if record.connected_at == 0 {
                record.connected_at = current.connected_at;
            }
            if record.stats.is_none() {
                record.stats = current.stats;
            }
            // Like stats: a heartbeat without a report keeps the one the agent sent before.
            if record.agent_status_json.is_empty() {
                record.agent_status_json = current.agent_status_json;
            }
        }
        let now = now_millis();
        if record.connected_at == 0 {
            record.connected_at = now;
        }
        record.last_heartbeat = now;
        self.put_node(&record).await?;
        Ok(true)
    }

    /// Removes the node only while `gateway_id` still holds it: the delete
    /// compares against the exact record read, so a takeover in between
    /// makes it a no-op.
    pub(crate) async fn node_disconnected(&self, node_id: &str, gateway_id: &str) -> Result<bool> {
        check_id("node_id", node_id)?;
        let key = node_key(node_id);
        for _ in 0..DISCONNECT_ATTEMPTS {
            let Some((raw, current)) = self.get_json::<NodeRecord>(&key).await? else {
                return Ok(false);
            };
            if current.gateway_id != gateway_id {
                tracing::info!(node_id, holder = %current.gateway_id, "disconnect from a non-holder ignored");
                return Ok(false);
            }
            if self.presence().delete_if(&key, &raw).await? {
                tracing::info!(node_id, gateway_id, "node disconnected");
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) async fn list_nodes(&self, user_id: Option<&str>) -> Result<Vec<pb::NodePresence>> {
        let mut out = Vec::new();
        for (key, raw) in self.presence().list(NODE_PREFIX).await? {
            match serde_json::from_str::<NodeRecord>(&raw) {
                Ok(r) if user_id.is_none_or(|u| u == r.user_id) => out.push(r.into()),
                Ok(_) => {}
                Err(error) => tracing::warn!(%key, %error, "skipping unreadable node record"),
            }
        }
        Ok(out)
    }

    pub(crate) async fn get_node(&self, node_id: &str) -> Result<pb::NodePresence> {
        check_id("node_id", node_id)?;
        let (_, record) = self
            .get_json::<NodeRecord>(&node_key(node_id))
            .await?
            .ok_or(RegistryError::NotFound("node"))?;
        Ok(record.into())
    }

    /// Opened and heartbeat are both upserts that keep the first start time.
    pub(crate) async fn upsert_session(&self, presence: pb::SessionPresence) -> Result<()> {
        let mut record = SessionRecord::try_from(presence)?;
        let key = session_key(&record.session_id);
        if record.started_at == 0 {
            let existing = self.get_json::<SessionRecord>(&key).await?;
            record.started_at = existing.map_or_else(now_millis, |(_, r)| r.started_at);
        }
        record.last_seen = now_millis();
        let json = serde_json::to_string(&record)?;
        self.presence().put(&key, &json, self.session_ttl()).await?;
        Ok(())
    }

    pub(crate) async fn list_sessions(
        &self,
        req: &pb::ListSessionsRequest,
    ) -> Result<Vec<pb::SessionPresence>> {
        let mut out = Vec::new();
        for (key, raw) in self.presence().list(SESSION_PREFIX).await? {
            match serde_json::from_str::<SessionRecord>(&raw) {
                Ok(r)
                    if req.user_id.as_ref().is_none_or(|u| *u == r.user_id)
                        && req.node_id.as_ref().is_none_or(|n| *n == r.node_id) =>
                {
                    out.push(r.into());
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%key, %error, "skipping unreadable session record"),
            }
        }
        Ok(out)
    }
}
