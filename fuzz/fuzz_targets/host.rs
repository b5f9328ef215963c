//! The Host header and absolute-form authority of every request to a gateway: any bytes are
//! accepted or refused without a panic; an accepted host is lower case, has no trailing dot or
//! port, normalises to itself, and the site it names spells it exactly.
#![no_main]

use http::header::HOST;
use http::{HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use phirepass_parse::host::{self, Domains, Site};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = host::normalize(&String::from_utf8_lossy(data)) {
        check(&h);
    }
    // First line: the request target; every further line: one Host header.
    let mut lines = data.split(|&b| b == b'\n');
    let uri = lines
        .next()
        .and_then(|l| Uri::try_from(l).ok())
        .unwrap_or_else(|| Uri::from_static("/"));
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(HOST, value);
        }
    }
    if let Ok(Some(h)) = host::request_host(&uri, &headers) {
        check(&h);
        assert!(headers.get_all(HOST).iter().count() <= 1, "one Host only");
    }
});

fn check(h: &str) {
    assert!(!h.bytes().any(|b| b.is_ascii_uppercase()), "{h:?}");
    assert!(!h.is_empty() && !h.ends_with('.'), "{h:?}");
    assert!(h.starts_with('[') || !h.contains(':'), "{h:?} keeps a port");
    assert_eq!(host::normalize(h).as_deref(), Ok(h), "not idempotent");
    for domains in [
        Domains {
            tunnel: Some("tunnel.example.com".into()),
            apps: Some("apps.example.com".into()),
        },
        Domains {
            tunnel: Some("example.com".into()),
            apps: Some("apps.example.com".into()),
        },
    ] {
        match host::classify(h, &domains) {
            Site::Tunnel(name) => {
                assert!(host::tunnel_label(&name));
                assert_eq!(format!("{name}.{}", domains.tunnel.unwrap_or_default()), h);
            }
            Site::App { port, node } => {
                assert!(port != 0 && host::node_label(&node));
                assert_eq!(
                    format!("{port}-{node}.{}", domains.apps.unwrap_or_default()),
                    h
                );
            }
            Site::Main | Site::NotServed => {}
        }
    }
}
