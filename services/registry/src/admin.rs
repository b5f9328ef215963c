//! The registry's admin surface (`phirepass admin tunnels list|kick`): a service the allowlist
//! admitted ([`crate::policy`]) passes; an admin client's API token is verified with authz
//! `VerifyApiToken` (over mutual TLS as the registry) and must carry the scope the call needs
//! (`read` or `admin` to list, `admin` to kick) and belong to an enabled admin now. Admin
//! calls are rare, so nothing is cached.

use phirepass_pki::{Identity, ServiceKind};
use phirepass_proto::authz::VerifyApiTokenRequest;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_runtime::grpc::{AuthedChannel, Caller, bearer};
use tonic::{Request, Status};

use crate::error::RegistryError;

const API_PREFIX: &str = "pp_api_";

/// What an admin call needs of an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    Admin,
}

/// Verifies API tokens against authz.
#[derive(Clone)]
pub struct AdminTokens {
    authz: AuthzClient<AuthedChannel>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTokens").finish_non_exhaustive()
    }
}

impl AdminTokens {
    pub fn new(authz_url: &str, identity: &Identity) -> Result<Self, RegistryError> {
        let channel = phirepass_runtime::grpc::channel(authz_url, identity, ServiceKind::Authz)?;
        Ok(Self {
            authz: AuthzClient::new(channel),
        })
    }
}

/// Whether the caller of `request` may make an admin call needing `need`.
pub(crate) async fn allow<T>(
    tokens: Option<&AdminTokens>,
    request: &Request<T>,
    need: Need,
) -> Result<(), Status> {
    match request.extensions().get::<Caller>() {
        Some(Caller::Service(_)) => return Ok(()),
        Some(Caller::Token) => {}
        None => return Err(Status::unauthenticated("unauthenticated")),
    }
    let Some(token) = bearer(request).filter(|t| t.starts_with(API_PREFIX)) else {
        return Err(Status::unauthenticated("not an API token"));
    };
    let Some(tokens) = tokens else {
        return Err(Status::unauthenticated(
            "this registry verifies no API tokens (AUTHZ_URL unset)",
        ));
    };
    let reply = match tokens
        .authz
        .clone()
        .verify_api_token(VerifyApiTokenRequest {
            token: token.to_owned(),
        })
        .await
    {
        Ok(reply) => reply.into_inner(),
        Err(s) if s.code() == tonic::Code::Unauthenticated => {
            tracing::warn!("api token refused by authz");
            return Err(Status::unauthenticated("invalid API token"));
        }
        Err(s) => {
            tracing::error!(code = ?s.code(), message = s.message(), "authz unreachable for api token check");
            return Err(Status::unavailable(
                "authz unavailable to check the API token",
            ));
        }
    };
    let has = |s: &str| reply.scopes.iter().any(|x| x == s);
    let scoped = match need {
        Need::Admin => has("admin"),
        Need::Read => has("admin") || has("read"),
    };
    let admin = reply.user.as_ref().is_some_and(|u| u.admin && !u.disabled);
    let username = reply.user.map(|u| u.username).unwrap_or_default();
    if !scoped {
        tracing::warn!(%username, ?need, "api token lacks scope");
        return Err(Status::permission_denied(
            "the API token lacks the scope for this call",
        ));
    }
    if !admin {
        tracing::warn!(%username, ?need, "api token refused: user is not an admin");
        return Err(Status::permission_denied(
            "the API token's user is not an admin",
        ));
    }
    tracing::info!(%username, ?need, "registry admin call");
    Ok(())
}
