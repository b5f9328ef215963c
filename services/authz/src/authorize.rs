//! The access decision: `Authorize` for every edge and channel type.
//!
//! Allowed: the owner of a node; a user with a direct grant; a member of a
//! group with a grant. Denied: unknown or disabled users, unknown targets,
//! and everyone else. Failed logins never change a decision.
//!
//! When the edge names the account it will log in as (ssh-edge relays), the
//! account is checked too ([`resolve_login`]): a node's owner may use any; a
//! grant allows the logins it lists, or, listing none, the target's default
//! account (the one its vault login names, else the user's own name).

use phirepass_proto::authz as pb;
use phirepass_store::{
    GrantVia, HostRow, NodeRow, Store, TargetKind, TargetRef, TunnelNameRow, UserRow,
};

/// The reason of a refusal for the account alone (the target is reachable).
pub(crate) const LOGIN_NOT_ALLOWED: &str = "login not allowed";

use crate::audit::{Audit, AuthorizeEvent};
use crate::decision_cache::{CachedDecision, DecisionCache, Who};
use crate::error::Result;
use crate::requests::AccessQuery;
use crate::targets::host_address;

/// One decision and what it was about.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) allowed: bool,
    /// Why; safe to show (never a secret).
    pub(crate) reason: String,
    pub(crate) user: Option<UserRow>,
    pub(crate) target: Option<TargetRef>,
    pub(crate) host: Option<HostRow>,
    pub(crate) node: Option<NodeRow>,
    pub(crate) tunnel: Option<TunnelNameRow>,
    pub(crate) any_login: bool,
    pub(crate) logins: Vec<String>,
    pub(crate) default_allowed: bool,
}

impl Decision {
    fn deny(reason: &str) -> Self {
        Self {
            allowed: false,
            reason: reason.to_owned(),
            user: None,
            target: None,
            host: None,
            node: None,
            tunnel: None,
            any_login: false,
            logins: Vec::new(),
            default_allowed: false,
        }
    }
}

impl From<CachedDecision> for pb::AuthorizeResponse {
    fn from(d: CachedDecision) -> Self {
        let target_kind = match d.target_kind.as_deref() {
            Some("node") => pb::TargetKind::Node,
            Some("host") => pb::TargetKind::Host,
            Some("tunnel") => pb::TargetKind::Tunnel,
            Some("node_group") => pb::TargetKind::NodeGroup,
            _ => pb::TargetKind::Unspecified,
        };
        pb::AuthorizeResponse {
            allowed: d.allowed,
            reason: d.reason,
            target_kind: target_kind.into(),
            target_id: d.target_id.unwrap_or_default(),
            target_name: d.target_name.unwrap_or_default(),
            address: d.address.unwrap_or_default(),
            user_id: d.user_id.unwrap_or_default(),
            username: d.username.unwrap_or_default(),
            login: d.login.unwrap_or_default(),
            logins: d.logins,
            any_login: d.any_login,
        }
    }
}

/// The audit event of one decision, computed or answered from the cache.
fn decision_event<'a>(
    d: &'a CachedDecision,
    query: &'a AccessQuery,
    cached: bool,
) -> AuthorizeEvent<'a> {
    AuthorizeEvent {
        kind: "authorize",
        ts: phirepass_runtime::clock::now_millis(),
        allowed: d.allowed,
        reason: &d.reason,
        user: query.who().as_str(),
        user_id: d.user_id.as_deref(),
        username: d.username.as_deref(),
        target: &query.target,
        target_kind: d.target_kind.as_deref(),
        target_id: d.target_id.as_deref(),
        action: &query.action,
        login: d.login.as_deref(),
        client_ip: query.client_ip.as_deref().filter(|ip| ip.len() <= 64),
        cached,
    }
}

/// Access decisions: `Authorize`, its cache, and what makes it stale.
/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct Decisions {
    pub(crate) store: Store,
    cache: DecisionCache,
    audit: Audit,
}

impl Decisions {
    pub(crate) fn new(store: Store, cache: DecisionCache, audit: Audit) -> Self {
        Self {
            store,
            cache,
            audit,
        }
    }

    /// Every cached decision is stale from now on: called by each handler
    /// that changes users, groups, targets, grants or tokens.
    pub(crate) async fn invalidate(&self) {
        self.cache.invalidate().await;
        // Live streams (relays, terminals, app WebSockets) are re-checked by their edges.
        self.audit.access_changed().await;
    }

    /// Decides about the user and target (not the account), and logs a denial with `warn!`.
    async fn decide(&self, query: &AccessQuery) -> Result<CachedDecision> {
        let (who, target, action) = (query.who(), query.target.as_str(), query.action.as_str());
        let d = match query.command() {
            Some(command) => self.evaluate_command(who, target, command).await?,
            None => self.evaluate(who, target).await?,
        };
        if d.allowed {
            let (user_id, username) = d
                .user
                .as_ref()
                .map_or(("", ""), |u| (u.id.as_str(), u.username.as_str()));
            tracing::info!(user_id, username, target, action, reason = %d.reason, "access allowed");
        } else {
            tracing::warn!(user = %who.as_str(), target, action, reason = %d.reason, "access denied");
        }
        let answer = CachedDecision {
            allowed: d.allowed,
            reason: d.reason,
            user_id: d.user.as_ref().map(|u| u.id.clone()),
            username: d.user.as_ref().map(|u| u.username.clone()),
            target_kind: d.target.as_ref().map(|t| t.kind.as_str().to_owned()),
            target_id: d.target.as_ref().map(|t| t.id.clone()),
            target_name: d.target.as_ref().map(|t| t.name.clone()),
            address: d.host.as_ref().map(host_address),
            any_login: d.any_login,
            logins: d.logins,
            default_allowed: d.default_allowed,
            login: None,
        };
        Ok(answer)
    }

    pub(crate) async fn evaluate(&self, who: Who<'_>, target: &str) -> Result<Decision> {
        let mut d = Decision::deny("");
        // The target first, so every denial still says what it was about.
        d.target = self.store.target_by_name(target).await?;
        if let Some(t) = &d.target {
            match t.kind {
                TargetKind::Node => d.node = self.store.node_by_id(&t.id).await?,
                TargetKind::Host => d.host = self.store.host_by_id(&t.id).await?,
                TargetKind::Tunnel => d.tunnel = self.store.tunnel_name_by_id(&t.id).await?,
                // Node groups have no name in the target namespace.
                TargetKind::NodeGroup => {}
            }
        }
        d.user = match who {
            Who::Id(id) => self.store.user_by_id(id).await?,
            Who::Name(name) => self.store.user_by_username(name).await?,
        };
        let Some(user) = &d.user else {
            d.reason = "unknown user".to_owned();
            return Ok(d);
        };
        if user.disabled {
            d.reason = "user disabled".to_owned();
            return Ok(d);
        }
        let Some(found) = &d.target else {
            d.reason = "unknown target".to_owned();
            return Ok(d);
        };
        // Nodes and reserved tunnel names have an owner; hosts do not.
        if d.node.as_ref().is_some_and(|n| n.user_id == user.id)
            || d.tunnel.as_ref().is_some_and(|t| t.user_id == user.id)
        {
            d.allowed = true;
            d.reason = "owner".to_owned();
            d.any_login = true;
            return Ok(d);
        }
        let Some(grants) = self
            .store
            .grant_logins(&user.id, (found.kind, &found.id))
            .await?
        else {
            d.reason = "no grant".to_owned();
            return Ok(d);
        };
        d.allowed = true;
        d.reason = match grants.via {
            GrantVia::User => "user grant".to_owned(),
            GrantVia::Group(group) => format!("group grant: {group}"),
        };
        d.logins = grants.listed;
        d.default_allowed = grants.default_allowed;
        Ok(d)
    }

    /// The user-and-target decision (or the one about running `command`) for an open
    /// ticket: from the cache when it holds it, not audited again (the edge's own check of
    /// this access was).
    pub(crate) async fn allows(
        &self,
        who: Who<'_>,
        target: &str,
        command: Option<&str>,
    ) -> Result<CachedDecision> {
        let key = self.cache.key_for(who, target, command).await;
        if let Some(key) = &key
            && let Some(hit) = self.cache.get(key).await
        {
            return Ok(hit);
        }
        let query = AccessQuery::ticket(who, target, command);
        let answer = self.decide(&query).await?;
        if let Some(key) = &key {
            self.cache.put(key, &answer).await;
        }
        Ok(answer)
    }

    /// The answer to `query` (the user and target from the cache when it holds
    /// them, the account checked per request), recorded as one audit event.
    pub(crate) async fn authorize(&self, query: &AccessQuery) -> Result<CachedDecision> {
        let key = self
            .cache
            .key_for(query.who(), &query.target, query.command())
            .await;
        let hit = match &key {
            Some(key) => self.cache.get(key).await,
            None => None,
        };
        let cached = hit.is_some();
        let mut answer = match hit {
            Some(hit) => {
                let (target, action) = (&query.target, &query.action);
                if hit.allowed {
                    tracing::info!(user_id = ?hit.user_id, %target, %action, reason = %hit.reason, cached = true, "access allowed");
                } else {
                    tracing::warn!(%target, %action, reason = %hit.reason, cached = true, "access denied");
                }
                hit
            }
            None => {
                let answer = self.decide(query).await?;
                if let Some(key) = &key {
                    self.cache.put(key, &answer).await;
                }
                answer
            }
        };
        resolve_login(&mut answer, query);
        self.audit
            .decision(&decision_event(&answer, query, cached))
            .await;
        Ok(answer)
    }
}

/// Checks the account the query names (none: nothing to check). An empty
/// login asks for the default: the configured account when allowed, else the
/// first login of the strongest grant that lists logins, else the user's own
/// name. A refused account turns the answer into a denial ("login not
/// allowed") that still names the target and the allowed logins.
pub(crate) fn resolve_login(d: &mut CachedDecision, query: &AccessQuery) {
    let Some(requested) = query.login.as_deref() else {
        return;
    };
    if !d.allowed {
        return;
    }
    let default_account = if query.configured_login.is_empty() {
        d.username.clone().unwrap_or_default()
    } else {
        query.configured_login.clone()
    };
    let allowed = |account: &str| {
        d.any_login
            || d.logins.iter().any(|l| l == account)
            || (d.default_allowed && account == default_account)
    };
    let login = if !requested.is_empty() {
        requested.to_owned()
    } else if allowed(&default_account) {
        default_account.clone()
    } else {
        d.logins
            .first()
            .cloned()
            .unwrap_or_else(|| default_account.clone())
    };
    if !allowed(&login) {
        tracing::warn!(target = %query.target, login, allowed = ?d.logins, "access denied: login not allowed");
        d.allowed = false;
        d.reason = LOGIN_NOT_ALLOWED.to_owned();
    }
    d.login = Some(login);
}
