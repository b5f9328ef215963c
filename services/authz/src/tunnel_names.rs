//! Tunnel names (`ssh -R`, design note 002): a reserved name is a target of
//! kind TUNNEL owned by one user for good (until an admin releases it), in
//! the one namespace of target names, so grants on it work like on nodes.

use std::str::FromStr;

use phirepass_proto::authz as pb;
use phirepass_store::{Store, StoreError, TunnelNameRow, UserRow, new_id, now_millis};

use crate::audit::Audit;
use crate::error::{AuthzError, Result};

/// Names no user may claim: they would shadow the service's own hosts.
pub const BUILTIN_RESERVED_TUNNEL_NAMES: &[&str] = &[
    "www", "api", "admin", "app", "apps", "mail", "ssh", "login", "static", "assets", "status",
];

/// Which free names a user may reserve (env `AUTHZ_TUNNEL_NAME_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TunnelNamePolicy {
    /// First come, first served.
    #[default]
    Any,
    /// `<username>` or `<username>-...` only.
    UserPrefix,
}

impl FromStr for TunnelNamePolicy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "any" => Ok(Self::Any),
            "user-prefix" => Ok(Self::UserPrefix),
            other => Err(format!(
                "unknown tunnel name policy {other:?} (expected \"any\" or \"user-prefix\")"
            )),
        }
    }
}

impl TunnelNamePolicy {
    /// `None` when allowed, else why not.
    fn refuses(self, username: &str, name: &str) -> Option<String> {
        match self {
            Self::Any => None,
            Self::UserPrefix => {
                let ok = name == username
                    || name
                        .strip_prefix(username)
                        .is_some_and(|rest| rest.starts_with('-'));
                (!ok).then(|| format!("must be {username:?} or start with \"{username}-\""))
            }
        }
    }
}

/// A DNS label: 1-63 of a-z, 0-9, '-', not starting or ending with '-'.
pub(crate) fn invalid_tunnel_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 63 {
        return Some("must be 1-63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("only a-z, 0-9 and '-' are allowed");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("must not start or end with '-'");
    }
    None
}

pub(crate) fn tunnel_name_to_proto(row: &TunnelNameRow) -> pb::TunnelName {
    pb::TunnelName {
        name: row.name.clone(),
        user_id: row.user_id.clone(),
        username: row.username.clone(),
        created_at: row.created_at,
    }
}

fn answer(allowed: bool, reason: impl Into<String>) -> pb::ClaimTunnelNameResponse {
    pb::ClaimTunnelNameResponse {
        allowed,
        reason: reason.into(),
    }
}

/// Tunnel name claims, reservations and releases.
pub(crate) struct TunnelNames {
    pub(crate) store: Store,
    pub(crate) audit: Audit,
    pub(crate) tunnel_name_policy: TunnelNamePolicy,
    pub(crate) tunnel_reserved_names: Vec<String>,
}

/// A claim's answer, and whether it stored a new reservation (a new target:
/// cached "unknown target" decisions are stale).
pub(crate) struct ClaimOutcome {
    pub(crate) reply: pb::ClaimTunnelNameResponse,
    pub(crate) reserved: bool,
}

impl TunnelNames {
    pub(crate) fn is_operator_reserved(&self, name: &str) -> bool {
        BUILTIN_RESERVED_TUNNEL_NAMES.contains(&name)
            || self.tunnel_reserved_names.iter().any(|n| n == name)
    }

    /// Decides, and with `reserve` stores, a claim; audits the outcome.
    pub(crate) async fn claim_tunnel_name(
        &self,
        req: pb::ClaimTunnelNameRequest,
    ) -> Result<ClaimOutcome> {
        if req.user_id.is_empty() {
            return Err(AuthzError::InvalidArgument("user_id is required".into()));
        }
        let user = self.store.user_by_id(&req.user_id).await?;
        let reply = self.evaluate_claim(user.as_ref(), &req).await?;
        let stored = reply.allowed && reply.reason == "reserved";
        tracing::info!(user_id = %req.user_id, name = %req.name, reserve = req.reserve, allowed = reply.allowed, reason = %reply.reason, "tunnel name claim");
        let username = user.as_ref().map_or("", |u| u.username.as_str());
        let details = [
            ("name", req.name.as_str()),
            ("user_id", req.user_id.as_str()),
            ("username", username),
            ("allowed", if reply.allowed { "true" } else { "false" }),
            ("reason", reply.reason.as_str()),
        ];
        let action = if stored {
            "tunnel_name.reserve"
        } else {
            "tunnel_name.claim"
        };
        self.audit.change(action, &details).await;
        Ok(ClaimOutcome {
            reply,
            reserved: stored,
        })
    }

    async fn evaluate_claim(
        &self,
        user: Option<&UserRow>,
        req: &pb::ClaimTunnelNameRequest,
    ) -> Result<pb::ClaimTunnelNameResponse> {
        let name = req.name.as_str();
        if let Some(why) = invalid_tunnel_name(name) {
            return Ok(answer(false, format!("invalid name: {why}")));
        }
        let Some(user) = user else {
            return Ok(answer(false, "unknown user"));
        };
        if user.disabled {
            return Ok(answer(false, "user disabled"));
        }
        if self.is_operator_reserved(name) {
            return Ok(answer(false, "reserved by the operator"));
        }
        if let Some(reply) = self.existing_claim(user, name).await? {
            return Ok(reply);
        }
        if let Some(why) = self.tunnel_name_policy.refuses(&user.username, name) {
            return Ok(answer(
                false,
                format!("not allowed by the naming policy: {why}"),
            ));
        }
        if !req.reserve {
            return Ok(answer(true, "free"));
        }
        match self
            .store
            .insert_tunnel_name(&new_id(), name, &user.id, now_millis())
            .await
        {
            Ok(()) => Ok(answer(true, "reserved")),
            // Lost a race: say who won.
            Err(StoreError::Conflict) => Ok(self
                .existing_claim(user, name)
                .await?
                .unwrap_or_else(|| answer(false, "taken"))),
            Err(e) => Err(e.into()),
        }
    }

    /// The answer when `name` already names a target: "owner" for the
    /// user's own reservation, "taken" for anything else.
    async fn existing_claim(
        &self,
        user: &UserRow,
        name: &str,
    ) -> Result<Option<pb::ClaimTunnelNameResponse>> {
        if let Some(row) = self.store.tunnel_name(name).await? {
            return Ok(Some(if row.user_id == user.id {
                answer(true, "owner")
            } else {
                answer(false, "taken")
            }));
        }
        // A node or host of that name (only the target_names row matters).
        Ok(self
            .store
            .target_by_name(name)
            .await?
            .map(|_| answer(false, "taken")))
    }

    pub(crate) async fn list_tunnel_names(
        &self,
        req: pb::ListTunnelNamesRequest,
    ) -> Result<pb::ListTunnelNamesResponse> {
        let rows = self
            .store
            .list_tunnel_names(req.user_id.as_deref().filter(|u| !u.is_empty()))
            .await?;
        Ok(pb::ListTunnelNamesResponse {
            names: rows.iter().map(tunnel_name_to_proto).collect(),
        })
    }

    pub(crate) async fn release_tunnel_name(
        &self,
        req: pb::ReleaseTunnelNameRequest,
    ) -> Result<pb::ReleaseTunnelNameResponse> {
        let owner = self.store.tunnel_name(&req.name).await?;
        if !self.store.remove_tunnel_name(&req.name).await? {
            return Err(AuthzError::NotFound("tunnel name"));
        }
        let (user_id, username) = owner
            .as_ref()
            .map_or(("", ""), |o| (o.user_id.as_str(), o.username.as_str()));
        tracing::info!(name = %req.name, %user_id, "tunnel name released");
        self.audit
            .change(
                "tunnel_name.release",
                &[
                    ("name", req.name.as_str()),
                    ("user_id", user_id),
                    ("username", username),
                ],
            )
            .await;
        Ok(pb::ReleaseTunnelNameResponse {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(invalid_tunnel_name("my-app2"), None);
        for bad in ["", "-a", "a-", "My", "a_b", "a.b", &"a".repeat(64)] {
            assert!(invalid_tunnel_name(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn user_prefix_policy() {
        let p = TunnelNamePolicy::UserPrefix;
        assert_eq!(p.refuses("alice", "alice"), None);
        assert_eq!(p.refuses("alice", "alice-web"), None);
        assert!(p.refuses("alice", "alicex").is_some());
        assert!(p.refuses("alice", "bob-alice").is_some());
        assert_eq!(TunnelNamePolicy::Any.refuses("alice", "web"), None);
        assert_eq!("user-prefix".parse(), Ok(TunnelNamePolicy::UserPrefix));
        assert!("nope".parse::<TunnelNamePolicy>().is_err());
    }
}
