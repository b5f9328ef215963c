//! Audit events of vault changes, published on the audit subject (the same
//! stream authz writes to). They name hosts, option keys and credential
//! names, never a value or secret.

use phirepass_bus::EventLog;

/// One vault change, as published on the audit subject. Names hosts,
/// option keys and credential names, never a value or secret.
#[derive(serde::Serialize)]
struct ChangeEvent<'a> {
    /// Always "admin".
    kind: &'static str,
    service: &'static str,
    ts: i64,
    action: &'a str,
    /// The API token's user, "admin-token" or "service".
    actor: &'a str,
    details: std::collections::BTreeMap<&'a str, &'a str>,
}

/// Publishes one change; a failure is logged and the change stands.
pub(crate) async fn publish(
    events: &dyn EventLog,
    subject: &str,
    actor: &str,
    action: &str,
    details: &[(&str, &str)],
) {
    let event = ChangeEvent {
        kind: "admin",
        service: "secrets",
        ts: phirepass_store::now_millis(),
        action,
        actor,
        details: details.iter().copied().collect(),
    };
    let payload = match serde_json::to_vec(&event) {
        Ok(p) => bytes::Bytes::from(p),
        Err(error) => {
            tracing::error!(%error, "audit event not encoded");
            return;
        }
    };
    if let Err(error) = events.append(subject, payload).await {
        tracing::error!(%error, subject = %subject, "audit event not stored");
    }
}
