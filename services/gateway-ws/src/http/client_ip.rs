//! The client's address: the socket's peer, or, behind trusted proxies, the address the nearest
//! of them saw. A forwarding header is a chain each proxy appends to, so only its right end can
//! be believed; anything to the left of the last trusted hop is whatever the client typed.
//! `IP_SOURCE` names the header, `TRUSTED_PROXIES` / `TRUSTED_PROXY_COUNT` the hops to believe.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use phirepass_parse::forwarded;

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
        IpSource::XForwardedFor => forwarded::x_forwarded_for(headers),
        IpSource::Forwarded => forwarded::forwarded(headers),
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

#[cfg(test)]
#[path = "client_ip_tests.rs"]
mod tests;
