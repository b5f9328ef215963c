//! The entries of the forwarding chains proxies append to: `X-Forwarded-For` (one address per
//! entry) and `Forwarded` (RFC 7239, the `for=` of each element). Every header line is part of
//! one chain, in order; an entry that is not an address stays in the chain as `None`, so the
//! caller (the gateway's `client_ip::resolve`, which knows which hops to trust) can stop there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;

/// Every entry of every `X-Forwarded-For` line, leftmost first.
pub fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    chain(headers, "x-forwarded-for", node)
}

/// The `for=` node of every element of every `Forwarded` line, leftmost first.
pub fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    chain(headers, "forwarded", element_for)
}

/// A line that is not visible ASCII counts as one malformed entry.
fn chain(
    headers: &HeaderMap,
    name: &str,
    entry: fn(&str) -> Option<IpAddr>,
) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        match value.to_str() {
            Ok(v) => out.extend(v.split(',').map(entry)),
            Err(_) => out.push(None),
        }
    }
    out
}

/// One `Forwarded` element's `for=` node (RFC 7239); `unknown` and obfuscated names are `None`.
pub fn element_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| node(value))?
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`, optionally in double quotes; IPv4-mapped IPv6
/// addresses come back as IPv4.
pub fn node(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    let raw = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let port_ok = |p: &str| p.is_empty() || p.strip_prefix(':').is_some_and(is_port);
    let ip = if let Some(rest) = raw.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        port_ok(after).then(|| addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6))??
    } else if let Ok(ip) = raw.parse::<IpAddr>() {
        ip
    } else {
        let (addr, port) = raw.rsplit_once(':')?;
        is_port(port).then(|| addr.parse::<Ipv4Addr>().ok().map(IpAddr::V4))??
    };
    Some(ip.to_canonical())
}

fn is_port(p: &str) -> bool {
    p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn nodes_as_proxies_write_them() {
        for (raw, want) in [
            ("192.0.2.1", ip("192.0.2.1")),
            (" 192.0.2.1:4711 ", ip("192.0.2.1")),
            ("2001:db8::1", ip("2001:db8::1")),
            ("[2001:db8::1]", ip("2001:db8::1")),
            ("\"[2001:db8::1]:4711\"", ip("2001:db8::1")),
            ("::ffff:192.0.2.60", ip("192.0.2.60")),
            ("[::ffff:192.0.2.60]:1", ip("192.0.2.60")),
        ] {
            assert_eq!(node(raw), want, "{raw:?}");
        }
        for bad in [
            "",
            "unknown",
            "_hidden",
            "evil.example",
            "1.2.3.4.5",
            "1.2.3.4:99999",
            "1.2.3.4:",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[192.0.2.1]",
            "2001:db8::1:4711:x",
            "\"1.2.3.4",
        ] {
            assert_eq!(node(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn forwarded_elements_give_their_for() {
        assert_eq!(element_for("for=1.2.3.4"), ip("1.2.3.4"));
        assert_eq!(element_for("proto=https; For=\"[::1]:80\""), ip("::1"));
        assert_eq!(element_for("by=10.0.0.1;for=unknown"), None);
        assert_eq!(element_for("proto=https"), None);
        assert_eq!(element_for("for="), None);
    }

    #[test]
    fn chains_span_every_line_in_order() {
        let mut h = HeaderMap::new();
        for line in [&b"1.2.3.4, junk"[..], b"\xff", b"[::1]:9"] {
            h.append("x-forwarded-for", HeaderValue::from_bytes(line).unwrap());
        }
        assert_eq!(
            x_forwarded_for(&h),
            vec![ip("1.2.3.4"), None, None, ip("::1")]
        );
        h.append(
            "forwarded",
            HeaderValue::from_static("for=1.2.3.4, proto=x"),
        );
        assert_eq!(forwarded(&h), vec![ip("1.2.3.4"), None]);
        assert!(x_forwarded_for(&HeaderMap::new()).is_empty());
    }
}
