//! Ends live access whose grounds are gone: a browser WebSocket whose session was logged out
//! (or whose user was disabled or deleted), a terminal or app WebSocket whose grant was revoked.
//!
//! Each long-lived stream registers a [`LiveGuard`] here. A task re-checks every registered
//! stream each `access_recheck_interval` (VerifySession per session, ListAccessibleTargets per
//! user: neither writes an audit event), at once for a user named on
//! `Subjects::access_changed()`, which a gateway publishes when one of its users logs out, and
//! at once for everyone when authz announces a change on `<prefix>.events.access` (heard on
//! NATS; with the in-memory bus the periodic round is the bound).
//! When authz cannot be asked, nothing is ended: the next round asks again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use phirepass_proto::authz::{ListAccessibleTargetsRequest, VerifySessionRequest};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::state::AppState;

/// What the user is told when a logout (or a disabled account) ends the stream.
pub const LOGGED_OUT: &str = "access revoked: you were logged out";

/// Every live stream of this gateway that depends on a session or a grant.
#[derive(Clone, Default)]
pub struct LiveAccess {
    inner: Arc<Mutex<Entries>>,
}

#[derive(Default)]
struct Entries {
    next: u64,
    map: HashMap<u64, Entry>,
}

struct Entry {
    user_id: String,
    username: String,
    /// The browser session the stream runs on, re-verified each round.
    session: Option<String>,
    /// (target id, target name) the stream reaches, checked against the user's targets.
    target: Option<(String, String)>,
    /// The session is gone: the whole stream ends, not only its terminal.
    session_revoked: bool,
    revoke: watch::Sender<Option<String>>,
}

/// One entry's question for a round.
struct Check {
    id: u64,
    user_id: String,
    username: String,
    session: Option<String>,
    target: Option<(String, String)>,
}

fn lock(m: &Mutex<Entries>) -> MutexGuard<'_, Entries> {
    // A poisoned lock only means a holder panicked mid-update; the map is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LiveAccess {
    /// Registers a stream of `user_id`/`username`; dropping the guard removes it.
    pub fn register(&self, user_id: &str, username: &str, session: Option<String>) -> LiveGuard {
        let (tx, rx) = watch::channel(None);
        let mut entries = lock(&self.inner);
        entries.next += 1;
        let id = entries.next;
        entries.map.insert(
            id,
            Entry {
                user_id: user_id.to_string(),
                username: username.to_string(),
                session,
                target: None,
                session_revoked: false,
                revoke: tx,
            },
        );
        LiveGuard {
            inner: self.inner.clone(),
            id,
            revoked: rx,
        }
    }

    /// Ends the stream `id` with `reason`: all of it when its `session` is gone, else its
    /// target (a browser socket then stays, without its terminal).
    fn revoke(&self, id: u64, reason: &str, session: bool) {
        if let Some(e) = lock(&self.inner).map.get_mut(&id) {
            e.session_revoked |= session;
            let username = &e.username;
            e.revoke.send_if_modified(|r| {
                if r.as_deref() == Some(reason) || (r.is_some() && !session) {
                    return false;
                }
                info!(user = %username, reason, "live access revoked");
                *r = Some(reason.to_string());
                true
            });
        }
    }

    fn snapshot(&self, only_user: Option<&str>) -> Vec<Check> {
        lock(&self.inner)
            .map
            .iter()
            .filter(|(_, e)| only_user.is_none_or(|u| u == e.user_id))
            .map(|(id, e)| Check {
                id: *id,
                user_id: e.user_id.clone(),
                username: e.username.clone(),
                session: e.session.clone(),
                target: e.target.clone(),
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A registered stream: resolves [`LiveGuard::revoked`] when its access goes.
pub struct LiveGuard {
    inner: Arc<Mutex<Entries>>,
    id: u64,
    revoked: watch::Receiver<Option<String>>,
}

impl LiveGuard {
    /// The target the stream reaches from now on (`None`: only the session matters). A
    /// revocation of the previous target no longer counts; one of the session still does.
    pub fn set_target(&self, target: Option<(&str, &str)>) {
        if let Some(e) = lock(&self.inner).map.get_mut(&self.id) {
            e.target = target.map(|(id, name)| (id.to_string(), name.to_string()));
            if !e.session_revoked {
                e.revoke.send_replace(None);
            }
        }
    }

    /// Why the access was revoked, if it was.
    pub fn reason(&self) -> Option<String> {
        self.revoked.borrow().clone()
    }

    /// Waits until the access is revoked; returns why. Safe to call again after it returned.
    pub async fn revoked(&mut self) -> String {
        loop {
            if let Some(reason) = self.revoked.borrow_and_update().clone() {
                return reason;
            }
            if self.revoked.changed().await.is_err() {
                // The entry is only removed with this guard: cannot happen, but never spin.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        lock(&self.inner).map.remove(&self.id);
    }
}

/// Tells every gateway that `user_id`'s access changed (a logout), so they re-check now.
pub async fn publish_changed(state: &AppState, user_id: &str) {
    let subject = state.subjects.access_changed();
    let payload = Bytes::copy_from_slice(user_id.as_bytes());
    if let Err(e) = state.bus.publish(&subject, Vec::new(), payload).await {
        // The periodic round still ends the user's streams.
        warn!(error = %e, "could not announce an access change");
    }
}

/// Runs for as long as the gateway does: periodic rounds, rounds for users whose session a
/// gateway ended, and full rounds when authz announces a change to access.
pub async fn watch(state: Arc<AppState>) {
    let logouts = state.subjects.access_changed();
    let changes = state.subjects.events("access");
    tokio::join!(
        every_interval(state.clone()),
        listen(state.clone(), logouts, true),
        listen(state, changes, false),
    );
}

async fn every_interval(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.access_recheck_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        recheck(&state, None).await;
    }
}

/// Re-checks on each message of `subject`: the named user's streams (`per_user`), or all.
async fn listen(state: Arc<AppState>, subject: String, per_user: bool) {
    loop {
        match state.bus.subscribe(&subject).await {
            Ok(mut sub) => {
                while let Some(msg) = sub.next().await {
                    if !per_user {
                        // A burst of changes (a script granting and revoking) is one round.
                        while let Some(Some(_)) = sub.next().now_or_never() {}
                        recheck(&state, None).await;
                    } else if let Ok(user_id) = std::str::from_utf8(&msg.payload)
                        && !user_id.is_empty()
                    {
                        recheck(&state, Some(user_id)).await;
                    }
                }
                warn!(subject, "access-change subscription ended; resubscribing");
            }
            Err(e) => warn!(error = %e, subject, "cannot subscribe to access changes; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One round: every session asked about once, every user's targets listed once.
pub async fn recheck(state: &AppState, only_user: Option<&str>) {
    let checks = state.live.snapshot(only_user);
    if checks.is_empty() {
        return;
    }
    let mut sessions: HashMap<&str, Option<bool>> = HashMap::new();
    for c in &checks {
        if let Some(token) = c.session.as_deref()
            && !sessions.contains_key(token)
        {
            let valid = session_valid(state, token, &c.user_id).await;
            sessions.insert(token, valid);
        }
    }
    let mut targets: HashMap<&str, Option<HashSet<String>>> = HashMap::new();
    for c in checks.iter().filter(|c| c.target.is_some()) {
        if !targets.contains_key(c.username.as_str()) {
            let reachable = reachable_targets(state, &c.username).await;
            targets.insert(c.username.as_str(), reachable);
        }
    }
    for c in &checks {
        let session_gone = c
            .session
            .as_deref()
            .is_some_and(|t| sessions.get(t) == Some(&Some(false)));
        if session_gone {
            state.live.revoke(c.id, LOGGED_OUT, true);
            continue;
        }
        if let Some((id, name)) = &c.target
            && let Some(Some(reachable)) = targets.get(c.username.as_str())
            && !reachable.contains(id)
        {
            let reason = format!("access revoked: you may no longer reach {name}");
            state.live.revoke(c.id, &reason, false);
        }
    }
}

/// `Some(false)` when authz says the session is gone (or now someone else's); `None` when it
/// could not be asked.
async fn session_valid(state: &AppState, token: &str, user_id: &str) -> Option<bool> {
    let reply = state
        .authz
        .clone()
        .verify_session(VerifySessionRequest {
            session_token: token.to_string(),
        })
        .await;
    match reply {
        Ok(user) => Some(user.into_inner().id == user_id),
        Err(s) if s.code() == tonic::Code::Unauthenticated => Some(false),
        Err(s) => {
            debug!(code = ?s.code(), "session re-check failed; will retry");
            None
        }
    }
}

/// The ids of the targets `username` may reach now (empty for a disabled or deleted user);
/// `None` when authz could not be asked.
async fn reachable_targets(state: &AppState, username: &str) -> Option<HashSet<String>> {
    let reply = state
        .authz
        .clone()
        .list_accessible_targets(ListAccessibleTargetsRequest {
            username: username.to_string(),
        })
        .await;
    match reply {
        Ok(r) => Some(r.into_inner().target_ids()),
        Err(s) => {
            debug!(code = ?s.code(), "grant re-check failed; will retry");
            None
        }
    }
}
