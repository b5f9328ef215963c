//! Public keys, key sets and endorsements. A verifier pins a key set; a new key joins it only
//! with an endorsement signed by a key already in it, so authz can rotate its key while agents
//! stay connected and nobody touches the customer hosts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::error::TicketError;

/// Most keys a set keeps: the current one and a few it is rotating away from. Joining a full
/// set drops the oldest.
pub const MAX_KEYS: usize = 4;
const ED25519_PUBLIC_LEN: usize = 32;
/// Domain separation: an endorsement signature can never pass for a ticket's.
const ENDORSE_CONTEXT: &[u8] = b"phirepass-ticket-key-endorsement-v1\0";

/// A key's id: hex of the first 8 bytes of SHA-256 of the public key, so an id always names
/// one key.
pub fn kid_of(public: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public);
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An Ed25519 public key and its id; JSON `{"kid": "...", "key": "<base64url>"}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub key: String,
}

impl PublicKey {
    pub fn from_bytes(public: &[u8]) -> Self {
        Self {
            kid: kid_of(public),
            key: B64.encode(public),
        }
    }

    /// The raw key, checked against its id.
    pub fn bytes(&self) -> Result<Vec<u8>, TicketError> {
        let bytes = B64
            .decode(&self.key)
            .map_err(|_| TicketError::InvalidKey("encoding"))?;
        if bytes.len() != ED25519_PUBLIC_LEN {
            return Err(TicketError::InvalidKey("length"));
        }
        if kid_of(&bytes) != self.kid {
            return Err(TicketError::InvalidKey("key id does not match the key"));
        }
        Ok(bytes)
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), TicketError> {
        let bytes = self.bytes()?;
        UnparsedPublicKey::new(&ED25519, bytes)
            .verify(message, signature)
            .map_err(|_| TicketError::BadSignature)
    }
}

/// `key` vouched for by the key `endorser` (its signature over [`endorsement_message`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct KeyEndorsement {
    pub key: PublicKey,
    pub endorser: String,
    pub signature: String,
}

pub(crate) fn endorsement_message(key: &PublicKey) -> Vec<u8> {
    let mut message = ENDORSE_CONTEXT.to_vec();
    message.extend_from_slice(key.kid.as_bytes());
    message.push(0);
    message.extend_from_slice(key.key.as_bytes());
    message
}

/// The keys a verifier trusts, oldest first.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySet {
    pub keys: Vec<PublicKey>,
}

impl KeySet {
    /// A set of keys trusted as they are (what an agent pins at enrolment); each key is
    /// checked against its id.
    pub fn new(keys: Vec<PublicKey>) -> Result<Self, TicketError> {
        let mut set = Self::default();
        for key in keys {
            key.bytes()?;
            set.insert(key);
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    fn insert(&mut self, key: PublicKey) {
        if self.get(&key.kid).is_some() {
            return;
        }
        if self.keys.len() >= MAX_KEYS {
            self.keys.remove(0);
        }
        self.keys.push(key);
    }

    /// Adds an endorsed key when a trusted key signed it. `Ok(true)`: the key is new to the set;
    /// `Ok(false)`: already trusted.
    pub fn accept(&mut self, endorsement: &KeyEndorsement) -> Result<bool, TicketError> {
        endorsement.key.bytes()?;
        if self.get(&endorsement.key.kid).is_some() {
            return Ok(false);
        }
        let endorser = self
            .get(&endorsement.endorser)
            .ok_or_else(|| TicketError::UntrustedEndorser(endorsement.endorser.clone()))?;
        let signature = B64
            .decode(&endorsement.signature)
            .map_err(|_| TicketError::BadEndorsement)?;
        endorser
            .verify(&endorsement_message(&endorsement.key), &signature)
            .map_err(|_| TicketError::BadEndorsement)?;
        self.insert(endorsement.key.clone());
        Ok(true)
    }

    /// Accepts what it can of `endorsements`, in an order that lets a chain (A endorses B,
    /// B endorses C) join whatever order it came in. Returns the keys added.
    pub fn accept_all(&mut self, endorsements: &[KeyEndorsement]) -> Vec<String> {
        let mut added = Vec::new();
        loop {
            let before = added.len();
            for e in endorsements {
                if let Ok(true) = self.accept(e) {
                    added.push(e.key.kid.clone());
                }
            }
            if added.len() == before {
                return added;
            }
        }
    }
}
