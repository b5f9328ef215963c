//! Relays end when the access that allowed them goes: a revoked grant, a removed group
//! membership or target, a disabled or deleted user. Every `access_recheck_interval` the edge
//! lists, once per user with a live relay, the targets the user may reach now
//! (ListAccessibleTargets: no audit event per check) and disconnects the relays whose target is
//! no longer among them, telling the client why; authz's announcement of a change
//! (`<prefix>.events.access`, heard on NATS) starts a round at once. When authz cannot be asked, nothing is ended:
//! the next round asks again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use phirepass_proto::authz::{AuthorizeResponse, ListAccessibleTargetsRequest};
use russh::Disconnect;
use russh::server::Handle;
use tracing::{debug, info, warn};

use crate::edge::{Conn, Edge};

/// A relay session this edge holds, and what it was allowed on.
#[derive(Clone)]
pub(crate) struct HeldRelay {
    username: String,
    target_id: String,
    target_name: String,
    handle: Handle,
}

/// Notes the relay of `conn` (on its first relayed channel) for re-checks.
pub(crate) fn hold(conn: &Conn, decision: &AuthorizeResponse) {
    let (Some(authed), Some(handle)) = (conn.authed.get(), conn.handle.get()) else {
        return;
    };
    let relay = HeldRelay {
        username: authed.username.clone(),
        target_id: decision.target_id.clone(),
        target_name: decision.target_name.clone(),
        handle: handle.clone(),
    };
    if let Ok(mut relays) = conn.edge.relays.lock() {
        relays.insert(conn.id.clone(), relay);
    }
}

pub(crate) fn release(conn: &Conn) {
    if let Ok(mut relays) = conn.edge.relays.lock() {
        relays.remove(&conn.id);
    }
}

/// Re-checks every held relay each `access_recheck_interval`, and at once when authz announces
/// a change to access on `<prefix>.events.access`, for as long as the edge runs.
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

async fn recheck(edge: &Edge) {
    let held: Vec<(String, HeldRelay)> = match edge.relays.lock() {
        Ok(relays) => relays
            .iter()
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect(),
        Err(_) => return,
    };
    let mut reachable: HashMap<String, Option<HashSet<String>>> = HashMap::new();
    for (_, relay) in &held {
        if !reachable.contains_key(&relay.username) {
            let targets = reachable_targets(edge, &relay.username).await;
            reachable.insert(relay.username.clone(), targets);
        }
    }
    for (session, relay) in held {
        let Some(Some(targets)) = reachable.get(&relay.username) else {
            continue;
        };
        if targets.contains(&relay.target_id) {
            continue;
        }
        info!(
            session = %session,
            user = %relay.username,
            target = %relay.target_name,
            "access revoked: ending the relay"
        );
        let message = format!(
            "phirepass: access revoked: you may no longer reach {}",
            relay.target_name
        );
        let _ = relay
            .handle
            .disconnect(Disconnect::ByApplication, message, "en".into())
            .await;
        if let Ok(mut relays) = edge.relays.lock() {
            relays.remove(&session);
        }
    }
}

/// The ids of the targets `username` may reach now (none for a disabled or deleted user);
/// `None` when authz could not be asked.
async fn reachable_targets(edge: &Edge, username: &str) -> Option<HashSet<String>> {
    let reply = edge
        .authz
        .clone()
        .list_accessible_targets(ListAccessibleTargetsRequest {
            username: username.to_string(),
        })
        .await;
    match reply {
        Ok(r) => Some(r.into_inner().target_ids()),
        Err(s) => {
            debug!(code = ?s.code(), user = username, "relay access re-check failed; will retry");
            None
        }
    }
}
