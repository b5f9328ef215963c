//! Header rewriting between client and upstream: hop-by-hop headers go, `X-Forwarded-*` are
//! the proxy's own (the part of a client's chain kept only when a trusted proxy vouched), and Phirepass's cookies
//! never cross to an upstream in either direction.

use std::net::{IpAddr, SocketAddr};

use axum::http::header::{
    CONNECTION, COOKIE, EXPECT, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, SET_COOKIE, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::accounts::cookie::OURS;
use crate::config::{GatewayConfig, IpSource};
use crate::http::client_ip::resolve;
use crate::http::trusted_proxies::TrustedProxies;

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// What the proxy knows about the client side of a request.
pub struct Client<'a> {
    pub config: &'a GatewayConfig,
    pub peer: SocketAddr,
    /// The Host the client sent (with its port), for `X-Forwarded-Host`.
    pub host: &'a str,
}

/// The `Upgrade` value when the request asks for a protocol switch (WebSocket).
pub fn upgrade_requested(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(UPGRADE).cloned()).flatten()
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers (RFC 9110 7.6.1), those the Connection header names included;
/// an upgrade keeps `Connection: upgrade` and its `Upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.to_ascii_lowercase().as_bytes()).ok())
        .filter(|n| *n != HOST)
        .collect();
    for name in named {
        headers.remove(&name);
    }
    for name in [
        CONNECTION,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        UPGRADE,
        PROXY_AUTHENTICATE,
        PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if let Some(protocol) = upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, protocol);
    }
}

/// Prepares a client request's headers for the upstream.
pub fn upstream_request(
    headers: &mut HeaderMap,
    client: &Client<'_>,
    upgrade: Option<HeaderValue>,
) {
    strip_hop_by_hop(headers, upgrade);
    // hyper's server already answered `Expect: 100-continue` by reading the body.
    headers.remove(EXPECT);
    strip_cookies(headers);
    set_forwarded(headers, client);
}

/// `X-Forwarded-For/Proto/Host`: the proxy forwards only what trusted hops vouch for. When
/// the socket's peer is not a trusted proxy (or `IP_SOURCE=ConnectInfo`), every forwarding
/// header the client sent is dropped and replaced by what the gateway itself knows; behind a
/// trusted proxy, the chain is cut to the hops `client_ip::resolve` walked and the peer appended.
fn set_forwarded(headers: &mut HeaderMap, client: &Client<'_>) {
    let config = client.config;
    let peer = client.peer.ip().to_canonical();
    let resolved = resolve(config.ip_source, &config.trusted_proxies, peer, headers);
    let trusted = config.ip_source != IpSource::ConnectInfo && peer_trusted(config, peer);
    // The nearest proxy's value is the rightmost one; anything left of it is the client's.
    let last = |h: &HeaderMap, name: &str| {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
            .map(str::to_string)
    };
    let (xff, proto, host) = if trusted {
        let mut chain = vouched_chain(config.ip_source, headers, resolved);
        chain.push(peer.to_string());
        let proto = last(headers, X_FORWARDED_PROTO).filter(|p| p == "http" || p == "https");
        (chain.join(", "), proto, last(headers, X_FORWARDED_HOST))
    } else {
        (resolved.to_string(), None, None)
    };
    let proto = proto.unwrap_or_else(|| config.proxy.public_scheme.clone());
    let host = host.unwrap_or_else(|| client.host.to_string());
    // Their content is folded into X-Forwarded-For above; a raw copy would carry the
    // client's own entries past the upstream's parser.
    headers.remove("forwarded");
    headers.remove("x-real-ip");
    for (name, value) in [
        (X_FORWARDED_FOR, xff),
        (X_FORWARDED_PROTO, proto),
        (X_FORWARDED_HOST, host),
    ] {
        headers.remove(name);
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}

/// Whether the socket's peer is one of the proxies `TRUSTED_PROXIES`/`TRUSTED_PROXY_COUNT` names.
fn peer_trusted(config: &GatewayConfig, peer: IpAddr) -> bool {
    match &config.trusted_proxies {
        TrustedProxies::None => false,
        TrustedProxies::Count(count) => *count > 0,
        TrustedProxies::Ranges(ranges) => ranges.iter().any(|r| r.contains(peer)),
    }
}

/// The chain's entries from the resolved client rightwards: the part trusted hops appended.
/// Walks from the right until the entry that is the client; when the client was not found
/// (malformed entries), only the client itself is kept.
fn vouched_chain(source: IpSource, headers: &HeaderMap, client: IpAddr) -> Vec<String> {
    let name = match source {
        IpSource::Forwarded => "forwarded",
        _ => X_FORWARDED_FOR,
    };
    let mut probe = HeaderMap::new();
    let mut kept = Vec::new();
    let entries: Vec<String> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .collect();
    for entry in entries.iter().rev() {
        // Parse each entry with the same rules `resolve` uses: a one-entry chain behind a
        // peer that trusts exactly one hop resolves to that entry.
        probe.clear();
        let Ok(value) = HeaderValue::from_str(entry) else {
            break;
        };
        probe.insert(name, value);
        let ip = resolve(source, &TrustedProxies::Count(1), NOBODY, &probe);
        if ip == NOBODY {
            break;
        }
        kept.push(ip.to_string());
        if ip == client {
            kept.reverse();
            return kept;
        }
    }
    vec![client.to_string()]
}

/// A peer address no chain entry can be (`resolve` returns it when an entry does not parse).
const NOBODY: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

fn ours(name: &str) -> bool {
    OURS.contains(&name)
}

/// Drops Phirepass's cookies from `Cookie`, keeping the app's own (merged into one header).
pub fn strip_cookies(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !ours(pair.split('=').next().unwrap_or("").trim()))
        .map(str::to_string)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, v);
    }
}

/// Prepares an upstream response's headers for the client: hop-by-hop headers go, and only
/// the `Set-Cookie` lines [`upstream_set_cookie`] accepts pass.
pub fn client_response(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    strip_hop_by_hop(headers, upgrade);
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(upstream_set_cookie)
        .collect();
    headers.remove(SET_COOKIE);
    for v in kept {
        headers.append(SET_COOKIE, v);
    }
}

/// An upstream's `Set-Cookie` as the client may see it, judged on its bytes. Dropped: a line
/// that is not visible ASCII (a browser may read those bytes otherwise than we do), a cookie
/// without a name (the browser sends a nameless cookie's value alone, so `=pp_session=x`
/// arrives as `pp_session=x`), and any of Phirepass's names in any case, prefixed or not.
/// Every `Domain` attribute is removed, so the cookie stays host-only on the tunnel or app host
/// that set it and cannot be tossed onto the dashboard or a sibling host.
pub fn upstream_set_cookie(value: &HeaderValue) -> Option<HeaderValue> {
    let bytes = value.as_bytes();
    if !bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b))
    {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split(';');
    let pair = parts.next()?;
    let (name, _) = pair.split_once('=')?;
    let name = name.trim_matches([' ', '\t']);
    if name.is_empty() || OURS.iter().any(|o| o.eq_ignore_ascii_case(name)) {
        return None;
    }
    let attributes: Vec<&str> = parts.collect();
    let kept: Vec<&str> = attributes
        .iter()
        .copied()
        .filter(|a| {
            let key = a.split('=').next().unwrap_or("").trim_matches([' ', '\t']);
            !key.eq_ignore_ascii_case("domain")
        })
        .collect();
    if kept.len() == attributes.len() {
        return Some(value.clone());
    }
    let rebuilt: Vec<&str> = std::iter::once(pair).chain(kept).collect();
    HeaderValue::from_str(&rebuilt.join(";")).ok()
}

/// The value of cookie `name` in the request, if any; none when it is sent twice (a sibling
/// host may have planted the other copy).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    phirepass_parse::cookie::get(headers, name)
        .inspect_err(|_| tracing::debug!(cookie = name, "cookie sent twice, ignored"))
        .ok()
        .flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "headers_tests.rs"]
mod tests;
