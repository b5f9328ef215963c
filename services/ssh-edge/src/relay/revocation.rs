//! Connections end when the access that allowed them goes. Every authenticated connection is
//! held here (menu, `ssh -R` tunnels, private aliases, relays); every `access_recheck_interval`
//! the edge lists, once per user with a live connection, what the user may reach now
//! (ListAccessibleTargets: no audit event per check), and authz's announcement of a change
//! (`<prefix>.events.access`, heard on NATS) starts a round at once. A user who is disabled or
//! removed loses every connection (which unpublishes her tunnels); a relay also ends when its
//! target is no longer listed, or its grants no longer allow the account it logged in as. Each
//! client is told why. When authz cannot be asked, nothing is ended: the next round asks again.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use futures_util::{FutureExt, StreamExt};
use phirepass_proto::authz::{
    AccessibleTarget, AuthorizeResponse, ListAccessibleTargetsRequest,
    ListAccessibleTargetsResponse,
};
use russh::Disconnect;
use tracing::{debug, info, warn};

use crate::edge::{Conn, Edge};

/// Told to every connection of a user who is no longer active.
const USER_GONE: &str = "phirepass: access revoked: your account was disabled or removed";

/// An authenticated connection this edge holds, and the relay it runs, if any.
pub(crate) struct Held {
    username: String,
    conn: Weak<Conn>,
    relay: Option<HeldRelay>,
}

/// What a relay was allowed on: its target and the account on it.
#[derive(Clone)]
struct HeldRelay {
    target_id: String,
    target_name: String,
    /// The account the relay logged in as.
    account: String,
    /// The target's default account when the relay started (the vault's, else the username):
    /// a grant that lists no login allows it.
    default_account: String,
}

/// Notes `conn` for re-checks once its user is authenticated.
pub(crate) fn hold(conn: &Arc<Conn>) {
    let Some(authed) = conn.authed.get() else {
        return;
    };
    let held = Held {
        username: authed.username.clone(),
        conn: Arc::downgrade(conn),
        relay: None,
    };
    if let Ok(mut all) = conn.edge.held.lock() {
        all.insert(conn.id.clone(), held);
    }
}

/// Notes what the relay of `conn` (on its first relayed channel) was allowed on.
pub(crate) fn hold_relay(conn: &Conn, decision: &AuthorizeResponse) {
    let Some(authed) = conn.authed.get() else {
        return;
    };
    let configured = conn
        .link
        .get()
        .map(|l| l.configured.clone())
        .unwrap_or_default();
    let default_account = if configured.is_empty() {
        authed.username.clone()
    } else {
        configured
    };
    let relay = HeldRelay {
        target_id: decision.target_id.clone(),
        target_name: decision.target_name.clone(),
        account: decision.login.clone(),
        default_account,
    };
    if let Ok(mut all) = conn.edge.held.lock()
        && let Some(held) = all.get_mut(&conn.id)
    {
        held.relay = Some(relay);
    }
}

pub(crate) fn release(conn: &Conn) {
    if let Ok(mut all) = conn.edge.held.lock() {
        all.remove(&conn.id);
    }
}

/// Re-checks every held connection each `access_recheck_interval`, and at once when authz
/// announces a change to access on `<prefix>.events.access`, for as long as the edge runs.
pub(crate) async fn watch(edge: Arc<Edge>) {
    tokio::join!(every_interval(edge.clone()), on_changes(edge));
}

async fn every_interval(edge: Arc<Edge>) {
    let mut tick = tokio::time::interval(edge.config.access_recheck_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        recheck(&edge).await;
    }
}

async fn on_changes(edge: Arc<Edge>) {
    let subject = edge.subjects.events("access");
    loop {
        match edge.bus.subscribe(&subject).await {
            Ok(mut sub) => {
                while sub.next().await.is_some() {
                    // A burst of changes is one round.
                    while let Some(Some(_)) = sub.next().now_or_never() {}
                    recheck(&edge).await;
                }
                warn!(subject, "access-change subscription ended; resubscribing");
            }
            Err(error) => warn!(%error, subject, "cannot subscribe to access changes; retrying"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// One round: one ListAccessibleTargets per user, then every connection that lost its access
/// is told why and disconnected.
async fn recheck(edge: &Edge) {
    let held: Vec<(String, String, Weak<Conn>, Option<HeldRelay>)> = match edge.held.lock() {
        Ok(all) => all
            .iter()
            .map(|(id, h)| {
                let relay = h.relay.clone();
                (id.clone(), h.username.clone(), h.conn.clone(), relay)
            })
            .collect(),
        Err(_) => return,
    };
    let mut access: HashMap<String, Option<ListAccessibleTargetsResponse>> = HashMap::new();
    for (_, username, _, _) in &held {
        if !access.contains_key(username) {
            let now = accessible(edge, username).await;
            access.insert(username.clone(), now);
        }
    }
    for (session, username, conn, relay) in held {
        let Some(Some(now)) = access.get(&username) else {
            continue;
        };
        let Some(message) = revoked(now, relay.as_ref()) else {
            continue;
        };
        info!(
            session = %session,
            user = %username,
            target = relay.as_ref().map(|r| r.target_name.as_str()),
            reason = %message,
            "access revoked: ending the connection"
        );
        if let Some(handle) = conn.upgrade().and_then(|c| c.handle.get().cloned()) {
            let _ = handle
                .disconnect(Disconnect::ByApplication, message, "en".into())
                .await;
        }
        if let Ok(mut all) = edge.held.lock() {
            all.remove(&session);
        }
    }
}

/// Why a connection must end given the user's access `now`; `None` when it may go on.
fn revoked(now: &ListAccessibleTargetsResponse, relay: Option<&HeldRelay>) -> Option<String> {
    if now.user_gone {
        return Some(USER_GONE.to_owned());
    }
    let relay = relay?;
    let listed = now
        .targets
        .iter()
        .find(|t| t.target.as_ref().is_some_and(|t| t.id == relay.target_id));
    let Some(target) = listed else {
        return Some(format!(
            "phirepass: access revoked: you may no longer reach {}",
            relay.target_name
        ));
    };
    if account_allowed(target, relay) {
        return None;
    }
    Some(format!(
        "phirepass: access revoked: you may no longer log in to {} as {}",
        relay.target_name, relay.account
    ))
}

/// Authorize's rule for the account (`resolve_login` in authz): any for the owner, else a
/// listed login, else the default account when some grant lists none.
fn account_allowed(target: &AccessibleTarget, relay: &HeldRelay) -> bool {
    // Every grant listing none is the same as `default_login` (an older authz omits it).
    let default_allowed = target.default_login || target.logins.is_empty();
    target.reason == "owner"
        || relay.account.is_empty()
        || target.logins.contains(&relay.account)
        || (default_allowed && relay.account == relay.default_account)
}

/// What `username` may reach now (nothing, and `user_gone`, for a disabled or deleted
/// user); `None` when authz could not be asked.
async fn accessible(edge: &Edge, username: &str) -> Option<ListAccessibleTargetsResponse> {
    let reply = edge
        .authz
        .clone()
        .list_accessible_targets(ListAccessibleTargetsRequest {
            username: username.to_string(),
        })
        .await;
    match reply {
        Ok(r) => Some(r.into_inner()),
        Err(s) => {
            debug!(code = ?s.code(), user = username, "access re-check failed; will retry");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phirepass_proto::authz::Target;

    fn relay(account: &str) -> HeldRelay {
        HeldRelay {
            target_id: "t1".into(),
            target_name: "web-1".into(),
            account: account.into(),
            default_account: "svc".into(),
        }
    }

    fn now(reason: &str, logins: &[&str], default_login: bool) -> ListAccessibleTargetsResponse {
        ListAccessibleTargetsResponse {
            targets: vec![AccessibleTarget {
                target: Some(Target {
                    id: "t1".into(),
                    name: "web-1".into(),
                    ..Default::default()
                }),
                reason: reason.into(),
                logins: logins.iter().map(|l| l.to_string()).collect(),
                default_login,
            }],
            user_gone: false,
        }
    }

    #[test]
    fn a_relay_goes_on_only_as_an_account_its_grants_still_allow() {
        let grant = "user grant";
        // Owner: any account.
        assert!(revoked(&now("owner", &[], false), Some(&relay("root"))).is_none());
        // Grants listing none: the default account only.
        assert!(revoked(&now(grant, &[], true), Some(&relay("svc"))).is_none());
        assert!(revoked(&now(grant, &[], true), Some(&relay("root"))).is_some());
        // Listed logins, and the default account only while some grant lists none.
        assert!(revoked(&now(grant, &["root"], false), Some(&relay("root"))).is_none());
        assert!(revoked(&now(grant, &["root"], true), Some(&relay("svc"))).is_none());
        let message = revoked(&now(grant, &["root"], false), Some(&relay("svc")));
        assert_eq!(
            message.as_deref(),
            Some("phirepass: access revoked: you may no longer log in to web-1 as svc")
        );
    }

    #[test]
    fn an_inactive_user_loses_every_connection_and_a_relay_its_unlisted_target() {
        let gone = ListAccessibleTargetsResponse {
            targets: Vec::new(),
            user_gone: true,
        };
        assert_eq!(revoked(&gone, None).as_deref(), Some(USER_GONE));
        // An authz that predates `user_gone` ends nothing by it.
        let older = ListAccessibleTargetsResponse::default();
        assert!(revoked(&older, None).is_none());
        assert_eq!(
            revoked(&gone, Some(&relay("svc"))).as_deref(),
            Some(USER_GONE)
        );
        let active = ListAccessibleTargetsResponse {
            targets: Vec::new(),
            user_gone: false,
        };
        assert!(revoked(&active, None).is_none());
        let message = revoked(&active, Some(&relay("svc")));
        assert!(message.is_some_and(|m| m.ends_with("no longer reach web-1")));
    }
}
