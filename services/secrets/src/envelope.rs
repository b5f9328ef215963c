//! Envelope encryption: XChaCha20-Poly1305 under a per-entry subkey.
//!
//! Layout (then base64 for the TEXT column):
//! `0x01 | key_id (8 ascii hex) | salt (16) | nonce (24) | ciphertext+tag`.
//! The subkey is HKDF-SHA256(master, salt), so no two entries share an AEAD
//! key even if a nonce ever repeated; the associated data names the record
//! (table, row, field) so a ciphertext copied to another row fails.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keys::{KEY_ID_LEN, MasterKey};

const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + SALT_LEN + NONCE_LEN;
const HKDF_INFO: &[u8] = b"phirepass-secrets v1 entry key";

/// Why an envelope could not be opened. Deliberately carries no secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("malformed envelope")]
    Malformed,
    #[error("unsupported envelope version {0}")]
    Version(u8),
    /// The envelope names a master key this service was not given.
    #[error("entry is sealed under master key {0}, which is not configured")]
    UnknownKey(String),
    /// Wrong key material, tampering, or a ciphertext moved to another row.
    #[error("entry failed authentication (wrong master key or moved ciphertext)")]
    Auth,
}

/// The record a ciphertext belongs to; bound as associated data.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    pub table: &'a str,
    pub row: &'a str,
    pub field: &'a str,
}

impl Aad<'_> {
    fn bytes(&self) -> Vec<u8> {
        // Length-prefixed so ("a","bc") and ("ab","c") differ.
        let mut out = Vec::new();
        for part in [self.table, self.row, self.field] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

fn cipher(master: &MasterKey, salt: &[u8]) -> Result<XChaCha20Poly1305, EnvelopeError> {
    let hk = Hkdf::<Sha256>::new(Some(salt), master.bytes());
    let mut subkey = Zeroizing::new([0u8; 32]);
    hk.expand(HKDF_INFO, subkey.as_mut())
        .map_err(|_| EnvelopeError::Malformed)?;
    XChaCha20Poly1305::new_from_slice(subkey.as_ref()).map_err(|_| EnvelopeError::Malformed)
}

/// Seals `plaintext` for the record `aad` under `master`, with a fresh
/// random salt and nonce.
pub fn seal(master: &MasterKey, aad: Aad<'_>, plaintext: &[u8]) -> Result<String, EnvelopeError> {
    let salt: [u8; SALT_LEN] = rand::random();
    let nonce: [u8; NONCE_LEN] = rand::random();
    let ciphertext = cipher(master, &salt)?
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad.bytes(),
            },
        )
        .map_err(|_| EnvelopeError::Auth)?;
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(master.id().as_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(B64.encode(out))
}

/// The master key id an envelope names, without decrypting it.
pub fn key_id_of(envelope: &str) -> Result<String, EnvelopeError> {
    let raw = B64.decode(envelope).map_err(|_| EnvelopeError::Malformed)?;
    Ok(parse(&raw)?.key_id.to_owned())
}

struct Parsed<'a> {
    key_id: &'a str,
    salt: &'a [u8],
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

fn parse(raw: &[u8]) -> Result<Parsed<'_>, EnvelopeError> {
    let (&version, rest) = raw.split_first().ok_or(EnvelopeError::Malformed)?;
    if version != VERSION {
        return Err(EnvelopeError::Version(version));
    }
    if rest.len() < KEY_ID_LEN + SALT_LEN + NONCE_LEN + TAG_LEN {
        return Err(EnvelopeError::Malformed);
    }
    let (key_id, rest) = rest.split_at(KEY_ID_LEN);
    let (salt, rest) = rest.split_at(SALT_LEN);
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let key_id = std::str::from_utf8(key_id).map_err(|_| EnvelopeError::Malformed)?;
    Ok(Parsed {
        key_id,
        salt,
        nonce,
        ciphertext,
    })
}

/// Opens an envelope with whichever of `keys` it names.
pub fn open(
    keys: &[&MasterKey],
    aad: Aad<'_>,
    envelope: &str,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let raw = B64.decode(envelope).map_err(|_| EnvelopeError::Malformed)?;
    let parsed = parse(&raw)?;
    let master = keys
        .iter()
        .find(|k| k.id() == parsed.key_id)
        .ok_or_else(|| EnvelopeError::UnknownKey(parsed.key_id.to_owned()))?;
    let plaintext = cipher(master, parsed.salt)?
        .decrypt(
            XNonce::from_slice(parsed.nonce),
            Payload {
                msg: parsed.ciphertext,
                aad: &aad.bytes(),
            },
        )
        .map_err(|_| EnvelopeError::Auth)?;
    Ok(Zeroizing::new(plaintext))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const AAD: Aad<'static> = Aad {
        table: "relay_host_options",
        row: "web1",
        field: "auth.password",
    };

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; 32])
    }

    #[test]
    fn round_trip() {
        let k = key(7);
        let env = seal(&k, AAD, b"hunter2").unwrap();
        assert_eq!(open(&[&k], AAD, &env).unwrap().as_slice(), b"hunter2");
        assert_eq!(key_id_of(&env).unwrap(), k.id());
        assert!(!env.contains("hunter2"));
    }

    #[test]
    fn every_seal_is_fresh() {
        let k = key(7);
        let a = seal(&k, AAD, b"same").unwrap();
        let b = seal(&k, AAD, b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn other_row_or_field_fails() {
        let k = key(7);
        let env = seal(&k, AAD, b"hunter2").unwrap();
        for aad in [
            Aad { row: "web2", ..AAD },
            Aad {
                field: "auth.identity",
                ..AAD
            },
            Aad {
                table: "relay_credentials",
                ..AAD
            },
        ] {
            assert_eq!(open(&[&k], aad, &env).unwrap_err(), EnvelopeError::Auth);
        }
    }

    #[test]
    fn unknown_and_wrong_keys_are_told_apart() {
        let k = key(7);
        let env = seal(&k, AAD, b"x").unwrap();
        let other = key(8);
        assert_eq!(
            open(&[&other], AAD, &env).unwrap_err(),
            EnvelopeError::UnknownKey(k.id().to_owned())
        );
        // Same id but different material (a forged header) fails to authenticate.
        let forged = MasterKey::with_id([9; 32], k.id().to_owned());
        assert_eq!(
            open(&[&forged], AAD, &env).unwrap_err(),
            EnvelopeError::Auth
        );
    }

    #[test]
    fn tampering_and_garbage_fail() {
        let k = key(7);
        let env = seal(&k, AAD, b"hunter2").unwrap();
        let mut raw = B64.decode(&env).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(
            open(&[&k], AAD, &B64.encode(&raw)).unwrap_err(),
            EnvelopeError::Auth
        );
        raw[0] = 2;
        assert_eq!(
            open(&[&k], AAD, &B64.encode(&raw)).unwrap_err(),
            EnvelopeError::Version(2)
        );
        assert_eq!(
            open(&[&k], AAD, "!!").unwrap_err(),
            EnvelopeError::Malformed
        );
        assert_eq!(
            open(&[&k], AAD, &B64.encode([1u8; 10])).unwrap_err(),
            EnvelopeError::Malformed
        );
    }
}
