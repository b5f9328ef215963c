//! Header rewriting between client and upstream: hop-by-hop headers go, `X-Forwarded-*` are
//! the proxy's own (client copies kept only behind a trusted proxy), and Phirepass's cookies
//! never cross to an upstream in either direction.

use std::net::SocketAddr;

use axum::http::header::{
    CONNECTION, COOKIE, EXPECT, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, SET_COOKIE, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::accounts::cookie::SESSION_COOKIE;
use crate::config::{GatewayConfig, IpSource};
use crate::http::client_ip::client_ip;

/// The app hosts' cookie: one scoped app token.
pub const APP_COOKIE: &str = "__phirepass_app";

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

/// `X-Forwarded-For/Proto/Host`: the client's own copies only count when `IP_SOURCE` says a
/// trusted proxy in front of the gateway set them; otherwise they are replaced.
fn set_forwarded(headers: &mut HeaderMap, client: &Client<'_>) {
    let trusted = client.config.ip_source != IpSource::ConnectInfo;
    let first = |h: &HeaderMap, name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let peer = client.peer.ip().to_string();
    let chain = match client.config.ip_source {
        IpSource::ConnectInfo => None,
        IpSource::XForwardedFor => headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .reduce(|a, b| format!("{a}, {b}")),
        IpSource::Forwarded => Some(client_ip(client.config, client.peer, headers)),
    };
    let xff = match chain {
        Some(chain) => format!("{chain}, {peer}"),
        None => peer,
    };
    let proto = first(headers, X_FORWARDED_PROTO)
        .filter(|p| trusted && (p == "http" || p == "https"))
        .unwrap_or_else(|| client.config.proxy.public_scheme.clone());
    let host = first(headers, X_FORWARDED_HOST)
        .filter(|_| trusted)
        .unwrap_or_else(|| client.host.to_string());
    if !trusted {
        headers.remove("forwarded");
        headers.remove("x-real-ip");
    }
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

fn ours(name: &str) -> bool {
    name == APP_COOKIE || name == SESSION_COOKIE
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

/// Prepares an upstream response's headers for the client: hop-by-hop headers go, and an
/// upstream may not set (or overwrite) Phirepass's cookies.
pub fn client_response(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    strip_hop_by_hop(headers, upgrade);
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| {
            let name = v
                .to_str()
                .ok()
                .and_then(|s| s.split('=').next())
                .map(str::trim)
                .unwrap_or("");
            !ours(name)
        })
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for v in kept {
        headers.append(SET_COOKIE, v);
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "headers_tests.rs"]
mod tests;
