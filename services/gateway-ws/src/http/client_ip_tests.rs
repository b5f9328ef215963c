use axum::http::{HeaderMap, HeaderValue};

use super::*;

const PROXY: &str = "10.0.0.5";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn headers(name: &'static str, values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(name, HeaderValue::from_bytes(v).unwrap());
    }
    h
}

fn xff(trusted: &TrustedProxies, peer: &str, values: &[&[u8]]) -> IpAddr {
    let h = headers("x-forwarded-for", values);
    resolve(IpSource::XForwardedFor, trusted, ip(peer), &h)
}

fn ranges(list: &str) -> TrustedProxies {
    TrustedProxies::ranges(list).unwrap()
}

#[test]
fn without_trusted_proxies_headers_are_ignored() {
    for source in [IpSource::ConnectInfo, IpSource::XForwardedFor] {
        let h = headers("x-forwarded-for", &[b"198.51.100.7"]);
        assert_eq!(
            resolve(source, &TrustedProxies::None, ip(PROXY), &h),
            ip(PROXY)
        );
    }
    // A peer outside the trusted ranges is the client, whatever it claims.
    let got = xff(&ranges("10.0.0.0/8"), "203.0.113.9", &[b"198.51.100.7"]);
    assert_eq!(got, ip("203.0.113.9"));
}

#[test]
fn spoofed_leftmost_entries_are_ignored() {
    // The client typed the first two; the trusted proxy appended what it saw.
    let sent: &[&[u8]] = &[b"1.2.3.4, 5.6.7.8, 203.0.113.9"];
    assert_eq!(xff(&ranges("10.0.0.0/8"), PROXY, sent), ip("203.0.113.9"));
    assert_eq!(
        xff(&TrustedProxies::Count(1), PROXY, sent),
        ip("203.0.113.9")
    );
    // Two proxies: an outer one (also trusted) appended the client, the inner one the outer.
    let two: &[&[u8]] = &[b"1.2.3.4, 203.0.113.9, 10.1.1.1"];
    assert_eq!(xff(&ranges("10.0.0.0/8"), PROXY, two), ip("203.0.113.9"));
    assert_eq!(
        xff(&TrustedProxies::Count(2), PROXY, two),
        ip("203.0.113.9")
    );
    // Separate header lines are one chain, in order.
    let lines: &[&[u8]] = &[b"1.2.3.4", b"203.0.113.9"];
    assert_eq!(xff(&ranges("10.0.0.0/8"), PROXY, lines), ip("203.0.113.9"));
}

#[test]
fn the_rightmost_untrusted_address_is_taken() {
    let sent: &[&[u8]] = &[b"198.51.100.1, 192.0.2.77, 127.0.0.1"];
    let trusted = ranges("10.0.0.0/8, 127.0.0.1");
    assert_eq!(xff(&trusted, PROXY, sent), ip("192.0.2.77"));
    // Every hop trusted: the farthest one is all there is.
    assert_eq!(xff(&trusted, PROXY, &[b"10.9.9.9"]), ip("10.9.9.9"));
    assert_eq!(xff(&trusted, PROXY, &[]), ip(PROXY));
    // A count longer than the chain stops at its left end.
    assert_eq!(
        xff(&TrustedProxies::Count(3), PROXY, &[b"192.0.2.1"]),
        ip("192.0.2.1")
    );
}

#[test]
fn malformed_entries_are_never_the_answer() {
    let trusted = ranges("10.0.0.0/8");
    for bad in [
        &b"203.0.113.9, evil.example"[..],
        b"203.0.113.9, unknown",
        b"203.0.113.9, ",
        b"203.0.113.9, 1.2.3.4.5",
        b"203.0.113.9, [2001:db8::1",
        b"203.0.113.9, 1.2.3.4:99999",
        b"203.0.113.9, \xff\xfe",
    ] {
        assert_eq!(xff(&trusted, PROXY, &[bad]), ip(PROXY), "{bad:?}");
        assert_eq!(
            xff(&TrustedProxies::Count(1), PROXY, &[bad]),
            ip(PROXY),
            "{bad:?}"
        );
    }
    // A malformed entry left of the client is never reached.
    let sent: &[&[u8]] = &[b"garbage, 203.0.113.9"];
    assert_eq!(xff(&trusted, PROXY, sent), ip("203.0.113.9"));
}

#[test]
fn ipv6_with_brackets_ports_and_mapped_ipv4() {
    let trusted = ranges("10.0.0.0/8, fd00::/8");
    for (entry, want) in [
        (&b"2001:db8::1"[..], "2001:db8::1"),
        (b"[2001:db8::1]", "2001:db8::1"),
        (b"[2001:db8::1]:4711", "2001:db8::1"),
        (b"192.0.2.60:8080", "192.0.2.60"),
        (b"::ffff:192.0.2.60", "192.0.2.60"),
    ] {
        assert_eq!(xff(&trusted, "fd00::2", &[entry]), ip(want), "{entry:?}");
    }
    // The peer's IPv4-mapped form matches an IPv4 range.
    assert_eq!(
        xff(&trusted, "::ffff:10.0.0.5", &[b"192.0.2.1"]),
        ip("192.0.2.1")
    );
}

#[test]
fn forwarded_header_from_the_right() {
    let h = headers(
        "forwarded",
        &[
            br#"for=1.2.3.4, for="[2001:db8::1]:4711";proto=https"#,
            b"For=10.1.1.1;by=10.0.0.5",
        ],
    );
    let got = resolve(IpSource::Forwarded, &ranges("10.0.0.0/8"), ip(PROXY), &h);
    assert_eq!(got, ip("2001:db8::1"));
    // `for=unknown` and obfuscated names are not addresses.
    for bad in [&b"for=unknown"[..], b"for=_hidden", b"proto=https", b"for="] {
        let h = headers("forwarded", &[bad]);
        let got = resolve(
            IpSource::Forwarded,
            &TrustedProxies::Count(1),
            ip(PROXY),
            &h,
        );
        assert_eq!(got, ip(PROXY), "{bad:?}");
    }
}
