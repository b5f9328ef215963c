//! Tunnel names: what a `-R` bind address asks for, and random names when it asks for none.

use rand::Rng;

/// Bind addresses that mean "no particular name" (what OpenSSH sends for `-R 80:...`, or the
/// usual wildcard spellings).
const UNNAMED: &[&str] = &["", "localhost", "0.0.0.0", "*", "127.0.0.1", "::"];

/// Longest DNS label.
pub(crate) const NAME_MAX: usize = 63;
/// Length of a random name.
pub(crate) const RANDOM_LEN: usize = 10;

/// The name a bind address asks for: `None` for the wildcard spellings, else the address
/// lower-cased (DNS names are case-insensitive; the raw address is kept for the channel).
pub(crate) fn requested(address: &str) -> Option<String> {
    if UNNAMED.contains(&address) {
        None
    } else {
        Some(address.to_ascii_lowercase())
    }
}

/// Why `name` is not a DNS label (1-63 of a-z, 0-9, '-', not starting or ending with '-').
pub(crate) fn invalid(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name.len() > NAME_MAX {
        return Some(format!("it is longer than {NAME_MAX} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "it contains {:?} (allowed: a-z, 0-9, '-')",
            c.escape_debug().to_string()
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("it starts or ends with '-'".into());
    }
    None
}

/// 10 characters of [a-z0-9], the first a letter.
pub(crate) fn random() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut out = String::with_capacity(RANDOM_LEN);
    out.push(char::from(LETTERS[rng.random_range(0..LETTERS.len())]));
    for _ in 1..RANDOM_LEN {
        out.push(char::from(ALNUM[rng.random_range(0..ALNUM.len())]));
    }
    out
}

/// "http" for the public HTTP port, "tcp" (a private alias) for any other.
pub(crate) fn kind(port: u16) -> &'static str {
    if port == 80 { "http" } else { "tcp" }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_request_no_name() {
        for a in UNNAMED {
            assert_eq!(requested(a), None, "{a:?}");
        }
        assert_eq!(requested("myapp"), Some("myapp".into()));
        assert_eq!(requested("MyApp"), Some("myapp".into()));
    }

    #[test]
    fn labels() {
        assert!(invalid("myapp").is_none());
        assert!(invalid("a").is_none());
        assert!(invalid("my-app-2").is_none());
        assert!(invalid(&"a".repeat(63)).is_none());
        for bad in ["", "-a", "a-", "a.b", "a_b", "a b", "é", "a\u{1b}", "a/b"] {
            assert!(invalid(bad).is_some(), "{bad:?}");
        }
        assert!(invalid(&"a".repeat(64)).is_some());
    }

    #[test]
    fn random_names_are_labels() {
        for _ in 0..200 {
            let n = random();
            assert_eq!(n.len(), RANDOM_LEN);
            assert!(n.as_bytes()[0].is_ascii_lowercase(), "{n}");
            assert!(invalid(&n).is_none(), "{n}");
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(kind(80), "http");
        assert_eq!(kind(5432), "tcp");
    }
}
