//! Audit events: every access decision as one JSON object on the event log
//! (`pp.events.audit`, a JetStream stream in production).

use bytes::Bytes;
use serde::Serialize;

use crate::auth::{Actor, current_actor};
use crate::authorize::{Decision, Who};
use crate::decision_cache::CachedDecision;
use crate::service::Inner;

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

impl Inner {
    /// After an admin change: drops every cached decision, then publishes
    /// the change with the current caller. Like decisions, a log failure is
    /// logged and the change stands.
    pub(crate) async fn audit_change(&self, action: &str, details: &[(&str, &str)]) {
        self.cache.invalidate().await;
        self.audit_event(action, details).await;
    }

    /// Publishes an event in the admin shape without invalidating the
    /// decision cache: for outcomes that change nothing (a refused claim).
    pub(crate) async fn audit_event(&self, action: &str, details: &[(&str, &str)]) {
        let actor = current_actor();
        let event = ChangeEvent {
            kind: "admin",
            ts: phirepass_store::now_millis(),
            action,
            actor: actor.name(),
            actor_user_id: match &actor {
                Actor::Service => None,
                Actor::User { user_id, .. } => Some(user_id),
            },
            details: details.iter().copied().collect(),
        };
        self.publish_audit(&event).await;
    }

    /// Publishes a decision answered from the cache, like a computed one.
    pub(crate) async fn audit_cached(
        &self,
        d: &CachedDecision,
        who: Who<'_>,
        target: &str,
        action: &str,
        client_ip: Option<&str>,
    ) {
        let event = AuthorizeEvent {
            kind: "authorize",
            ts: phirepass_store::now_millis(),
            allowed: d.allowed,
            reason: &d.reason,
            user: match who {
                Who::Id(id) => id,
                Who::Name(name) => name,
            },
            user_id: d.user_id.as_deref(),
            username: d.username.as_deref(),
            target,
            target_kind: d.target_kind.as_deref(),
            target_id: d.target_id.as_deref(),
            action,
            client_ip: client_ip.filter(|ip| ip.len() <= 64),
            cached: true,
        };
        self.publish_audit(&event).await;
    }

    async fn publish_audit(&self, event: &impl Serialize) {
        let payload = match serde_json::to_vec(event) {
            Ok(payload) => Bytes::from(payload),
            Err(error) => {
                tracing::error!(%error, "audit event not encoded");
                return;
            }
        };
        if let Err(error) = self.events.append(&self.audit_subject, payload).await {
            tracing::error!(%error, subject = %self.audit_subject, "audit event not stored");
        }
    }

    /// Publishes the decision. A log failure is logged, not returned: the
    /// decision stands (and the `warn!`/`info!` line already recorded it).
    pub(crate) async fn audit_decision(
        &self,
        d: &Decision,
        who: Who<'_>,
        target: &str,
        action: &str,
        client_ip: Option<&str>,
    ) {
        let event = AuthorizeEvent {
            kind: "authorize",
            ts: phirepass_store::now_millis(),
            allowed: d.allowed,
            reason: &d.reason,
            user: match who {
                Who::Id(id) => id,
                Who::Name(name) => name,
            },
            user_id: d.user.as_ref().map(|u| u.id.as_str()),
            username: d.user.as_ref().map(|u| u.username.as_str()),
            target,
            target_kind: d.target.as_ref().map(|t| t.kind.as_str()),
            target_id: d.target.as_ref().map(|t| t.id.as_str()),
            action,
            client_ip: client_ip.filter(|ip| ip.len() <= 64),
            cached: false,
        };
        self.publish_audit(&event).await;
    }
}
