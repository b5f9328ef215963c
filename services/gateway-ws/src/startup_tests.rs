use super::*;

fn config(tunnel: Option<&str>, apps: Option<&str>, origins: &[&str]) -> GatewayConfig {
    let mut c = GatewayConfig::local(String::new(), String::new(), crate::config::test_identity());
    c.proxy.tunnel_domain = tunnel.map(str::to_string);
    c.proxy.apps_domain = apps.map(str::to_string);
    c.allowed_origins = origins.iter().map(|o| o.to_string()).collect();
    c.proxy.main_origin = c.allowed_origins.first().cloned();
    c
}

#[test]
fn separate_domains_pass() {
    let ok = [
        config(None, None, &[]),
        config(Some("tunnel.localhost"), Some("apps.localhost"), &[]),
        config(
            Some("tunnel.example.com"),
            Some("apps.example.com"),
            &["https://phirepass.example.com", "https://example.com:8443"],
        ),
        // A name that merely ends in the same letters is not under the domain.
        config(
            Some("tunnel.example.com"),
            Some("apps.example.com"),
            &["https://mytunnel.example.com"],
        ),
        config(Some("tunnel.example.com"), None, &["http://[::1]:8080"]),
    ];
    for c in ok {
        check_domains(&c).unwrap();
        check_config(&c).unwrap();
    }
}

#[test]
fn overlapping_domains_are_refused_naming_the_variables() {
    for (c, names) in [
        (
            config(Some("apps.example.com"), Some("apps.example.com"), &[]),
            ["TUNNEL_DOMAIN", "APPS_DOMAIN"],
        ),
        (
            config(Some("t.apps.example.com"), Some("apps.example.com"), &[]),
            ["TUNNEL_DOMAIN", "APPS_DOMAIN"],
        ),
        (
            config(Some("example.com"), Some("apps.example.com"), &[]),
            ["APPS_DOMAIN", "TUNNEL_DOMAIN"],
        ),
    ] {
        let err = check_domains(&c).unwrap_err();
        assert!(names.iter().all(|n| err.contains(n)), "{err}");
    }
}

#[test]
fn a_dashboard_under_a_user_domain_is_refused() {
    for (origin, tunnel, var) in [
        (
            "https://phirepass.tunnel.example.com",
            "tunnel.example.com",
            "TUNNEL_DOMAIN",
        ),
        (
            "https://TUNNEL.example.com:8443/",
            "tunnel.example.com",
            "TUNNEL_DOMAIN",
        ),
        (
            "https://dash.apps.example.com",
            "tunnel.example.com",
            "APPS_DOMAIN",
        ),
    ] {
        let c = config(Some(tunnel), Some("apps.example.com"), &[origin]);
        let err = check_domains(&c).unwrap_err();
        assert!(
            err.contains(var) && err.contains("PROXY_MAIN_ORIGIN"),
            "{err}"
        );
        assert!(matches!(check_config(&c), Err(GatewayError::Startup(_))));
    }
    // Any allowed origin is a dashboard too.
    let c = config(
        Some("example.com"),
        Some("apps.example.org"),
        &[
            "https://phirepass.example.org",
            "https://phirepass.example.com",
        ],
    );
    let err = check_domains(&c).unwrap_err();
    assert!(err.contains("ACCESS_CONTROL_ALLOW_ORIGIN"), "{err}");
}

#[test]
fn a_zero_stats_interval_is_refused() {
    let mut c = config(None, None, &[]);
    c.stats_refresh_interval = Duration::ZERO;
    let err = check_config(&c).unwrap_err().to_string();
    assert!(err.contains("STATS_REFRESH_INTERVAL"), "{err}");
}
