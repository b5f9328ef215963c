//! Authz API tokens (`pp_api_...`) on the vault's admin surface: scope
//! `admin` may change (options, credentials, assignments, rotations),
//! `read` may list, and either only while the token's user is an admin. Each token is checked with authz `VerifyApiToken`
//! (over mutual TLS as the secrets service); positive answers are cached for a few seconds, keyed by
//! the token's SHA-256 so no token sits in memory longer than its request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use phirepass_pki::{Identity, ServiceKind};
use phirepass_proto::authz::VerifyApiTokenRequest;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_runtime::grpc::AuthedChannel;
use sha2::{Digest, Sha256};
use tonic::Request;

use crate::auth::{Caller, PresentedApiToken};
use crate::error::SecretsError;

const SCOPE_ADMIN: &str = "admin";
const SCOPE_READ: &str = "read";
/// Bounds the cache; past it, the oldest half is dropped.
const MAX_CACHED: usize = 4096;

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Lists and status: an API token with `read` or `admin`.
    Read,
    /// Changes: an API token with `admin`.
    Admin,
}

/// Who made an allowed call, for logs and audit events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Actor {
    Service,
    AdminToken,
    User(String),
}

impl Actor {
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Service => "service",
            Self::AdminToken => "admin-token",
            Self::User(name) => name,
        }
    }
}

#[derive(Clone)]
struct Verified {
    username: String,
    /// The user's role when authz answered (disabled users never verify).
    admin: bool,
    scopes: Vec<String>,
    until: Instant,
}

/// Verifies API tokens against authz.
pub(crate) struct ApiTokens {
    authz: AuthzClient<AuthedChannel>,
    ttl: Duration,
    cache: Mutex<HashMap<String, Verified>>,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ApiTokens {
    pub(crate) fn new(
        authz_url: &str,
        identity: &Identity,
        ttl: Duration,
    ) -> Result<Self, SecretsError> {
        let channel = phirepass_runtime::grpc::channel(authz_url, identity, ServiceKind::Authz)?;
        Ok(Self {
            authz: AuthzClient::new(channel),
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, key: &str) -> Option<Verified> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|v| v.until > Instant::now()).cloned()
    }

    fn remember(&self, key: String, verified: Verified) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                let now = Instant::now();
                cache.retain(|_, v| v.until > now);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(key, verified);
        }
    }

    async fn verify(&self, token: &str) -> Result<Verified, SecretsError> {
        let key = hex::encode(Sha256::digest(token.as_bytes()));
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        let answer = self
            .authz
            .clone()
            .verify_api_token(VerifyApiTokenRequest {
                token: token.to_owned(),
            })
            .await;
        match answer {
            Ok(r) => {
                let r = r.into_inner();
                let verified = Verified {
                    admin: r.user.as_ref().is_some_and(|u| u.admin && !u.disabled),
                    username: r.user.map(|u| u.username).unwrap_or_default(),
                    scopes: r.scopes,
                    until: Instant::now() + self.ttl,
                };
                self.remember(key, verified.clone());
                Ok(verified)
            }
            Err(s) if s.code() == tonic::Code::Unauthenticated => {
                tracing::warn!("api token refused by authz");
                Err(SecretsError::Unauthenticated)
            }
            Err(s) => {
                tracing::error!(code = ?s.code(), message = s.message(), "authz unreachable for api token check");
                Err(SecretsError::AuthzUnavailable)
            }
        }
    }
}

/// The caller of `request` if they may make a call that needs `need`.
pub(crate) async fn allow<T>(
    api: Option<&ApiTokens>,
    request: &Request<T>,
    need: Need,
) -> Result<Actor, SecretsError> {
    match request.extensions().get::<Caller>() {
        Some(Caller::Internal) => return Ok(Actor::Service),
        Some(Caller::Admin) => return Ok(Actor::AdminToken),
        None => {}
    }
    let (Some(api), Some(PresentedApiToken(token))) =
        (api, request.extensions().get::<PresentedApiToken>())
    else {
        return Err(SecretsError::Unauthenticated);
    };
    let verified = api.verify(token).await?;
    let has = |s: &str| verified.scopes.iter().any(|x| x == s);
    let allowed = match need {
        Need::Admin => has(SCOPE_ADMIN),
        Need::Read => has(SCOPE_ADMIN) || has(SCOPE_READ),
    };
    if !allowed {
        tracing::warn!(username = %verified.username, ?need, "api token lacks scope");
        return Err(SecretsError::ScopeDenied);
    }
    // A scope is capped by the user's role now: the vault holds no per-user
    // data, so a non-admin's (or a demoted admin's) token gets nothing.
    if !verified.admin {
        tracing::warn!(username = %verified.username, ?need, "api token refused: user is not an admin");
        return Err(SecretsError::NotAdmin);
    }
    Ok(Actor::User(verified.username))
}
