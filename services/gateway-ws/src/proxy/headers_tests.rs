use phirepass_runtime::grpc::ServiceToken;

use super::*;

fn config(ip_source: IpSource) -> GatewayConfig {
    let mut c = GatewayConfig::local(String::new(), String::new(), ServiceToken::new("t".into()));
    c.ip_source = ip_source;
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
    let c = config(ip_source);
    let client = Client {
        config: &c,
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
    let h = prepared(IpSource::XForwardedFor, SPOOFED);
    assert_eq!(h["x-forwarded-for"], "6.6.6.6, 192.0.2.7");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "evil.example");
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

#[test]
fn reads_one_cookie() {
    let h = headers(&[("cookie", "a=1; __phirepass_app=tok ; b=2")]);
    assert_eq!(cookie(&h, APP_COOKIE).as_deref(), Some("tok"));
    assert_eq!(cookie(&h, "c"), None);
}
