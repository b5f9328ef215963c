use super::*;

#[test]
fn app_mode_defaults_to_production_off_loopback() {
    for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"] {
        assert_eq!(default_mode(host), AppMode::Development, "{host}");
    }
    for host in ["0.0.0.0", "::", "192.0.2.10", "gateway.example.com", ""] {
        assert_eq!(default_mode(host), AppMode::Production, "{host}");
    }
}

#[test]
fn a_zero_stats_interval_is_refused_by_name() {
    let err = stats_interval(0).unwrap_err().to_string();
    assert!(err.contains("STATS_REFRESH_INTERVAL"), "{err}");
    assert_eq!(stats_interval(15).unwrap(), Duration::from_secs(15));
}

#[test]
fn forwarding_headers_need_trusted_proxies() {
    assert_eq!(
        trusted_proxies(IpSource::ConnectInfo, None, 0).unwrap(),
        TrustedProxies::None
    );
    assert_eq!(
        trusted_proxies(IpSource::XForwardedFor, None, 1).unwrap(),
        TrustedProxies::Count(1)
    );
    assert_eq!(
        trusted_proxies(IpSource::Forwarded, Some("10.0.0.0/8,127.0.0.1"), 0).unwrap(),
        TrustedProxies::ranges("10.0.0.0/8,127.0.0.1").unwrap()
    );
    for (source, list, count, names) in [
        (IpSource::XForwardedFor, None, 0, "TRUSTED_PROXY_COUNT"),
        (
            IpSource::ConnectInfo,
            Some("10.0.0.0/8"),
            0,
            "IP_SOURCE=XForwardedFor",
        ),
        (IpSource::ConnectInfo, None, 2, "IP_SOURCE=XForwardedFor"),
        (IpSource::XForwardedFor, Some("10.0.0.0/8"), 1, "not both"),
        (
            IpSource::XForwardedFor,
            Some("10.0.0.0/40"),
            0,
            "TRUSTED_PROXIES",
        ),
    ] {
        let err = trusted_proxies(source, list, count)
            .unwrap_err()
            .to_string();
        assert!(err.contains(names), "{source:?} {list:?} {count}: {err}");
    }
}
