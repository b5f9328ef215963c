//! `X-Forwarded-For` and `Forwarded` chains (read from every request when a trusted proxy is
//! configured): any bytes give one entry per comma-separated element without a panic, and an
//! address read is canonical and reads back from its own spelling.
#![no_main]

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use phirepass_parse::forwarded;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(ip) = forwarded::node(&text) {
        check(ip);
    }
    if let Some(ip) = forwarded::element_for(&text) {
        check(ip);
    }
    let mut headers = HeaderMap::new();
    let mut entries = 0;
    for line in data.split(|&b| b == b'\n') {
        let Ok(value) = HeaderValue::from_bytes(line) else {
            continue;
        };
        entries += value.to_str().map_or(1, |v| v.split(',').count());
        headers.append("x-forwarded-for", value.clone());
        headers.append("forwarded", value);
    }
    let xff = forwarded::x_forwarded_for(&headers);
    let fwd = forwarded::forwarded(&headers);
    assert_eq!((xff.len(), fwd.len()), (entries, entries));
    // Every address is canonical; the first few also read back from their spellings (all of
    // them would make a long chain cost milliseconds per input).
    for (i, ip) in xff.into_iter().chain(fwd).flatten().enumerate() {
        assert_eq!(ip, ip.to_canonical(), "{ip} is IPv4-mapped");
        if i < 4 {
            check(ip);
        }
    }
});

fn check(ip: IpAddr) {
    assert_eq!(
        ip,
        ip.to_canonical(),
        "IPv4-mapped addresses come back as IPv4"
    );
    let spellings = match ip {
        IpAddr::V4(v4) => vec![v4.to_string(), format!("{v4}:4711"), format!("\"{v4}\"")],
        IpAddr::V6(v6) => vec![
            v6.to_string(),
            format!("[{v6}]"),
            format!("[{v6}]:4711"),
            format!("\"[{v6}]:4711\""),
        ],
    };
    for spelling in spellings {
        assert_eq!(forwarded::node(&spelling), Some(ip), "{spelling:?}");
        assert_eq!(forwarded::element_for(&format!("for={spelling}")), Some(ip));
    }
}
