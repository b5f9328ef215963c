//! Which hops in front of the gateway may name the client's address: `TRUSTED_PROXIES` (a list
//! of addresses and CIDR ranges) or `TRUSTED_PROXY_COUNT` (how many proxies always stand in
//! front). Without either, no forwarding header is believed.

use std::net::IpAddr;
use std::str::FromStr;

/// An address range such as `10.0.0.0/8` or `fd00::/8`; a bare address is its own range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `true` when `ip` (an IPv4-mapped IPv6 address counts as IPv4) lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network = addr
            .parse::<IpAddr>()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { network, prefix })
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TrustedProxies {
    /// No header is believed: the client is the socket's peer.
    #[default]
    None,
    /// Hops in these ranges are proxies; the client is the rightmost address outside them.
    Ranges(Vec<Cidr>),
    /// This many proxies stand in front (the peer is the first): the client is the address that
    /// many hops from the right of the chain.
    Count(usize),
}

impl TrustedProxies {
    /// `TRUSTED_PROXIES` as a comma-separated list (`10.0.0.0/8,127.0.0.1`).
    pub fn ranges(list: &str) -> Result<Self, String> {
        let ranges = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        if ranges.is_empty() {
            return Err("no address or range given".into());
        }
        Ok(Self::Ranges(ranges))
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Self::None | Self::Count(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_match_by_prefix() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.200.3.4")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped IPv6 is IPv4"
        );
        assert!(!net.contains(ip("::1")));
        let host: Cidr = "127.0.0.1".parse().unwrap();
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
    }

    #[test]
    fn bad_ranges_are_refused_with_the_entry() {
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "example.com",
            "10.0.0/8",
            "1.2.3.4/x",
        ] {
            let err = TrustedProxies::ranges(&format!("127.0.0.1,{bad}")).unwrap_err();
            assert!(err.contains(bad.split('/').next().unwrap()), "{bad}: {err}");
        }
        assert!(TrustedProxies::ranges(" , ").is_err());
        assert_eq!(
            TrustedProxies::ranges("10.0.0.0/8, ::1").unwrap(),
            TrustedProxies::Ranges(vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()])
        );
    }
}
