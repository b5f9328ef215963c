//! Browser Origin checks and the client address, both governed by configuration.

use std::net::SocketAddr;

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

use crate::config::{AppMode, GatewayConfig, IpSource};

/// In production a browser request must come from an allowed origin, or from the gateway's own
/// host; in development anything goes. Requests without Origin (non-browser clients) pass: the
/// check exists to stop other sites from driving a logged-in browser.
pub fn origin_allowed(config: &GatewayConfig, headers: &HeaderMap) -> bool {
    if config.mode == AppMode::Development {
        return true;
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if config.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.eq_ignore_ascii_case(host))
        .unwrap_or(false);
    !host.is_empty() && same_host
}

/// The client's address as `IP_SOURCE` says to read it.
pub fn client_ip(config: &GatewayConfig, peer: SocketAddr, headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let from_header = match config.ip_source {
        IpSource::ConnectInfo => None,
        IpSource::XForwardedFor => header("x-forwarded-for")
            .and_then(|v| v.split(',').next())
            .map(|s| s.trim().to_string()),
        IpSource::Forwarded => header("forwarded").and_then(forwarded_for),
    };
    from_header
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| peer.ip().to_string())
}

fn forwarded_for(value: &str) -> Option<String> {
    let first = value.split(',').next()?;
    first.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        k.eq_ignore_ascii_case("for")
            .then(|| v.trim_matches('"').trim_start_matches('[').to_string())
            .map(|v| v.split(']').next().unwrap_or("").to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use phirepass_runtime::grpc::ServiceToken;

    fn prod(origins: &str) -> GatewayConfig {
        let mut c =
            GatewayConfig::local(String::new(), String::new(), ServiceToken::new("t".into()));
        c.mode = AppMode::Production;
        c.allowed_origins = crate::config::split_origins(origins);
        c
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn production_refuses_foreign_origins() {
        let c = prod("https://app.example.com");
        assert!(origin_allowed(
            &c,
            &headers(&[("origin", "https://app.example.com")])
        ));
        assert!(!origin_allowed(
            &c,
            &headers(&[("origin", "https://evil.example")])
        ));
        assert!(origin_allowed(
            &c,
            &headers(&[
                ("origin", "http://gw.local:8080"),
                ("host", "gw.local:8080")
            ])
        ));
        assert!(!origin_allowed(
            &c,
            &headers(&[("origin", "http://evil:8080"), ("host", "gw.local:8080")])
        ));
    }

    #[test]
    fn forwarded_header_parsing() {
        assert_eq!(
            forwarded_for("for=192.0.2.60;proto=http"),
            Some("192.0.2.60".into())
        );
        assert_eq!(
            forwarded_for(r#"For="[2001:db8::1]:4711""#),
            Some("2001:db8::1".into())
        );
    }
}
