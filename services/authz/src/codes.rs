//! The codes people type or click: setup codes, device user codes,
//! invitation codes and device codes. Only their SHA-256 is ever stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::sha256_hex;

/// Crockford's base32: no I, L, O, U. 12 symbols = 60 bits.
const SETUP_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const SETUP_GROUPS: usize = 3;
/// Consonants only (RFC 8628 §6.1): no vowels, so no words, and nothing
/// that looks like a digit. 8 symbols ≈ 34.6 bits, enough for a code that
/// lives 10 minutes and is rate limited.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const GROUP: usize = 4;

/// `n` random symbols from `alphabet` (at most 256 long), without modulo
/// bias: bytes past the last whole multiple of the alphabet are redrawn.
fn random_symbols(alphabet: &[u8], n: usize) -> Vec<u8> {
    let len = alphabet.len();
    let limit = 256 - 256 % len;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        for b in rand::random::<[u8; 32]>() {
            if usize::from(b) < limit && out.len() < n {
                out.push(alphabet[usize::from(b) % len]);
            }
        }
    }
    out
}

fn grouped(symbols: &[u8]) -> String {
    symbols
        .chunks(GROUP)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// Uppercase, without dashes or whitespace; `None` unless exactly `len`
/// symbols of `alphabet` remain.
fn canonical(input: &str, alphabet: &[u8], len: usize, map: fn(char) -> char) -> Option<String> {
    let symbols: Vec<u8> = input
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| map(c.to_ascii_uppercase()))
        .map(|c| u8::try_from(c).unwrap_or(0))
        .collect();
    (symbols.len() == len && symbols.iter().all(|b| alphabet.contains(b)))
        .then(|| grouped(&symbols))
}

/// A new setup code, `XXXX-XXXX-XXXX` (60 bits).
pub(crate) fn new_setup_code() -> String {
    grouped(&random_symbols(SETUP_ALPHABET, SETUP_GROUPS * GROUP))
}

/// The stored hash of what a person typed as a setup code, forgiving case,
/// dashes, spaces and Crockford's look-alikes (O→0, I/L→1).
pub(crate) fn setup_code_hash(input: &str) -> Option<String> {
    let crockford = |c| match c {
        'O' => '0',
        'I' | 'L' => '1',
        c => c,
    };
    canonical(input, SETUP_ALPHABET, SETUP_GROUPS * GROUP, crockford)
        .map(|code| sha256_hex(&format!("setup:{code}")))
}

/// A new device user code, `XXXX-XXXX`.
pub(crate) fn new_user_code() -> String {
    grouped(&random_symbols(USER_CODE_ALPHABET, 2 * GROUP))
}

/// The stored hash of a typed user code (case, dashes and spaces forgiven).
pub(crate) fn user_code_hash(input: &str) -> Option<String> {
    canonical(input, USER_CODE_ALPHABET, 2 * GROUP, |c| c)
        .map(|code| sha256_hex(&format!("user-code:{code}")))
}

/// A URL-safe secret of 192 bits (32 characters): invitation and device codes.
pub(crate) fn new_url_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

/// The stored hash of an invitation or device code; `None` when it cannot
/// be one (so nothing is looked up).
pub(crate) fn url_secret_hash(kind: &str, input: &str) -> Option<String> {
    let well_formed = input.len() == 32
        && input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| sha256_hex(&format!("{kind}:{input}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn setup_codes_are_60_bits_and_forgiving() {
        let code = new_setup_code();
        assert_eq!(code.len(), 14);
        assert_eq!(code.matches('-').count(), 2);
        let hash = setup_code_hash(&code).unwrap();
        assert_eq!(setup_code_hash(&code.to_lowercase()).unwrap(), hash);
        assert_eq!(setup_code_hash(&code.replace('-', " ")).unwrap(), hash);
        assert_eq!(
            setup_code_hash("0000-1111-2222"),
            setup_code_hash("oooo-iiii-2222")
        );
        assert!(setup_code_hash("AAAA-BBBB").is_none());
        assert!(setup_code_hash("UUUU-UUUU-UUUU").is_none());
        assert_ne!(new_setup_code(), new_setup_code());
    }

    #[test]
    fn user_codes_use_the_unambiguous_alphabet() {
        for _ in 0..200 {
            let code = new_user_code();
            assert_eq!(code.len(), 9);
            assert!(
                code.bytes()
                    .all(|b| b == b'-' || USER_CODE_ALPHABET.contains(&b))
            );
            assert_eq!(user_code_hash(&code.to_lowercase()), user_code_hash(&code));
            assert!(user_code_hash(&code).is_some());
        }
        assert!(user_code_hash("AAAA-AAAA").is_none());
        assert!(user_code_hash("BCDF-GHJ").is_none());
    }

    #[test]
    fn url_secrets_are_192_bits() {
        let code = new_url_secret();
        assert_eq!(code.len(), 32);
        assert!(url_secret_hash("invite", &code).is_some());
        assert_ne!(
            url_secret_hash("invite", &code),
            url_secret_hash("device", &code)
        );
        assert!(url_secret_hash("invite", "short").is_none());
        assert!(url_secret_hash("invite", &"/".repeat(32)).is_none());
    }
}
