//! Request smuggling against a tunnel host (issue #9): ambiguous framings sent on a raw socket
//! either reach the tunnel's real upstream exactly once, as one request, or are refused with
//! 400; the request hidden in the body never reaches it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::http_proxy::ProxyCluster;

/// (method, path, body) of every request the upstream answered.
type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A real HTTP server that records what it receives and answers `ok`.
async fn recording_upstream() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let record = record.clone();
        async move {
            let entry = (method.to_string(), uri.path().to_string(), body.to_vec());
            record.lock().unwrap().push(entry);
            "ok"
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

/// Sends `bytes` on a fresh connection; returns every response status read until the gateway
/// closes the connection or stays silent for two seconds.
async fn send_raw(gw: &str, bytes: &[u8]) -> Vec<u16> {
    let mut s = TcpStream::connect(gw).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

const HOST: &str = "Host: smuggle.tunnel.localhost";
const HIDDEN: &str = "GET /smuggled HTTP/1.1\r\nHost: smuggle.tunnel.localhost\r\n\r\n";

/// (case, request bytes): each hides `GET /smuggled` where one reading of the framing sees a
/// second request.
fn cases() -> Vec<(&'static str, String)> {
    let chunked_then_hidden = format!("0\r\n\r\n{HIDDEN}");
    let n = chunked_then_hidden.len();
    vec![
        (
            "cl-te",
            format!(
                "POST /cl-te HTTP/1.1\r\n{HOST}\r\nContent-Length: 4\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{chunked_then_hidden}"
            ),
        ),
        (
            "te-cl",
            format!(
                "POST /te-cl HTTP/1.1\r\n{HOST}\r\nTransfer-Encoding: chunked\r\n\
                 Content-Length: {n}\r\n\r\n{chunked_then_hidden}"
            ),
        ),
        (
            "obs-fold-te",
            format!(
                "POST /obs-fold-te HTTP/1.1\r\n{HOST}\r\nContent-Length: 5\r\n\
                 Transfer-Encoding:\r\n chunked\r\n\r\n{chunked_then_hidden}"
            ),
        ),
        (
            "obs-fold-other",
            format!(
                "POST /obs-fold-other HTTP/1.1\r\n{HOST}\r\nX-Note: a\r\n b\r\n\
                 Content-Length: 5\r\n\r\nhello{HIDDEN}"
            ),
        ),
        (
            "conflicting-cl",
            format!(
                "POST /conflicting-cl HTTP/1.1\r\n{HOST}\r\nContent-Length: 5\r\n\
                 Content-Length: {}\r\n\r\nhello{HIDDEN}",
                5 + HIDDEN.len()
            ),
        ),
        (
            "cl-list",
            format!(
                "POST /cl-list HTTP/1.1\r\n{HOST}\r\nContent-Length: 5, {}\r\n\r\nhello{HIDDEN}",
                5 + HIDDEN.len()
            ),
        ),
        (
            "same-cl-twice",
            format!(
                "POST /same-cl-twice HTTP/1.1\r\n{HOST}\r\nContent-Length: 5\r\n\
                 Content-Length: 5\r\n\r\nhello"
            ),
        ),
        (
            "te-chunked-identity",
            format!(
                "POST /te-chunked-identity HTTP/1.1\r\n{HOST}\r\n\
                 Transfer-Encoding: chunked, identity\r\n\r\n{chunked_then_hidden}"
            ),
        ),
        (
            "te-xchunked",
            format!(
                "POST /te-xchunked HTTP/1.1\r\n{HOST}\r\nContent-Length: 5\r\n\
                 Transfer-Encoding: xchunked\r\n\r\nhello{HIDDEN}"
            ),
        ),
        (
            "te-space-before-colon",
            format!(
                "POST /te-space-before-colon HTTP/1.1\r\n{HOST}\r\nContent-Length: 5\r\n\
                 Transfer-Encoding : chunked\r\n\r\n{chunked_then_hidden}"
            ),
        ),
        (
            "te-twice",
            format!(
                "POST /te-twice HTTP/1.1\r\n{HOST}\r\nTransfer-Encoding: chunked\r\n\
                 Transfer-Encoding: identity\r\n\r\n{chunked_then_hidden}"
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_framings_reach_the_upstream_once_or_are_refused() {
    let cluster = ProxyCluster::start(1, &[], Duration::from_secs(900)).await;
    let (upstream, seen) = recording_upstream().await;
    let _tunnel = cluster.publish_tunnel("smuggle", upstream).await;
    let gw = cluster.gateways[0].addr.clone();
    // The tunnel answers before the attacks start.
    let ok = send_raw(
        &gw,
        format!("GET /ready HTTP/1.1\r\n{HOST}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(ok, vec![200], "the tunnel works");

    let mut report = Vec::new();
    for (case, request) in cases() {
        let statuses = send_raw(&gw, request.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let path = format!("/{case}");
        let seen = seen.lock().unwrap().clone();
        let reached = seen.iter().filter(|(_, p, _)| *p == path).count();
        let smuggled = seen.iter().filter(|(_, p, _)| p == "/smuggled").count();
        report.push(format!("{case}: statuses {statuses:?}, reached {reached}"));
        assert_eq!(
            smuggled, 0,
            "{case}: the hidden request reached the upstream"
        );
        match statuses.first() {
            Some(400) => assert_eq!(reached, 0, "{case}: refused, yet reached the upstream"),
            Some(200) => {
                assert_eq!(reached, 1, "{case}: answered, so exactly once");
                // Chunked wins over Content-Length (RFC 9112 6.3): the body is the chunked one.
                let body = seen.iter().find(|(_, p, _)| *p == path).map(|(_, _, b)| b);
                let want: &[u8] = if case == "same-cl-twice" {
                    b"hello"
                } else {
                    b""
                };
                assert_eq!(body.map(Vec::as_slice), Some(want), "{case}: body");
            }
            other => panic!("{case}: neither refused (400) nor answered once: {other:?}"),
        }
        assert_eq!(
            statuses.len(),
            1,
            "{case}: one request, one answer: {statuses:?}"
        );
    }
    println!("{}", report.join("\n"));
}
