//! Phirepass's two cookies (the session on the dashboard, the app token on app hosts): their
//! names, how the gateway sets them, and how a request's token is read.
//!
//! Wherever the browser accepts `Secure` cookies (https, or loopback names, which Chromium and
//! Firefox treat as potentially trustworthy) both carry the `__Host-` prefix: the browser then
//! refuses any copy with a `Domain` or set from another host, so a sibling host (a tunnel, another
//! app) cannot plant one. Only plain http to a name that is not loopback (a development gateway
//! reached by its LAN address) falls back to the unprefixed names; production requires https.

use std::net::IpAddr;

use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::{HeaderMap, HeaderValue};
use tracing::warn;

use crate::config::{AppMode, GatewayConfig};

/// The session cookie where the browser accepts `Secure` cookies.
pub const SESSION_COOKIE: &str = "__Host-pp_session";
/// The session cookie on plain http to a non-loopback name (development only).
pub const SESSION_COOKIE_PLAIN: &str = "pp_session";
/// The app hosts' cookie (one scoped app token) where the browser accepts `Secure` cookies.
pub const APP_COOKIE: &str = "__Host-phirepass_app";
/// The app cookie on plain http to a non-loopback name (development only).
pub const APP_COOKIE_PLAIN: &str = "__phirepass_app";
/// Every name Phirepass uses: never forwarded to an upstream, never set by one.
pub const OURS: [&str; 4] = [
    SESSION_COOKIE,
    SESSION_COOKIE_PLAIN,
    APP_COOKIE,
    APP_COOKIE_PLAIN,
];

/// Which cookie names a request's site uses: one set per request, never both, so a plain
/// cookie planted by a sibling is never read where the prefixed one is expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jar {
    /// `__Host-` names with `Secure`.
    Prefixed,
    /// Plain names without `Secure`: http to a non-loopback name in development.
    Plain,
}

impl Jar {
    /// Production and `PROXY_PUBLIC_SCHEME=https` are served over https; otherwise a loopback
    /// Host (`localhost`, `*.localhost`, 127.0.0.0/8, `[::1]`) is a secure context for cookies.
    pub fn of(config: &GatewayConfig, headers: &HeaderMap) -> Self {
        if config.mode == AppMode::Production || config.proxy.secure() {
            return Self::Prefixed;
        }
        let host = headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| crate::proxy::host::normalize(h).ok());
        match host {
            Some(h) if loopback(&h) => Self::Prefixed,
            _ => Self::Plain,
        }
    }

    pub fn session(self) -> &'static str {
        match self {
            Self::Prefixed => SESSION_COOKIE,
            Self::Plain => SESSION_COOKIE_PLAIN,
        }
    }

    pub fn app(self) -> &'static str {
        match self {
            Self::Prefixed => APP_COOKIE,
            Self::Plain => APP_COOKIE_PLAIN,
        }
    }

    /// The attributes every cookie of this jar ends with (`__Host-` requires `Secure`).
    pub fn secure_attribute(self) -> &'static str {
        match self {
            Self::Prefixed => "; Secure",
            Self::Plain => "",
        }
    }
}

/// A normalised host browsers treat as potentially trustworthy over plain http.
fn loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The one value of cookie `name`, or none when it is absent or sent more than once (a copy
/// planted by another host cannot be told from ours, so neither is used).
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    match phirepass_parse::cookie::get(headers, name) {
        Ok(value) => value,
        Err(ambiguous) => {
            warn!(cookie = name, "{ambiguous}: treated as absent");
            None
        }
    }
}

/// The session token from a bearer header or this jar's cookie; never from the URL.
pub fn session_token(jar: Jar, headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    read(headers, jar.session())
}

/// `Set-Cookie` for the session: host-only (no `Domain`), `Path=/`, HttpOnly, SameSite=Strict.
pub fn session_cookie(jar: Jar, token: &str, max_age: i64) -> HeaderValue {
    let name = jar.session();
    let secure = jar.secure_attribute();
    let value =
        format!("{name}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    // Tokens are hex, so the header value is always valid; fall back to clearing the cookie.
    HeaderValue::from_str(&value).unwrap_or_else(|_| match jar {
        Jar::Prefixed => HeaderValue::from_static("__Host-pp_session=; Path=/; Max-Age=0; Secure"),
        Jar::Plain => HeaderValue::from_static("pp_session=; Path=/; Max-Age=0"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::header::COOKIE;

    fn config(mode: AppMode) -> GatewayConfig {
        let mut c =
            GatewayConfig::local(String::new(), String::new(), crate::config::test_identity());
        c.mode = mode;
        c
    }

    fn host(h: &'static str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(HOST, HeaderValue::from_static(h));
        m
    }

    #[test]
    fn prefixed_on_https_and_loopback_plain_elsewhere_in_development() {
        let dev = config(AppMode::Development);
        for h in [
            "localhost:8080",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:80",
            "3000-web.apps.localhost:8080",
            "Dash.PP.Localhost.",
        ] {
            assert_eq!(Jar::of(&dev, &host(h)), Jar::Prefixed, "{h}");
        }
        for h in [
            "192.168.1.5:8080",
            "gw",
            "localhost.example.com",
            "x.localhostx",
        ] {
            assert_eq!(Jar::of(&dev, &host(h)), Jar::Plain, "{h}");
        }
        assert_eq!(Jar::of(&dev, &HeaderMap::new()), Jar::Plain);
        let prod = config(AppMode::Production);
        assert_eq!(Jar::of(&prod, &host("gw.example.com")), Jar::Prefixed);
        let mut https = config(AppMode::Development);
        https.proxy.public_scheme = "https".into();
        assert_eq!(Jar::of(&https, &host("192.168.1.5")), Jar::Prefixed);
    }

    #[test]
    fn token_from_bearer_or_the_jars_cookie_only() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=b; pp_session=plain; __Host-pp_session=pre; c=d"),
        );
        assert_eq!(session_token(Jar::Prefixed, &h).as_deref(), Some("pre"));
        assert_eq!(session_token(Jar::Plain, &h).as_deref(), Some("plain"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert_eq!(session_token(Jar::Prefixed, &h).as_deref(), Some("xyz"));
        assert_eq!(session_token(Jar::Prefixed, &HeaderMap::new()), None);
    }

    #[test]
    fn a_cookie_sent_twice_is_no_session() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("__Host-pp_session=planted"),
        );
        h.append(COOKIE, HeaderValue::from_static("__Host-pp_session=real"));
        assert_eq!(session_token(Jar::Prefixed, &h), None);
    }

    #[test]
    fn prefixed_cookie_meets_the_host_prefix_rules() {
        let c = session_cookie(Jar::Prefixed, "t", 10);
        let s = c.to_str().unwrap();
        assert!(s.starts_with("__Host-pp_session=t;"), "{s}");
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(s.split("; ").any(|a| a == attr), "{attr} missing: {s}");
        }
        assert!(!s.to_ascii_lowercase().contains("domain"), "{s}");
        let plain = session_cookie(Jar::Plain, "t", 10);
        let p = plain.to_str().unwrap();
        assert!(
            p.starts_with("pp_session=t;") && !p.contains("Secure"),
            "{p}"
        );
    }
}
