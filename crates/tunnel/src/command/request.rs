//! The request an edge sends in a command open, and the digest authz's ticket binds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest command or parameter name.
pub const MAX_NAME_LEN: usize = 64;
/// Most parameters in one request.
pub const MAX_PARAMS: usize = 32;
/// Longest parameter value, in bytes.
pub const MAX_PARAM_VALUE_LEN: usize = 4096;
/// Longest correlation id.
const MAX_CORRELATION_LEN: usize = 64;

/// "Run `name` with these parameters". Values are strings as typed; the agent checks each
/// against the type its host declares and never hands one to a shell.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CommandRequest {
    pub name: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Ties the caller's request and result audit events to the agent's (`[A-Za-z0-9_-]`).
    #[serde(default)]
    pub correlation_id: String,
}

/// Why a request is malformed (before any host's declarations are consulted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("command name must be 1-{MAX_NAME_LEN} of a-z, 0-9, '_', '-', starting with a letter")]
    Name,
    #[error(
        "parameter name {0:?} must be 1-{MAX_NAME_LEN} of a-z, 0-9, '_', '-', starting with a letter"
    )]
    ParamName(String),
    #[error("at most {MAX_PARAMS} parameters")]
    TooManyParams,
    #[error("parameter {0}: value longer than {MAX_PARAM_VALUE_LEN} bytes")]
    ValueTooLong(String),
    #[error("parameter {0}: value contains a NUL byte")]
    Nul(String),
    #[error("correlation id must be 1-{MAX_CORRELATION_LEN} of A-Z, a-z, 0-9, '_', '-'")]
    CorrelationId,
}

/// Command and parameter names: a lowercase letter, then lowercase letters, digits, `_`, `-`.
pub fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

impl CommandRequest {
    /// Checks the shape every agent and edge agrees on: names, counts, lengths, no NUL.
    pub fn validate(&self) -> Result<(), RequestError> {
        if !valid_name(&self.name) {
            return Err(RequestError::Name);
        }
        if self.params.len() > MAX_PARAMS {
            return Err(RequestError::TooManyParams);
        }
        for (k, v) in &self.params {
            if !valid_name(k) {
                return Err(RequestError::ParamName(k.clone()));
            }
            if v.len() > MAX_PARAM_VALUE_LEN {
                return Err(RequestError::ValueTooLong(k.clone()));
            }
            if v.contains('\0') {
                return Err(RequestError::Nul(k.clone()));
            }
        }
        let c = self.correlation_id.as_bytes();
        if c.is_empty()
            || c.len() > MAX_CORRELATION_LEN
            || !c
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
        {
            return Err(RequestError::CorrelationId);
        }
        Ok(())
    }

    /// Lowercase hex SHA-256 over the name and every parameter (not the correlation id), in a
    /// length-prefixed form that no two different requests share. authz signs it into the
    /// ticket; the agent recomputes it from the request in front of it, so a holder that
    /// changes a parameter makes the ticket fail.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"phirepass-command-v1\0");
        let field = |h: &mut Sha256, bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(&mut h, self.name.as_bytes());
        h.update((self.params.len() as u64).to_be_bytes());
        for (k, v) in &self.params {
            field(&mut h, k.as_bytes());
            field(&mut h, v.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(params: &[(&str, &str)]) -> CommandRequest {
        CommandRequest {
            name: "disk_usage".into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            correlation_id: "c-1".into(),
        }
    }

    #[test]
    fn digest_binds_every_parameter_and_no_two_requests_share_one() {
        let a = req(&[("mount", "/")]);
        assert_eq!(a.digest(), req(&[("mount", "/")]).digest());
        assert_eq!(a.digest().len(), 64);
        // The correlation id is not part of it.
        let mut other_id = a.clone();
        other_id.correlation_id = "c-2".into();
        assert_eq!(a.digest(), other_id.digest());
        // Moving bytes between fields changes it (length prefixes).
        assert_ne!(req(&[("ab", "c")]).digest(), req(&[("a", "bc")]).digest());
        assert_ne!(a.digest(), req(&[("mount", "/var")]).digest());
        assert_ne!(a.digest(), req(&[]).digest());
    }

    #[test]
    fn validate_refuses_bad_shapes() {
        assert_eq!(req(&[("mount", "/")]).validate(), Ok(()));
        let mut r = req(&[]);
        r.name = "Disk".into();
        assert_eq!(r.validate(), Err(RequestError::Name));
        assert_eq!(
            req(&[("m;x", "/")]).validate(),
            Err(RequestError::ParamName("m;x".into()))
        );
        assert_eq!(
            req(&[("m", "a\0b")]).validate(),
            Err(RequestError::Nul("m".into()))
        );
        let long = "x".repeat(MAX_PARAM_VALUE_LEN + 1);
        assert_eq!(
            req(&[("m", &long)]).validate(),
            Err(RequestError::ValueTooLong("m".into()))
        );
        let mut r = req(&[]);
        r.correlation_id = String::new();
        assert_eq!(r.validate(), Err(RequestError::CorrelationId));
    }
}
