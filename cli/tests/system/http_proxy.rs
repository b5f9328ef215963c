//! The HTTP proxy by Host (issue #5): tunnels reached by name only, whatever the Host
//! spelling; streaming both ways; WebSocket; X-Forwarded-*; 404/502 pages; two gateways.
use std::time::{Duration, Instant};

use crate::common::http_proxy::{ProxyCluster, backend, raw, websocket, ws_echo, ws_text};
use futures_util::StreamExt;
use sha2::Digest;

const TTL: Duration = Duration::from_secs(900);

struct Tunnels {
    cluster: ProxyCluster,
    _alpha: crate::common::http_proxy::TunnelHandle,
    _beta: crate::common::http_proxy::TunnelHandle,
}

async fn two_tunnels() -> Tunnels {
    let cluster = ProxyCluster::start(2, &[], TTL).await;
    let alpha = cluster
        .publish_tunnel("alpha", backend("tunnel:alpha").await)
        .await;
    let beta = cluster
        .publish_tunnel("beta", backend("tunnel:beta").await)
        .await;
    Tunnels {
        cluster,
        _alpha: alpha,
        _beta: beta,
    }
}

fn client(host: &str, gateway: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .resolve(host, gateway.parse().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn url(host: &str, gateway: &str, path: &str) -> String {
    let port = gateway.rsplit(':').next().unwrap();
    format!("http://{host}:{port}{path}")
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Alpha,
    Beta,
    /// This status, and never a tunnel's body.
    Status(u16),
    /// The dashboard (not a tunnel), whatever it answers.
    Main,
}

#[tokio::test(flavor = "multi_thread")]
async fn host_fuzz_never_reaches_the_wrong_tunnel() {
    let t = two_tunnels().await;
    let long_label = format!("Host: {}.tunnel.localhost", "a".repeat(64));
    let very_long = format!("Host: {}", "a.".repeat(200));
    use Expect::*;
    let cases: Vec<(String, Expect)> = vec![
        ("Host: alpha.tunnel.localhost".into(), Alpha),
        ("Host: ALPHA.TUNNEL.LOCALHOST".into(), Alpha),
        ("Host: Alpha.Tunnel.Localhost:8080".into(), Alpha),
        ("Host: alpha.tunnel.localhost.".into(), Alpha),
        ("Host: alpha.tunnel.localhost.:80".into(), Alpha),
        ("Host: alpha.tunnel.localhost  ".into(), Alpha),
        ("Host: beta.tunnel.localhost".into(), Beta),
        ("Host: bEtA.tunnel.localhost:1".into(), Beta),
        ("Host: alpha..tunnel.localhost".into(), Status(400)),
        ("Host: alpha.tunnel.localhost..".into(), Status(400)),
        ("Host: .alpha.tunnel.localhost".into(), Status(400)),
        ("Host: beta.alpha.tunnel.localhost".into(), Status(404)),
        ("Host: alpha.beta.tunnel.localhost".into(), Status(404)),
        ("Host: alph.tunnel.localhost".into(), Status(404)),
        ("Host: alphaa.tunnel.localhost".into(), Status(404)),
        ("Host: xalpha.tunnel.localhost".into(), Status(404)),
        ("Host: alpha-beta.tunnel.localhost".into(), Status(404)),
        ("Host: beta-.tunnel.localhost".into(), Status(404)),
        ("Host: alpha_x.tunnel.localhost".into(), Status(404)),
        ("Host: xn--lpha-8na.tunnel.localhost".into(), Status(404)),
        ("Host: tunnel.localhost".into(), Status(404)),
        ("Host: alpha.tunnel.localhost.evil.com".into(), Main),
        ("Host: alphatunnel.localhost".into(), Main),
        ("Host: 127.0.0.1".into(), Main),
        ("Host: [::1]:8080".into(), Main),
        (
            "Host: alpha.tunnel.localhost@beta.tunnel.localhost".into(),
            Status(400),
        ),
        (
            "Host: beta.tunnel.localhost@alpha.tunnel.localhost".into(),
            Status(400),
        ),
        ("Host: user:pw@alpha.tunnel.localhost".into(), Status(400)),
        (
            "Host: alpha.tunnel.localhost\r\nHost: beta.tunnel.localhost".into(),
            Status(400),
        ),
        (
            "Host: alpha.tunnel.localhost\r\nHost: alpha.tunnel.localhost".into(),
            Status(400),
        ),
        ("Host:".into(), Status(400)),
        ("Host: alpha.tunnel.localhost:".into(), Status(400)),
        ("Host: alpha.tunnel.localhost:99999".into(), Status(400)),
        ("Host: alpha.tunnel.localhost:80:80".into(), Status(400)),
        ("Host: alpha.tunnel.localhost:8o".into(), Status(400)),
        ("Host: \u{e1}lpha.tunnel.localhost".into(), Status(400)),
        ("Host: alpha%2etunnel.localhost".into(), Status(400)),
        ("Host: alpha.tunnel.localhost/beta".into(), Status(400)),
        ("Host: alpha\\.tunnel.localhost".into(), Status(400)),
        ("Host: 127.0.0.1.5".into(), Status(400)),
        ("Host: 999.0.0.1".into(), Status(400)),
        ("Host: [::1".into(), Status(400)),
        ("Host: [::1]alpha.tunnel.localhost".into(), Status(400)),
        (long_label, Status(400)),
        (very_long, Status(400)),
    ];
    assert!(cases.len() >= 30);
    for (i, (host_lines, expect)) in cases.iter().enumerate() {
        // Alternate gateways: routing must not depend on which one is asked.
        let gw = &t.cluster.gateways[i % 2].addr;
        let (status, body) = raw(gw, &format!("GET / HTTP/1.1\r\n{host_lines}")).await;
        check(host_lines, *expect, status, &body);
    }
    // Absolute-form request lines: the authority must agree with Host.
    let gw = &t.cluster.gateways[0].addr;
    let (status, body) = raw(
        gw,
        "GET http://beta.tunnel.localhost/ HTTP/1.1\r\nHost: alpha.tunnel.localhost",
    )
    .await;
    check(
        "absolute beta, host alpha",
        Expect::Status(400),
        status,
        &body,
    );
    let (status, body) = raw(
        gw,
        "GET http://beta.tunnel.localhost/ HTTP/1.1\r\nHost: beta.tunnel.localhost",
    )
    .await;
    check("absolute beta", Expect::Beta, status, &body);
    let (status, body) = raw(gw, "GET / HTTP/1.0").await;
    check("no host", Expect::Main, status, &body);
}

fn check(case: &str, expect: Expect, status: u16, body: &str) {
    let leaked = |b: &str| b.contains("tunnel:alpha") || b.contains("tunnel:beta");
    match expect {
        Expect::Alpha => assert!(
            status == 200 && body == "tunnel:alpha",
            "{case:?}: {status} {body}"
        ),
        Expect::Beta => assert!(
            status == 200 && body == "tunnel:beta",
            "{case:?}: {status} {body}"
        ),
        Expect::Status(code) => {
            assert_eq!(status, code, "{case:?}: {body}");
            assert!(!leaked(body), "{case:?} reached a tunnel: {body}");
        }
        Expect::Main => {
            assert!(status != 0 && !leaked(body), "{case:?}: {status} {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_upload_and_websocket_through_either_gateway() {
    let t = two_tunnels().await;
    let host = "alpha.tunnel.localhost";
    for gw in &t.cluster.gateways {
        let c = client(host, &gw.addr);
        let r = c.get(url(host, &gw.addr, "/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "tunnel:alpha");
    }
    // Keep-alive: many small requests on pooled connections.
    let gw = &t.cluster.gateways[1].addr;
    let c = client(host, gw);
    let started = Instant::now();
    let n = 300;
    for _ in 0..n {
        let r = c.get(url(host, gw, "/")).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"tunnel:alpha");
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    eprintln!("sequential keep-alive GETs through the tunnel: {rate:.0} req/s");

    // 200 MiB streamed POST: the SHA-256 must match and memory must not grow with the body.
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 200;
    let mut expected = sha2::Sha256::new();
    for i in 0..CHUNKS {
        expected.update(chunk(i, CHUNK));
    }
    let expected = crate::common::http_proxy::hex_lower(&expected.finalize());
    let baseline = phirepass_testkit::rss_bytes("self");
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(
                    phirepass_testkit::rss_bytes("self"),
                    std::sync::atomic::Ordering::Relaxed,
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let body = futures_util::stream::iter(0..CHUNKS)
        .map(|i| Ok::<_, std::io::Error>(bytes::Bytes::from(chunk(i, CHUNK))));
    let started = Instant::now();
    let r = c
        .post(url(host, gw, "/upload"))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer = r.text().await.unwrap();
    sampler.abort();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(answer, format!("{expected} {}", CHUNK * CHUNKS));
    let growth = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(baseline);
    eprintln!(
        "200 MiB upload through the tunnel: {:.0} MiB/s, rss growth {} MiB",
        200.0 / secs,
        growth >> 20
    );
    assert!(growth < 120 << 20, "rss grew by {} MiB", growth >> 20);

    // WebSocket echo end to end, through the other gateway.
    let mut ws = websocket(&t.cluster.gateways[0].addr, host, "/ws", &[]).await;
    assert_eq!(ws_text(&mut ws).await, "tunnel:alpha");
    assert_eq!(ws_echo(&mut ws, "ping 1").await, "ping 1");
    assert_eq!(ws_echo(&mut ws, &"x".repeat(100_000)).await.len(), 100_000);
}

fn chunk(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_headers_are_the_proxys_own() {
    let t = two_tunnels().await;
    let host = "beta.tunnel.localhost";
    let gw = &t.cluster.gateways[0].addr;
    let r = client(host, gw)
        .get(url(host, gw, "/headers"))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "for=6.6.6.6")
        .header("connection", "keep-alive, x-drop-me")
        .header("x-drop-me", "1")
        .header("cookie", "pp_session=secret; theirs=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let port = gw.rsplit(':').next().unwrap();
    assert_eq!(seen["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(seen["x-forwarded-proto"], serde_json::json!(["http"]));
    assert_eq!(
        seen["x-forwarded-host"],
        serde_json::json!([format!("{host}:{port}")])
    );
    assert_eq!(seen["host"], serde_json::json!([format!("{host}:{port}")]));
    assert_eq!(seen["cookie"], serde_json::json!(["theirs=1"]));
    assert!(seen.get("forwarded").is_none(), "{seen}");
    assert!(seen.get("x-drop-me").is_none(), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_names_404_and_offline_tunnels_502() {
    let t = two_tunnels().await;
    // Registered, but nobody listens for its node: the session is gone.
    t.cluster
        .register_tunnel("ghost", "sshr-00000000dead0000")
        .await;
    let gw = &t.cluster.gateways[1].addr;
    let (status, body) = raw(gw, "GET / HTTP/1.1\r\nHost: nobody.tunnel.localhost").await;
    assert_eq!(status, 404);
    assert!(body.contains("no tunnel named nobody"), "{body}");
    let started = Instant::now();
    let (status, body) = raw(gw, "GET / HTTP/1.1\r\nHost: ghost.tunnel.localhost").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("tunnel ghost is offline"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
