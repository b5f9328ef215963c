//! Audit events: every access decision as one JSON object on the event log
//! (`pp.events.audit`, a JetStream stream in production), and every admin
//! change likewise. Publishing never invalidates anything: the handlers that
//! change access also call `Decisions::invalidate`.

use bytes::Bytes;
use serde::Serialize;

use std::sync::Arc;

use phirepass_bus::EventLog;

use crate::actor::{Actor, current_actor};

/// One decision, as published. Never carries a secret.
#[derive(Debug, Serialize)]
pub(crate) struct AuthorizeEvent<'a> {
    /// Always "authorize".
    pub(crate) kind: &'static str,
    /// Unix millis.
    pub(crate) ts: i64,
    pub(crate) allowed: bool,
    pub(crate) reason: &'a str,
    /// The user as the edge named them (id or username).
    pub(crate) user: &'a str,
    pub(crate) user_id: Option<&'a str>,
    pub(crate) username: Option<&'a str>,
    /// The target as the edge named it.
    pub(crate) target: &'a str,
    pub(crate) target_kind: Option<&'a str>,
    pub(crate) target_id: Option<&'a str>,
    pub(crate) action: &'a str,
    /// The account on the target that was checked, when the edge named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) login: Option<&'a str>,
    pub(crate) client_ip: Option<&'a str>,
    /// Answered from the decision cache.
    pub(crate) cached: bool,
}

/// One admin change, as published. `details` name what changed (usernames,
/// target names, ids, flags), never a password, key material or token.
#[derive(Debug, Serialize)]
pub(crate) struct ChangeEvent<'a> {
    /// Always "admin".
    pub(crate) kind: &'static str,
    pub(crate) ts: i64,
    /// e.g. "user.add", "grant", "invitation.create".
    pub(crate) action: &'a str,
    /// The API token's user, or "service".
    pub(crate) actor: &'a str,
    pub(crate) actor_user_id: Option<&'a str>,
    pub(crate) details: std::collections::BTreeMap<&'a str, &'a str>,
}

/// Where audit events go. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Audit {
    events: Arc<dyn EventLog>,
    subject: String,
}

impl Audit {
    pub(crate) fn new(events: Arc<dyn EventLog>, subject: String) -> Self {
        Self { events, subject }
    }

    /// Publishes an admin change (or a refused claim) with the current
    /// caller. Like decisions, a log failure is logged and the change stands.
    pub(crate) async fn change(&self, action: &str, details: &[(&str, &str)]) {
        let actor = current_actor();
        let event = ChangeEvent {
            kind: "admin",
            ts: phirepass_runtime::clock::now_millis(),
            action,
            actor: actor.name(),
            actor_user_id: match &actor {
                Actor::Service => None,
                Actor::User { user_id, .. } => Some(user_id),
            },
            details: details.iter().copied().collect(),
        };
        self.publish(&event).await;
    }

    /// Publishes a decision. A log failure is logged, not returned: the
    /// decision stands (and the `warn!`/`info!` line already recorded it).
    pub(crate) async fn decision(&self, event: &AuthorizeEvent<'_>) {
        self.publish(event).await;
    }

    /// Tells every edge that access may have shrunk (a grant, a user, a group, a target or a
    /// session changed): on `<prefix>.events.access`, next to the audit subject. On NATS the
    /// edges hear it at once and re-check their live streams; in memory nobody does, and their
    /// periodic re-check is the bound. A failure is logged: that re-check still comes.
    pub(crate) async fn access_changed(&self) {
        let Some((prefix, _)) = self.subject.rsplit_once('.') else {
            return;
        };
        let subject = format!("{prefix}.access");
        let payload = serde_json::json!({
            "kind": "access_changed",
            "ts": phirepass_runtime::clock::now_millis(),
        });
        if let Err(error) = self
            .events
            .append(&subject, Bytes::from(payload.to_string()))
            .await
        {
            tracing::warn!(%error, %subject, "access change not announced");
        }
    }

    async fn publish(&self, event: &impl Serialize) {
        let payload = match serde_json::to_vec(event) {
            Ok(payload) => Bytes::from(payload),
            Err(error) => {
                tracing::error!(%error, "audit event not encoded");
                return;
            }
        };
        if let Err(error) = self.events.append(&self.subject, payload).await {
            tracing::error!(%error, subject = %self.subject, "audit event not stored");
        }
    }
}
