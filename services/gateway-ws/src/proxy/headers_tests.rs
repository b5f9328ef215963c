use super::*;

fn config(ip_source: IpSource) -> GatewayConfig {
    trusting(ip_source, TrustedProxies::None)
}

fn trusting(ip_source: IpSource, trusted: TrustedProxies) -> GatewayConfig {
    let mut c = GatewayConfig::local(String::new(), String::new(), crate::config::test_identity());
    c.ip_source = ip_source;
    c.trusted_proxies = trusted;
    c
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    h
}

fn prepared(ip_source: IpSource, pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    prepared_with(&config(ip_source), pairs)
}

/// The headers an upstream gets from peer 192.0.2.7 under configuration `c`.
fn prepared_with(c: &GatewayConfig, pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let client = Client {
        config: c,
        peer: "192.0.2.7:5555".parse().unwrap(),
        host: "app.tunnel.localhost:8080",
    };
    let mut h = headers(pairs);
    let upgrade = upgrade_requested(&h);
    upstream_request(&mut h, &client, upgrade);
    h
}

const SPOOFED: &[(&str, &str)] = &[
    ("x-forwarded-for", "6.6.6.6"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "evil.example"),
    ("forwarded", "for=6.6.6.6"),
    ("connection", "keep-alive, x-secret"),
    ("x-secret", "1"),
    ("keep-alive", "timeout=5"),
    ("te", "trailers"),
    ("cookie", "pp_session=s; a=1"),
    ("cookie", "__phirepass_app=t; b=2"),
    ("cookie", "__Host-pp_session=s2; __Host-phirepass_app=t2"),
];

#[test]
fn untrusted_client_headers_are_replaced() {
    let h = prepared(IpSource::ConnectInfo, SPOOFED);
    assert_eq!(h["x-forwarded-for"], "192.0.2.7");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "app.tunnel.localhost:8080");
    for gone in ["forwarded", "connection", "x-secret", "keep-alive", "te"] {
        assert!(!h.contains_key(gone), "{gone}");
    }
    assert_eq!(h.get_all("cookie").iter().count(), 1);
    assert_eq!(h["cookie"], "a=1; b=2");
}

#[test]
fn trusted_proxy_headers_are_extended() {
    for trusted in [
        TrustedProxies::Count(1),
        TrustedProxies::ranges("192.0.2.0/24").unwrap(),
    ] {
        let h = prepared_with(&trusting(IpSource::XForwardedFor, trusted), SPOOFED);
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "evil.example");
        assert!(!h.contains_key("forwarded"));
    }
}

/// Issue #14: `IP_SOURCE` alone is not trust; a peer outside `TRUSTED_PROXIES` (or with none
/// configured) gets nothing it typed forwarded.
#[test]
fn a_peer_that_is_not_a_trusted_proxy_forwards_nothing_it_typed() {
    for (source, trusted) in [
        (IpSource::XForwardedFor, TrustedProxies::None),
        (IpSource::Forwarded, TrustedProxies::None),
        (
            IpSource::XForwardedFor,
            TrustedProxies::ranges("10.0.0.0/8").unwrap(),
        ),
        (IpSource::ConnectInfo, TrustedProxies::Count(1)),
    ] {
        let h = prepared_with(&trusting(source, trusted.clone()), SPOOFED);
        let case = format!("{source:?} {trusted:?}");
        assert_eq!(h["x-forwarded-for"], "192.0.2.7", "{case}");
        assert_eq!(h["x-forwarded-proto"], "http", "{case}");
        assert_eq!(h["x-forwarded-host"], "app.tunnel.localhost:8080", "{case}");
        assert!(!h.contains_key("forwarded"), "{case}");
        assert!(!h.contains_key("x-real-ip"), "{case}");
    }
}

/// Behind trusted proxies only the hops they appended survive; the client's own prefix goes.
#[test]
fn only_the_vouched_part_of_the_chain_is_forwarded() {
    let chain = &[
        ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
        ("x-forwarded-for", "10.1.1.1"),
        ("x-forwarded-proto", "http, https"),
        ("x-real-ip", "6.6.6.6"),
    ];
    let by_count = trusting(IpSource::XForwardedFor, TrustedProxies::Count(2));
    let h = prepared_with(&by_count, chain);
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.1.1.1, 192.0.2.7");
    assert_eq!(h["x-forwarded-proto"], "https", "the nearest proxy's value");
    assert!(!h.contains_key("x-real-ip"));
    let by_range = trusting(
        IpSource::XForwardedFor,
        TrustedProxies::ranges("192.0.2.0/24, 10.0.0.0/8").unwrap(),
    );
    let h = prepared_with(&by_range, chain);
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.1.1.1, 192.0.2.7");
    let forwarded = trusting(IpSource::Forwarded, TrustedProxies::Count(1));
    let h = prepared_with(
        &forwarded,
        &[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::5]:443\";proto=https",
        )],
    );
    assert_eq!(h["x-forwarded-for"], "2001:db8::5, 192.0.2.7");
    assert!(!h.contains_key("forwarded"));
    // A garbage entry ends what can be vouched for at the resolved client.
    let h = prepared_with(&by_count, &[("x-forwarded-for", "6.6.6.6, junk, 10.1.1.1")]);
    assert_eq!(h["x-forwarded-for"], "10.1.1.1, 192.0.2.7");
}

#[test]
fn upgrades_keep_their_headers() {
    let h = prepared(
        IpSource::ConnectInfo,
        &[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ],
    );
    assert_eq!(h["connection"], "upgrade");
    assert_eq!(h["upgrade"], "websocket");
    let plain = prepared(IpSource::ConnectInfo, &[("upgrade", "websocket")]);
    assert!(!plain.contains_key("upgrade"));
}

#[test]
fn upstream_cannot_set_our_cookies() {
    let mut h = headers(&[
        ("set-cookie", "__phirepass_app=x; Path=/"),
        ("set-cookie", "pp_session=y"),
        ("set-cookie", "theirs=1"),
        ("transfer-encoding", "chunked"),
    ]);
    client_response(&mut h, None);
    let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, vec!["theirs=1"]);
    assert!(!h.contains_key("transfer-encoding"));
}

/// Set-Cookie is judged on its bytes: what a browser could read as one of our cookies, or as
/// a cookie for another host, never passes.
#[test]
fn upstream_set_cookie_is_filtered_on_bytes() {
    let mut h = HeaderMap::new();
    let lines: &[&[u8]] = &[
        b"__Host-pp_session=x; Path=/; Secure",
        b"__HOST-PHIREPASS_APP=x; Path=/; Secure",
        b"__host-pp_session=x; Path=/; Secure",
        b"Pp_Session=x",
        b" pp_session =x",
        b"\tpp_session\t=x",
        b"=pp_session=x",
        b"pp_session",
        b"a=\xff",
        b"a=1; Path=/\xc3\xa9",
        b"",
        b"theirs=1; Path=/; HttpOnly",
        b"parent=1; Domain=example.com; Path=/",
        b"again=1; domain=.apps.example.com; Secure; DOMAIN = x.example.com",
    ];
    for line in lines {
        h.append(SET_COOKIE, HeaderValue::from_bytes(line).unwrap());
    }
    client_response(&mut h, None);
    let cookies: Vec<_> = h.get_all(SET_COOKIE).iter().collect();
    assert_eq!(
        cookies,
        vec![
            "theirs=1; Path=/; HttpOnly",
            "parent=1; Path=/",
            "again=1; Secure",
        ]
    );
}

#[test]
fn reads_one_cookie() {
    let h = headers(&[("cookie", "a=1; __phirepass_app=tok ; b=2")]);
    assert_eq!(cookie(&h, "__phirepass_app").as_deref(), Some("tok"));
    assert_eq!(cookie(&h, "c"), None);
    // A second copy (planted through a parent-domain cookie) leaves the request without one.
    let twice = headers(&[
        ("cookie", "__phirepass_app=planted"),
        ("cookie", "__phirepass_app=tok"),
    ]);
    assert_eq!(cookie(&twice, "__phirepass_app"), None);
}
