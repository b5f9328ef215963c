//! The `Cookie` headers of every request to a gateway: any bytes give one value, none, or
//! `Ambiguous` without a panic; a value is non-empty visible ASCII; and a second copy of a
//! name is never silently picked.
#![no_main]

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use phirepass_parse::cookie::{self, Ambiguous};

const NAMES: [&str; 5] = [
    "__Host-pp_session",
    "pp_session",
    "__Host-phirepass_app",
    "__phirepass_app",
    "a",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick) % NAMES.len()];
    // One header line per input line.
    let lines: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    let got = cookie::find(lines.iter().copied(), name);
    if let Ok(Some(value)) = &got {
        assert!(!value.is_empty(), "empty value");
        assert!(
            value
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b';'),
            "{value:?}"
        );
    }
    let mut headers = HeaderMap::new();
    for line in &lines {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    if headers.get_all(COOKIE).iter().count() == lines.len() {
        assert_eq!(cookie::get(&headers, name), got);
    }
    // A planted copy: the request then carries the name twice (or only the new copy).
    let planted = format!("{name}=planted");
    let more = cookie::find(lines.iter().copied().chain([planted.as_bytes()]), name);
    match got {
        Ok(None) => assert!(
            more == Err(Ambiguous) || more == Ok(Some("planted".to_string())),
            "{more:?}"
        ),
        Ok(Some(_)) | Err(Ambiguous) => assert_eq!(more, Err(Ambiguous)),
    }
});
