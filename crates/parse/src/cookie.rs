//! One cookie from a request's `Cookie` headers. A browser sends every cookie whose Domain and
//! Path match, so a cookie a sibling host planted (`Domain=` the parent, a longer `Path=`)
//! arrives next to the real one under the same name, and first. Which of the two the gateway
//! set cannot be told from the request, so a name sent more than once is [`Ambiguous`] and
//! the caller treats the request as carrying none.
//!
//! Parsing is on bytes, across every `Cookie` header line: a line that is not visible ASCII
//! cannot hide a duplicate.

use http::HeaderMap;
use http::header::COOKIE;

/// The request carries the cookie more than once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the request carries the same cookie more than once")]
pub struct Ambiguous;

/// The value of cookie `name` in the request: `Ok(None)` when it is absent, empty or not
/// visible ASCII, `Err(Ambiguous)` when it is sent more than once (empty copies included).
pub fn get(headers: &HeaderMap, name: &str) -> Result<Option<String>, Ambiguous> {
    find(headers.get_all(COOKIE).iter().map(|v| v.as_bytes()), name)
}

/// [`get`] over raw `Cookie` header values.
pub fn find<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> Result<Option<String>, Ambiguous> {
    let mut found = None;
    for (n, v) in values.into_iter().flat_map(pairs) {
        if n != name.as_bytes() {
            continue;
        }
        if found.is_some() {
            return Err(Ambiguous);
        }
        found = Some(v);
    }
    Ok(found.and_then(value))
}

/// The `name=value` pairs of one header value, names and values without surrounding blanks;
/// a part without `=` is no cookie of ours (browsers read it as a value with no name).
pub fn pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';').filter_map(|part| {
        let eq = part.iter().position(|&b| b == b'=')?;
        Some((trim(&part[..eq]), trim(&part[eq + 1..])))
    })
}

/// A value the gateway could have set: non-empty visible ASCII.
fn value(raw: &[u8]) -> Option<String> {
    if raw.is_empty() || !raw.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return None;
    }
    String::from_utf8(raw.to_vec()).ok()
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(lines: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(COOKIE, HeaderValue::from_bytes(line).unwrap());
        }
        h
    }

    #[test]
    fn reads_one_cookie() {
        let h = headers(&[b"a=1; pp_session=tok ; b=2"]);
        assert_eq!(get(&h, "pp_session"), Ok(Some("tok".into())));
        assert_eq!(get(&h, "a"), Ok(Some("1".into())));
        assert_eq!(get(&h, "c"), Ok(None));
        assert_eq!(get(&HeaderMap::new(), "a"), Ok(None));
        // Names are exact: no prefix, suffix or case match.
        let h = headers(&[b"pp_session2=x; Pp_session=y; xpp_session=z"]);
        assert_eq!(get(&h, "pp_session"), Ok(None));
    }

    #[test]
    fn a_name_sent_twice_is_ambiguous() {
        for lines in [
            &[&b"pp_session=attacker; pp_session=victim"[..]][..],
            &[b"pp_session=attacker", b"pp_session=victim"],
            &[b"a=1;pp_session=x", b"b=2; pp_session = x"],
            // An empty or unreadable copy still makes the real one doubtful.
            &[b"pp_session=; pp_session=victim"],
            &[b"pp_session=victim", b"x=\xff; pp_session=\xfe"],
        ] {
            assert_eq!(
                get(&headers(lines), "pp_session"),
                Err(Ambiguous),
                "{lines:?}"
            );
        }
        // Other names twice do not matter.
        let h = headers(&[b"a=1; a=2; pp_session=tok"]);
        assert_eq!(get(&h, "pp_session"), Ok(Some("tok".into())));
    }

    #[test]
    fn odd_values_are_no_session() {
        for line in [
            &b"pp_session="[..],
            b"pp_session= ",
            b"pp_session=a\xffb",
            b"pp_session=a b",
            b"pp_session",
        ] {
            assert_eq!(get(&headers(&[line]), "pp_session"), Ok(None), "{line:?}");
        }
        // A value may hold '=' (base64 padding).
        let h = headers(&[b"t=YWJj=="]);
        assert_eq!(get(&h, "t"), Ok(Some("YWJj==".into())));
    }

    #[test]
    fn a_line_that_is_not_ascii_is_still_read() {
        let h = headers(&[b"x=\xff\xfe; pp_session=tok"]);
        assert_eq!(get(&h, "pp_session"), Ok(Some("tok".into())));
    }
}
