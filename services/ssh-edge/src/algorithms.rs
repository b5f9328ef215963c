//! What the edge offers its clients, chosen so `ssh-audit` reports no failure: the
//! post-quantum hybrid first, then X25519 and one 4096-bit finite-field group for clients
//! without it (OpenSSH before 9.9; per-source throttling answers DHEat); no NIST ECDH curves,
//! no SHA-1; AEAD ciphers and CTR with encrypt-then-MAC only; compression only after
//! authentication; strict key exchange (Terrapin) and ext-info always announced. ssh-audit
//! warns that the classic fallbacks are not post-quantum; `SSH_EDGE_KEX_POST_QUANTUM_ONLY`
//! drops them (no warning left) for fleets whose clients all have the hybrid.

use std::borrow::Cow;

// Ciphers, MACs and signature algorithms are the policy's, shared with the clients toward
// targets. Host keys are filtered by the keys the edge has (ed25519); the key list is announced
// as `server-sig-algs`, the signatures accepted from users' keys: no `ssh-rsa` (SHA-1).
use phirepass_ssh_target::algorithms::{
    MODERN_CIPHERS as CIPHERS, MODERN_KEYS as KEYS, MODERN_MACS as MACS,
};
use russh::{Preferred, compression, kex};

pub(crate) const KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::DH_G16_SHA512,
    kex::EXTENSION_SUPPORT_AS_SERVER,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
];

/// Only the hybrid: OpenSSH 9.9 or newer.
pub(crate) const POST_QUANTUM_KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::EXTENSION_SUPPORT_AS_SERVER,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
];

/// `zlib@openssh.com` starts only after authentication; plain `zlib` would inflate what a
/// stranger sends before it.
pub(crate) const COMPRESSION: &[compression::Name] = &[compression::NONE, compression::ZLIB_LEGACY];

pub(crate) fn preferred(post_quantum_only: bool) -> Preferred {
    Preferred {
        kex: Cow::Borrowed(if post_quantum_only {
            POST_QUANTUM_KEX
        } else {
            KEX
        }),
        host_key_certificates: Cow::Borrowed(&[]),
        key: Cow::Borrowed(KEYS),
        cipher: Cow::Borrowed(CIPHERS),
        mac: Cow::Borrowed(MACS),
        compression: Cow::Borrowed(COMPRESSION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::Algorithm;
    use russh::mac;

    #[test]
    fn post_quantum_first_strict_kex_and_nothing_legacy() {
        let p = preferred(false);
        assert_eq!(p.kex.first(), Some(&kex::MLKEM768X25519_SHA256));
        assert!(p.kex.contains(&kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER));
        assert!(p.kex.contains(&kex::EXTENSION_SUPPORT_AS_SERVER));
        for weak in [
            kex::ECDH_SHA2_NISTP256,
            kex::DH_G14_SHA1,
            kex::DH_G1_SHA1,
            kex::DH_G14_SHA256,
        ] {
            assert!(!p.kex.contains(&weak), "{weak:?}");
        }
        assert!(!p.mac.contains(&mac::HMAC_SHA256));
        assert!(!p.compression.contains(&compression::ZLIB));
        assert!(!p.key.contains(&Algorithm::Rsa { hash: None }));
        let pq = preferred(true);
        assert_eq!(pq.kex.first(), Some(&kex::MLKEM768X25519_SHA256));
        assert!(!pq.kex.contains(&kex::CURVE25519));
        assert!(
            pq.kex
                .contains(&kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER)
        );
    }
}
