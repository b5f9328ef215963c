//! The client's address: the socket's peer, or, behind trusted proxies, the address the nearest
//! of them saw. A forwarding header is a chain each proxy appends to, so only its right end can
//! be believed; anything to the left of the last trusted hop is whatever the client typed.
//! `IP_SOURCE` names the header, `TRUSTED_PROXIES` / `TRUSTED_PROXY_COUNT` the hops to believe.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::{GatewayConfig, IpSource};
use crate::http::trusted_proxies::TrustedProxies;

/// The client's address as the configuration says to read it.
pub fn client_ip(config: &GatewayConfig, peer: SocketAddr, headers: &HeaderMap) -> String {
    resolve(
        config.ip_source,
        &config.trusted_proxies,
        peer.ip(),
        headers,
    )
    .to_string()
}

/// Walks the chain from the socket's peer leftwards while the hop is trusted; the first hop
/// not trusted is the client. A malformed entry ends the walk at the last address vouched for.
pub fn resolve(
    source: IpSource,
    trusted: &TrustedProxies,
    peer: IpAddr,
    headers: &HeaderMap,
) -> IpAddr {
    let peer = peer.to_canonical();
    let entries = match source {
        IpSource::ConnectInfo => return peer,
        IpSource::XForwardedFor => chain(headers, "x-forwarded-for", parse_node),
        IpSource::Forwarded => chain(headers, "forwarded", forwarded_for),
    };
    let mut hops = entries.into_iter().rev();
    let mut vouched = peer;
    match trusted {
        TrustedProxies::None => peer,
        TrustedProxies::Count(count) => {
            for _ in 0..*count {
                match hops.next() {
                    Some(Some(ip)) => vouched = ip,
                    Some(None) | None => break,
                }
            }
            vouched
        }
        TrustedProxies::Ranges(ranges) => {
            let is_trusted = |ip: IpAddr| ranges.iter().any(|r| r.contains(ip));
            while is_trusted(vouched) {
                match hops.next() {
                    Some(Some(ip)) => vouched = ip,
                    Some(None) | None => break,
                }
            }
            vouched
        }
    }
}

/// Every entry of every `name` header, in order; `None` for an entry that is not an address.
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
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value))?
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`, optionally in double quotes.
fn parse_node(raw: &str) -> Option<IpAddr> {
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
#[path = "client_ip_tests.rs"]
mod tests;
