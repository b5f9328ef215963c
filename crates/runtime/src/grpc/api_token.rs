//! Calls made with a user's API token instead of a service certificate: the token the policy
//! layer admitted ([`Caller::Token`]) for the handler to verify with authz `VerifyApiToken`,
//! and what each token scope allows. Shared by every service that takes API tokens.

use tonic::{Request, Status};

use super::{Caller, bearer};

/// The prefix of every API token authz mints (`phirepass admin tokens api create`).
pub const API_TOKEN_PREFIX: &str = "pp_api_";

/// What a call needs of an API token's scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenNeed {
    /// Reading: a `read` or an `admin` token.
    Read,
    /// Changing something (running a command, kicking a session): an `admin` token.
    Change,
}

impl TokenNeed {
    /// Whether a token with `scopes` may make the call.
    pub fn allowed_by(self, scopes: &[String]) -> bool {
        let has = |s: &str| scopes.iter().any(|x| x == s);
        match self {
            Self::Read => has("admin") || has("read"),
            Self::Change => has("admin"),
        }
    }
}

/// Who the policy admitted: `Ok(None)` for a service (its certificate says who it is),
/// `Ok(Some(token))` for an API token still to be verified, and UNAUTHENTICATED when the
/// bearer is missing or is not an API token.
pub fn api_token<T>(request: &Request<T>) -> Result<Option<&str>, Status> {
    match request.extensions().get::<Caller>() {
        Some(Caller::Service(_)) => Ok(None),
        Some(Caller::Token) => bearer(request)
            .filter(|t| t.starts_with(API_TOKEN_PREFIX))
            .map(Some)
            .ok_or_else(|| Status::unauthenticated("not an API token")),
        None => Err(Status::unauthenticated("unauthenticated")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn read_scope_reads_but_does_not_change() {
        let read = vec!["read".to_owned()];
        let admin = vec!["admin".to_owned()];
        assert!(TokenNeed::Read.allowed_by(&read));
        assert!(!TokenNeed::Change.allowed_by(&read));
        assert!(TokenNeed::Change.allowed_by(&admin));
        assert!(TokenNeed::Read.allowed_by(&admin));
        assert!(!TokenNeed::Read.allowed_by(&[]));
    }

    #[test]
    fn token_calls_need_an_api_token() {
        let mut request = Request::new(());
        request.extensions_mut().insert(Caller::Token);
        assert_eq!(
            api_token(&request).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        request
            .metadata_mut()
            .insert("authorization", "Bearer pp_api_x".parse().unwrap());
        assert_eq!(api_token(&request).unwrap(), Some("pp_api_x"));
        let mut service = Request::new(());
        service
            .extensions_mut()
            .insert(Caller::Service(phirepass_pki::ServiceKind::Authz));
        assert_eq!(api_token(&service).unwrap(), None);
        assert!(api_token(&Request::new(())).is_err());
    }
}
