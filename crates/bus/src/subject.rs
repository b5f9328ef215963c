//! NATS subject and header rules, shared by both implementations so they
//! accept and reject exactly the same input.

use crate::{BusError, Headers};

fn valid_token(t: &str) -> bool {
    !t.is_empty()
        && !t
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// A subject messages can be published to: dot-separated non-empty tokens,
/// no whitespace, no wildcard tokens.
pub fn valid_subject(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|t| valid_token(t) && t != "*" && t != ">")
}

/// A subscription pattern: like a subject, but `*` may stand for any one
/// token and a final `>` for one or more tokens.
pub fn valid_pattern(p: &str) -> bool {
    if p.is_empty() {
        return false;
    }
    let mut tokens = p.split('.').peekable();
    while let Some(t) = tokens.next() {
        if !valid_token(t) || (t == ">" && tokens.peek().is_some()) {
            return false;
        }
    }
    true
}

/// Whether `subject` matches `pattern` under NATS rules. Both must be valid.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subj = subject.split('.');
    for p in pattern.split('.') {
        match (p, subj.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (p, Some(s)) if p == s => {}
            _ => return false,
        }
    }
    subj.next().is_none()
}

/// Header names are printable ASCII without ':'; values must not contain
/// line breaks (they would end the header block on the NATS wire).
pub(crate) fn check_headers(headers: &Headers) -> Result<(), BusError> {
    for (name, value) in headers {
        let name_ok =
            !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !name_ok {
            return Err(BusError::Other(format!("invalid header name {name:?}")));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(BusError::Other(format!(
                "invalid value for header {name:?}"
            )));
        }
    }
    Ok(())
}

pub(crate) fn check_subject(s: &str) -> Result<(), BusError> {
    if valid_subject(s) {
        Ok(())
    } else {
        Err(BusError::Other(format!("invalid subject {s:?}")))
    }
}

pub(crate) fn check_pattern(p: &str) -> Result<(), BusError> {
    if valid_pattern(p) {
        Ok(())
    } else {
        Err(BusError::Other(format!(
            "invalid subscription subject {p:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert!(valid_subject("pp.node.a.open"));
        assert!(!valid_subject(""));
        assert!(!valid_subject("a..b"));
        assert!(!valid_subject("a.b."));
        assert!(!valid_subject("a.*"));
        assert!(!valid_subject("a.>"));
        assert!(!valid_subject("a b"));
        assert!(valid_pattern("a.*.c"));
        assert!(valid_pattern("a.>"));
        assert!(valid_pattern(">"));
        assert!(!valid_pattern("a.>.c"));
        assert!(!valid_pattern("a..c"));
    }

    #[test]
    fn matching() {
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.b.c"));
        assert!(!subject_matches("a.b.c", "a.b"));
        assert!(subject_matches("a.*", "a.b"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(!subject_matches("a.*", "a"));
        assert!(subject_matches("a.>", "a.b"));
        assert!(subject_matches("a.>", "a.b.c"));
        assert!(!subject_matches("a.>", "a"));
        assert!(subject_matches("*.b.>", "x.b.c.d"));
        assert!(subject_matches(">", "x"));
    }

    #[test]
    fn headers() {
        assert!(check_headers(&vec![("Trace-Id".into(), "x y".into())]).is_ok());
        assert!(check_headers(&vec![("bad:name".into(), "v".into())]).is_err());
        assert!(check_headers(&vec![("".into(), "v".into())]).is_err());
        assert!(check_headers(&vec![("n".into(), "a\r\nb".into())]).is_err());
    }
}
