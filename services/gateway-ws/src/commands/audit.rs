//! Command audit events on the audit subject (`<prefix>.events.audit`): the runner's
//! `command.request` / `command.result` (the caller's side) and the agent's own events relayed
//! by the gateway holding its link. Every event is one JSON object with `kind: "command"`.
//! The node's identity in a relayed event is the one this gateway authenticated, never one the
//! agent names; an agent's events are bounded in size and rate, so a hostile agent cannot flood
//! the log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use phirepass_bus::EventLog;
use phirepass_tunnel::command::{AgentAudit, RunResult};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tracing::{error, warn};

/// Where the gateway's audit events go. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    events: Arc<dyn EventLog>,
    subject: String,
}

/// Who asked for a run and from where, as the audit records it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub username: String,
    /// The caller's address (the browser's, or the gRPC client's).
    pub client_ip: String,
    /// "grpc" or "http".
    pub via: &'static str,
}

/// One run as both of its caller-side events name it.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub correlation_id: String,
    pub caller: Caller,
    pub node_id: String,
    pub node_name: String,
    pub command: String,
    /// Secret values already redacted.
    pub params: BTreeMap<String, String>,
}

impl AuditLog {
    pub fn new(events: Arc<dyn EventLog>, subject: String) -> Self {
        Self { events, subject }
    }

    fn base(&self, action: &str, gateway_id: &str, run: &RunFacts) -> Map<String, Value> {
        let value = json!({
            "kind": "command",
            "action": action,
            "ts": phirepass_runtime::clock::now_millis(),
            "correlation_id": run.correlation_id,
            "user": run.caller.username,
            "user_id": run.caller.user_id,
            "client_ip": run.caller.client_ip,
            "via": run.caller.via,
            "node_id": run.node_id,
            "node_name": run.node_name,
            "gateway_id": gateway_id,
            "command": run.command,
            "params": run.params,
        });
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// `command.request`: published before the stream to the node is opened.
    pub async fn request(&self, gateway_id: &str, run: &RunFacts) {
        let event = self.base("command.request", gateway_id, run);
        self.publish(Value::Object(event)).await;
    }

    /// `command.result`: the run's outcome (`result` when the node sent one), or why none came.
    pub async fn result(
        &self,
        gateway_id: &str,
        run: &RunFacts,
        result: Option<&RunResult>,
        error: Option<&str>,
        duration_ms: u64,
    ) {
        let mut event = self.base("command.result", gateway_id, run);
        let outcome = json!({
            "exit_code": result.and_then(|r| r.exit_code),
            "signal": result.and_then(|r| r.signal),
            "duration_ms": result.map_or(duration_ms, |r| r.duration_ms),
            "timed_out": result.is_some_and(|r| r.timed_out),
            "stdout_bytes": result.map_or(0, |r| r.stdout_bytes),
            "stderr_bytes": result.map_or(0, |r| r.stderr_bytes),
            "truncated": result.is_some_and(|r| r.stdout_truncated || r.stderr_truncated),
            "error": error.map(str::to_owned).or_else(|| result.and_then(|r| r.error.clone())),
            "success": result.is_some_and(|r| r.success()) && error.is_none(),
        });
        if let Value::Object(fields) = outcome {
            event.extend(fields);
        }
        self.publish(Value::Object(event)).await;
    }

    /// An agent's own event, with the node this gateway authenticated.
    pub async fn agent(&self, node: &LinkNode, event: &AgentAudit) {
        let Ok(Value::Object(mut fields)) = serde_json::to_value(event) else {
            return;
        };
        // What the agent says about itself stays under its own keys; these are ours.
        fields.insert("kind".into(), json!("command"));
        fields.insert("source".into(), json!("agent"));
        fields.insert("node_id".into(), json!(node.node_id));
        fields.insert("node_name".into(), json!(node.node_name));
        fields.insert("gateway_id".into(), json!(node.gateway_id));
        fields.insert(
            "received_at".into(),
            json!(phirepass_runtime::clock::now_millis()),
        );
        self.publish(Value::Object(fields)).await;
    }

    async fn publish(&self, event: Value) {
        let payload = Bytes::from(event.to_string());
        if let Err(error) = self.events.append(&self.subject, payload).await {
            error!(%error, subject = %self.subject, "command audit event not stored");
        }
    }
}

/// The authenticated node of an agent link.
#[derive(Debug, Clone)]
pub struct LinkNode {
    pub node_id: String,
    pub node_name: String,
    pub gateway_id: String,
}

/// Largest agent audit event relayed (its JSON); bigger ones are dropped with a warning.
pub const MAX_AGENT_EVENT: usize = 16 * 1024;
/// Agent events waiting to be stored per link; more are dropped (the agent is flooding).
const AGENT_QUEUE: usize = 64;
/// Sustained agent events per second per link, with a burst of [`AGENT_BURST`].
const AGENT_RATE: f64 = 20.0;
const AGENT_BURST: f64 = 100.0;

/// One agent link's relay of audit events: bounded queue, token bucket, one writer task.
pub struct AgentAuditRelay {
    tx: mpsc::Sender<AgentAudit>,
    tokens: f64,
    refilled: tokio::time::Instant,
    dropped: u64,
    task: tokio::task::JoinHandle<()>,
}

impl AgentAuditRelay {
    pub fn start(log: AuditLog, node: LinkNode) -> Self {
        let (tx, mut rx) = mpsc::channel::<AgentAudit>(AGENT_QUEUE);
        let task = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                log.agent(&node, &event).await;
            }
        });
        Self {
            tx,
            tokens: AGENT_BURST,
            refilled: tokio::time::Instant::now(),
            dropped: 0,
            task,
        }
    }

    /// Queues `event` unless it is too big or the agent sends faster than the rate allows.
    pub fn relay(&mut self, event: AgentAudit) {
        let size = serde_json::to_vec(&event).map_or(usize::MAX, |v| v.len());
        if size > MAX_AGENT_EVENT {
            warn!(size, "agent audit event too large; dropped");
            return;
        }
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * AGENT_RATE).min(AGENT_BURST);
        if self.tokens < 1.0 || self.tx.try_send(event).is_err() {
            self.dropped += 1;
            // One line per power of two, not one per dropped event.
            if self.dropped.is_power_of_two() {
                warn!(
                    dropped = self.dropped,
                    "agent sends audit events too fast; dropping"
                );
            }
            return;
        }
        self.tokens -= 1.0;
    }

    /// Stores what is queued (bounded), then stops.
    pub async fn finish(self) {
        drop(self.tx);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}
