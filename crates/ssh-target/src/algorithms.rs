//! Algorithm preferences toward targets, the edge's own policy: by default the post-quantum
//! hybrid first, then X25519 and the 4096-bit finite-field group; no NIST ECDH curves, no SHA-1,
//! encrypt-then-MAC only, AES-GCM first (hardware accelerated, the fastest for bulk
//! transfers), compression only after authentication. Targets marked `insecure` (vault option)
//! also get NIST ECDH, SHA-1, CBC, encrypt-and-MAC and `ssh-rsa` for old servers. Strict key
//! exchange (Terrapin) is always requested.

use std::borrow::Cow;

use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use russh::{Preferred, cipher, compression, kex, mac};

const MODERN_KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::DH_G16_SHA512,
    kex::EXTENSION_SUPPORT_AS_CLIENT,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

const LEGACY_KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::ECDH_SHA2_NISTP256,
    kex::ECDH_SHA2_NISTP384,
    kex::ECDH_SHA2_NISTP521,
    kex::DH_G16_SHA512,
    kex::DH_G14_SHA256,
    kex::DH_GEX_SHA256,
    kex::DH_G14_SHA1,
    kex::DH_GEX_SHA1,
    kex::DH_G1_SHA1,
    kex::EXTENSION_SUPPORT_AS_CLIENT,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

/// AEAD first, then CTR (with encrypt-then-MAC): the ciphers of the policy, both directions.
pub const MODERN_CIPHERS: &[cipher::Name] = &[
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_128_CTR,
];

const LEGACY_CIPHERS: &[cipher::Name] = &[
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
    cipher::AES_256_CBC,
    cipher::AES_192_CBC,
    cipher::AES_128_CBC,
];

/// Encrypt-then-MAC only: the MACs of the policy, both directions.
pub const MODERN_MACS: &[mac::Name] = &[mac::HMAC_SHA256_ETM, mac::HMAC_SHA512_ETM];

const LEGACY_MACS: &[mac::Name] = &[
    mac::HMAC_SHA256_ETM,
    mac::HMAC_SHA512_ETM,
    mac::HMAC_SHA256,
    mac::HMAC_SHA512,
    mac::HMAC_SHA1_ETM,
    mac::HMAC_SHA1,
];

/// Host-key and user-signature algorithms of the policy: no `ssh-rsa` (SHA-1).
pub const MODERN_KEYS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

const LEGACY_KEYS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
    Algorithm::Rsa { hash: None },
];

const NO_COMPRESSION: &[compression::Name] = &[compression::NONE];
/// `zlib@openssh.com` starts after authentication; plain `zlib` only for insecure targets.
const COMPRESSION: &[compression::Name] = &[compression::ZLIB_LEGACY, compression::NONE];
const LEGACY_COMPRESSION: &[compression::Name] = &[
    compression::ZLIB_LEGACY,
    compression::ZLIB,
    compression::NONE,
];

/// The algorithm lists for one target. `insecure` adds NIST ECDH, SHA-1, CBC and `ssh-rsa` for
/// old servers; `compress` offers zlib first.
pub fn preferred(insecure: bool, compress: bool) -> Preferred {
    let (kex, cipher, mac, key) = if insecure {
        (LEGACY_KEX, LEGACY_CIPHERS, LEGACY_MACS, LEGACY_KEYS)
    } else {
        (MODERN_KEX, MODERN_CIPHERS, MODERN_MACS, MODERN_KEYS)
    };
    Preferred {
        kex: Cow::Borrowed(kex),
        // Host certificates need trusted authorities, which targets do not have yet.
        host_key_certificates: Cow::Borrowed(&[]),
        key: Cow::Borrowed(key),
        cipher: Cow::Borrowed(cipher),
        mac: Cow::Borrowed(mac),
        compression: Cow::Borrowed(match (compress, insecure) {
            (false, _) => NO_COMPRESSION,
            (true, false) => COMPRESSION,
            (true, true) => LEGACY_COMPRESSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_lists_exclude_legacy_algorithms() {
        let p = preferred(false, false);
        assert_eq!(p.kex.first(), Some(&kex::MLKEM768X25519_SHA256));
        assert!(p.kex.contains(&kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT));
        assert!(!p.kex.contains(&kex::DH_G1_SHA1));
        assert!(!p.kex.contains(&kex::ECDH_SHA2_NISTP256));
        assert!(!p.kex.contains(&kex::DH_G14_SHA256));
        assert!(!p.mac.contains(&mac::HMAC_SHA256));
        assert!(
            !preferred(false, true)
                .compression
                .contains(&compression::ZLIB)
        );
        assert!(!p.cipher.contains(&cipher::AES_128_CBC));
        assert!(!p.mac.contains(&mac::HMAC_SHA1));
        assert!(!p.key.contains(&Algorithm::Rsa { hash: None }));
        assert_eq!(p.cipher.first(), Some(&cipher::AES_128_GCM));
    }

    #[test]
    fn insecure_lists_add_legacy_but_keep_strict_kex() {
        let p = preferred(true, true);
        assert!(p.kex.contains(&kex::DH_G14_SHA1));
        assert!(p.kex.contains(&kex::ECDH_SHA2_NISTP256));
        assert!(p.kex.contains(&kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT));
        assert!(p.cipher.contains(&cipher::AES_128_CBC));
        assert_eq!(p.compression.first(), Some(&compression::ZLIB_LEGACY));
    }
}
