//! authz's side: an Ed25519 key (PKCS#8) that signs tickets and endorses its successor.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::claims::{self, Claims, Scope, VERSION};
use crate::error::TicketError;
use crate::keys::{KeyEndorsement, PublicKey, endorsement_message};

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

pub struct TicketSigner {
    pair: Ed25519KeyPair,
    public: PublicKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("TicketSigner")
            .field("kid", &self.public.kid)
            .finish()
    }
}

/// A new Ed25519 key as PKCS#8 PEM (what `phirepass dev` and the test harness write).
pub fn generate_pem() -> Result<String, TicketError> {
    let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| TicketError::InvalidKey("generation failed"))?;
    Ok(format!(
        "{PEM_BEGIN}\n{}\n{PEM_END}\n",
        STANDARD.encode(der.as_ref())
    ))
}

impl TicketSigner {
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, TicketError> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| TicketError::InvalidKey("pkcs8"))?;
        let public = PublicKey::from_bytes(pair.public_key().as_ref());
        Ok(Self {
            pair,
            public,
            rng: SystemRandom::new(),
        })
    }

    /// PKCS#8 in PEM (`BEGIN PRIVATE KEY`), or bare base64 of the DER.
    pub fn from_pem(text: &str) -> Result<Self, TicketError> {
        let body: String = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != PEM_BEGIN && *l != PEM_END)
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| TicketError::InvalidKey("pem encoding"))?;
        Self::from_pkcs8(&der)
    }

    pub fn generate() -> Result<Self, TicketError> {
        Self::from_pem(&generate_pem()?)
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// A ticket for `scope` on behalf of `user` (empty: a public tunnel open), valid from
    /// `now_ms` for `ttl_ms`.
    pub fn sign(
        &self,
        user: &str,
        scope: &Scope,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<String, TicketError> {
        let mut nonce = [0u8; 16];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| TicketError::InvalidKey("no randomness"))?;
        let claims = Claims {
            v: VERSION,
            kid: self.public.kid.clone(),
            user: user.to_owned(),
            node: scope.node.clone(),
            target: scope.target.clone(),
            edge: scope.edge.clone(),
            stream: scope.stream,
            iat: now_ms,
            exp: now_ms.saturating_add(ttl_ms),
            nonce: B64.encode(nonce),
        };
        Ok(self.sign_claims(&claims))
    }

    /// Signs claims as given (tests forge expired or mismatched tickets with it).
    pub fn sign_claims(&self, claims: &Claims) -> String {
        claims::encode(claims, |m| self.pair.sign(m).as_ref().to_vec())
    }

    /// Vouches for `key` (this key's successor) so verifiers pinning this key accept it.
    pub fn endorse(&self, key: &PublicKey) -> KeyEndorsement {
        let signature = self.pair.sign(&endorsement_message(key));
        KeyEndorsement {
            key: key.clone(),
            endorser: self.public.kid.clone(),
            signature: B64.encode(signature.as_ref()),
        }
    }
}
