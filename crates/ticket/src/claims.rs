//! What a ticket says, and its compact form: `base64url(claims json) "." base64url(signature)`.
//! The signature covers the first part's bytes exactly as sent, so no canonical JSON is needed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::error::TicketError;

/// Longest ticket a verifier reads (real ones are about 400 bytes).
pub const MAX_TICKET_LEN: usize = 2048;
/// Claims format version.
pub const VERSION: u8 = 1;

/// What the stream connects to, the same JSON shape as `phirepass_tunnel::Target`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TicketTarget {
    Ssh,
    Port {
        port: u16,
    },
    /// An allowlisted command (issue #10): its name and the request's digest
    /// (`phirepass_tunnel::command::CommandRequest::digest`), so neither the holder nor anyone
    /// else on the bus can change a parameter.
    Command {
        name: String,
        digest: String,
    },
}

/// The one open a ticket is for: everything the holder and the node compare with the open
/// request in front of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub node: String,
    pub target: TicketTarget,
    pub edge: String,
    pub stream: u64,
}

/// The signed claims.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub v: u8,
    /// The signing key's id ([`crate::kid_of`]).
    pub kid: String,
    /// The user the open is for; empty for a public `ssh -R` HTTP tunnel (no user).
    pub user: String,
    pub node: String,
    pub target: TicketTarget,
    pub edge: String,
    pub stream: u64,
    /// Issued at and expires at, unix epoch milliseconds.
    pub iat: u64,
    pub exp: u64,
    /// 16 random bytes, base64url: the replay cache's key.
    pub nonce: String,
}

impl Claims {
    pub(crate) fn scope_matches(&self, scope: &Scope) -> Result<(), TicketError> {
        if self.node != scope.node {
            return Err(TicketError::Mismatch("node"));
        }
        if self.target != scope.target {
            return Err(TicketError::Mismatch("target"));
        }
        if self.edge != scope.edge {
            return Err(TicketError::Mismatch("edge"));
        }
        if self.stream != scope.stream {
            return Err(TicketError::Mismatch("stream"));
        }
        Ok(())
    }
}

/// A ticket split into its signed part, signature and decoded claims (not yet verified).
pub(crate) struct Parsed<'a> {
    pub signed: &'a [u8],
    pub signature: Vec<u8>,
    pub claims: Claims,
}

pub(crate) fn encode(claims: &Claims, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    // Serializing plain strings and numbers cannot fail.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let head = B64.encode(json);
    let signature = sign(head.as_bytes());
    format!("{head}.{}", B64.encode(signature))
}

pub(crate) fn parse(ticket: &str) -> Result<Parsed<'_>, TicketError> {
    if ticket.is_empty() {
        return Err(TicketError::Missing);
    }
    if ticket.len() > MAX_TICKET_LEN {
        return Err(TicketError::Malformed("too long"));
    }
    let (head, sig) = ticket
        .split_once('.')
        .ok_or(TicketError::Malformed("no signature"))?;
    let json = B64
        .decode(head)
        .map_err(|_| TicketError::Malformed("claims encoding"))?;
    let claims: Claims =
        serde_json::from_slice(&json).map_err(|_| TicketError::Malformed("claims"))?;
    if claims.v != VERSION {
        return Err(TicketError::Malformed("version"));
    }
    let signature = B64
        .decode(sig)
        .map_err(|_| TicketError::Malformed("signature encoding"))?;
    Ok(Parsed {
        signed: head.as_bytes(),
        signature,
        claims,
    })
}

/// The claims of a ticket without verifying it, for logs (which key, which user).
pub fn peek(ticket: &str) -> Result<Claims, TicketError> {
    parse(ticket).map(|p| p.claims)
}
