//! A short-lived cache of Authorize decisions in presence (Redis in
//! production, so every replica shares it; memory when embedded).
//!
//! Invalidation is by generation: every key carries the current value of a
//! counter that every admin change bumps, so after a change no replica reads an older decision again. The
//! generation is read before the decision is computed: a decision computed
//! from state older than a bump is stored under the old generation, which
//! nobody reads any more.

use std::sync::Arc;
use std::time::Duration;

use phirepass_presence::Presence;
use serde::{Deserialize, Serialize};

const GENERATION_KEY: &str = "authz:acl-generation";
/// Far beyond any decision TTL: when the counter expires and restarts, the
/// decisions stored under its old values are long gone.
const GENERATION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longer names are not cached (the request is still answered).
const MAX_KEY_PART: usize = 128;

/// Who is asking: a user id or a username.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Who<'a> {
    Id(&'a str),
    Name(&'a str),
}

impl<'a> Who<'a> {
    /// The id or name, as the edge sent it.
    pub(crate) fn as_str(self) -> &'a str {
        match self {
            Self::Id(id) | Self::Name(id) => id,
        }
    }
}

/// Everything an Authorize answer says, and nothing else (no hashes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CachedDecision {
    pub(crate) allowed: bool,
    pub(crate) reason: String,
    pub(crate) user_id: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) target_kind: Option<String>,
    pub(crate) target_id: Option<String>,
    pub(crate) target_name: Option<String>,
    pub(crate) address: Option<String>,
    /// The user owns the node: any account on it.
    #[serde(default)]
    pub(crate) any_login: bool,
    /// The accounts the user's grants list, strongest grant first.
    #[serde(default)]
    pub(crate) logins: Vec<String>,
    /// Some grant lists no account: the target's default account is allowed. A decision
    /// cached by an older replica has no such field: it meant the default account only.
    #[serde(default = "default_account_allowed")]
    pub(crate) default_allowed: bool,
    /// The account checked for this request (never cached: set per request).
    #[serde(default, skip_serializing)]
    pub(crate) login: Option<String>,
}

fn default_account_allowed() -> bool {
    true
}

/// Bumps the generation: every cached decision is stale from now on.
pub(crate) async fn invalidate(presence: &dyn Presence) {
    if let Err(error) = presence.incr(GENERATION_KEY, GENERATION_TTL).await {
        // The decisions cached so far still expire within their TTL.
        tracing::warn!(%error, "decision cache not invalidated");
    }
}

#[derive(Clone)]
pub(crate) struct DecisionCache {
    presence: Arc<dyn Presence>,
    ttl: Duration,
}

impl DecisionCache {
    /// A zero `ttl` turns caching off.
    pub(crate) fn new(presence: Arc<dyn Presence>, ttl: Duration) -> Self {
        Self { presence, ttl }
    }

    pub(crate) async fn invalidate(&self) {
        invalidate(self.presence.as_ref()).await;
    }

    /// The key for this question at the current generation; `None` when
    /// caching is off, presence is unavailable, or the names are too long.
    #[cfg(test)]
    pub(crate) async fn key(&self, who: Who<'_>, target: &str) -> Option<String> {
        self.key_for(who, target, None).await
    }

    /// [`DecisionCache::key`] of the question about running `command` (a decision of its
    /// own: grants list commands one by one).
    pub(crate) async fn key_for(
        &self,
        who: Who<'_>,
        target: &str,
        command: Option<&str>,
    ) -> Option<String> {
        if self.ttl.is_zero() {
            return None;
        }
        let (tag, name) = match who {
            Who::Id(id) => ("i", id),
            Who::Name(name) => ("n", name),
        };
        if name.len() > MAX_KEY_PART || target.len() > MAX_KEY_PART {
            return None;
        }
        let generation = match self.presence.get(GENERATION_KEY).await {
            Ok(value) => value.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0),
            Err(error) => {
                tracing::debug!(%error, "decision cache unavailable");
                return None;
            }
        };
        // Lengths first, so no choice of names makes two questions collide; a command key
        // only extends the target's key, whose length prefix ends it.
        let base = format!(
            "authz:decision:{generation}:{tag}{}:{name}:{}:{target}",
            name.len(),
            target.len()
        );
        Some(match command {
            None => base,
            Some(command) if command.len() <= MAX_KEY_PART => {
                format!("{base}:command{}:{command}", command.len())
            }
            Some(_) => return None,
        })
    }

    pub(crate) async fn get(&self, key: &str) -> Option<CachedDecision> {
        match self.presence.get(key).await {
            Ok(Some(value)) => serde_json::from_str(&value).ok(),
            Ok(None) => None,
            Err(error) => {
                tracing::debug!(%error, "decision cache unavailable");
                None
            }
        }
    }

    pub(crate) async fn put(&self, key: &str, decision: &CachedDecision) {
        let Ok(value) = serde_json::to_string(decision) else {
            return;
        };
        if let Err(error) = self.presence.put(key, &value, self.ttl).await {
            tracing::debug!(%error, "decision not cached");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use phirepass_presence::MemoryPresence;

    fn decision() -> CachedDecision {
        CachedDecision {
            allowed: true,
            reason: "owner".into(),
            user_id: Some("u".into()),
            username: Some("alice".into()),
            target_kind: Some("node".into()),
            target_id: Some("n".into()),
            target_name: Some("web".into()),
            address: None,
            any_login: true,
            logins: vec![],
            default_allowed: false,
            login: None,
        }
    }

    #[tokio::test]
    async fn invalidation_changes_every_key() {
        let cache = DecisionCache::new(Arc::new(MemoryPresence::new()), Duration::from_secs(5));
        let key = cache.key(Who::Name("alice"), "web").await.unwrap();
        cache.put(&key, &decision()).await;
        assert_eq!(cache.get(&key).await, Some(decision()));
        cache.invalidate().await;
        let fresh = cache.key(Who::Name("alice"), "web").await.unwrap();
        assert_ne!(fresh, key);
        assert_eq!(cache.get(&fresh).await, None);
        // Different questions never share a key.
        assert_ne!(
            cache.key(Who::Name("a:b"), "c").await,
            cache.key(Who::Name("a"), "b:c").await
        );
        assert_ne!(
            cache.key(Who::Id("alice"), "web").await,
            cache.key(Who::Name("alice"), "web").await
        );
        let command = cache
            .key_for(Who::Name("alice"), "web", Some("disk_usage"))
            .await;
        assert!(command.is_some());
        assert_ne!(command, cache.key(Who::Name("alice"), "web").await);
        assert_ne!(
            command,
            cache.key_for(Who::Name("alice"), "web", Some("disk")).await
        );
    }

    #[test]
    fn decisions_cached_before_logins_allow_the_default_account() {
        let old = r#"{"allowed":true,"reason":"user grant","user_id":"u","username":"alice","target_kind":"host","target_id":"h","target_name":"db","address":"10.0.0.5:22"}"#;
        let d: CachedDecision = serde_json::from_str(old).unwrap();
        assert!(d.default_allowed && !d.any_login && d.logins.is_empty());
    }

    #[tokio::test]
    async fn zero_ttl_disables() {
        let cache = DecisionCache::new(Arc::new(MemoryPresence::new()), Duration::ZERO);
        assert_eq!(cache.key(Who::Name("alice"), "web").await, None);
    }
}
