//! The client's address, read from the socket or a trusted proxy's header (`IP_SOURCE`).

use std::net::SocketAddr;

use axum::http::HeaderMap;

use crate::config::{GatewayConfig, IpSource};

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
