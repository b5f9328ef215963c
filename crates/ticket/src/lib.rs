//! Signed opens. authz signs a short-lived ticket (Ed25519) for each stream open it allows:
//! user, node, target, edge, stream id, expiry, nonce. The node's holder (gateway-ws, or the
//! ssh-edge holding an `ssh -R` tunnel) and the agent itself verify it against pinned public
//! keys before dialling anything, so a process with full bus access but no ticket reaches no
//! customer port.
//!
//! * [`TicketSigner`]: authz's key; signs tickets and endorses its successor.
//! * [`TicketVerifier`]: a [`KeySet`] of trusted keys and a [`ReplayCache`].
//! * [`KeyEndorsement`]: how a rotated key reaches agents: signed by a key they already pin.
#![forbid(unsafe_code)]

mod claims;
mod error;
mod keys;
mod refresh;
mod signer;
mod verifier;

pub use claims::{Claims, MAX_TICKET_LEN, Scope, TicketTarget, VERSION, peek};
pub use error::TicketError;
pub use keys::{KeyEndorsement, KeySet, MAX_KEYS, PublicKey, kid_of};
pub use refresh::RefreshGate;
pub use signer::{TicketSigner, generate_pem};
pub use verifier::{
    Audience, CLOCK_SKEW_MS, MAX_TTL_MS, REPLAY_CAPACITY, ReplayCache, TicketVerifier,
};

/// How long authz's tickets live: long enough for a slow open across edges, short enough that
/// a leaked one is soon useless (and the replay cache small).
pub const TICKET_TTL_MS: u64 = 30_000;

#[cfg(test)]
mod tests;
