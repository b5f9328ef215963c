//! Audit events: every access decision as one JSON object on the event log
//! (`pp.events.audit`, a JetStream stream in production).

use bytes::Bytes;
use serde::Serialize;

use crate::authorize::{Decision, Who};
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
}

impl Inner {
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
        };
        let payload = match serde_json::to_vec(&event) {
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
}
