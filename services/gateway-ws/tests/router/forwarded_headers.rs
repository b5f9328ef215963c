//! Issue #14: what an `ssh -R` tunnel's upstream (a real TCP server here) is told about the
//! client. `IP_SOURCE` alone is not trust: unless the socket's peer is a trusted proxy, the
//! client's own `X-Forwarded-*`/`Forwarded` never reach the upstream; behind one, only the
//! hops it vouched for do.

use std::net::SocketAddr;

use phirepass_gateway_ws::IpSource;
use phirepass_gateway_ws::config::TrustedProxies;
use phirepass_proto::registry::TunnelPresence;
use phirepass_tunnel::{StreamConfig, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::common::Gateway;

/// An HTTP/1.1 server on loopback that sends each request head it receives to the test.
async fn upstream() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let head = read_head(&mut tcp).await;
                let _ = heads.send(head);
                let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = tcp.write_all(reply.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}

async fn read_head(tcp: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut byte).await.unwrap();
        assert!(n > 0, "connection closed inside the request head");
        buf.extend_from_slice(&byte[..n]);
    }
    String::from_utf8_lossy(&buf).to_ascii_lowercase()
}

/// Tunnel `name` on the gateway's bus whose port 80 is `backend`, as ssh-edge publishes one.
async fn publish_tunnel(gw: &Gateway, name: &str, backend: SocketAddr) {
    let node_id = format!("sshr-fwd{:08x}", rand::random::<u32>());
    let mut listener = phirepass_tunnel::listen(
        gw.state.bus.clone(),
        gw.state.subjects.clone(),
        &node_id,
        StreamConfig::default(),
    )
    .await
    .unwrap();
    tokio::spawn(async move {
        while let Some(incoming) = listener.next().await {
            if incoming.request().target != (Target::Port { port: 80 }) {
                let _ = incoming.reject("port not published").await;
                continue;
            }
            tokio::spawn(async move {
                let mut tcp = TcpStream::connect(backend).await.unwrap();
                let mut stream = incoming.accept().await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
            });
        }
    });
    let presence = TunnelPresence {
        name: name.into(),
        port: 80,
        kind: "http".into(),
        node_id,
        edge_id: "edge-test".into(),
        session_id: format!("sess-{name}"),
        user_id: "u-test".into(),
        username: "tester".into(),
        client_ip: "127.0.0.1".into(),
        ..Default::default()
    };
    gw.edge_registry
        .clone()
        .tunnel_opened(presence)
        .await
        .unwrap();
}

/// Sends a spoofing request to `web.tunnel.localhost` and returns the head the upstream saw.
async fn upstream_sees(trusted: TrustedProxies) -> String {
    let gw = Gateway::start(|c| {
        c.ip_source = IpSource::XForwardedFor;
        c.trusted_proxies = trusted;
    })
    .await;
    let (backend, mut seen) = upstream().await;
    publish_tunnel(&gw, "web", backend).await;
    let addr = gw.listen().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nhost: web.tunnel.localhost:{}\r\n\
         x-forwarded-for: 6.6.6.6, 203.0.113.9\r\nx-forwarded-proto: https\r\n\
         x-forwarded-host: evil.example\r\nforwarded: for=6.6.6.6\r\nx-real-ip: 6.6.6.6\r\n\
         connection: close\r\n\r\n",
        addr.port()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    seen.recv().await.unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim())
        .collect()
}

#[tokio::test]
async fn a_peer_outside_trusted_proxies_cannot_tell_the_upstream_who_it_is() {
    // IP_SOURCE names the header, but the test's peer (127.0.0.1) is not in the range.
    let head = upstream_sees(TrustedProxies::ranges("10.0.0.0/8").unwrap()).await;
    assert_eq!(header(&head, "x-forwarded-for"), ["127.0.0.1"], "{head}");
    assert_eq!(header(&head, "x-forwarded-proto"), ["http"], "{head}");
    let host = header(&head, "x-forwarded-host");
    assert!(
        host.len() == 1 && host[0].starts_with("web.tunnel.localhost:"),
        "{head}"
    );
    assert!(header(&head, "forwarded").is_empty(), "{head}");
    assert!(header(&head, "x-real-ip").is_empty(), "{head}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_only_the_vouched_hops_reach_the_upstream() {
    for trusted in [
        TrustedProxies::ranges("127.0.0.1").unwrap(),
        TrustedProxies::Count(1),
    ] {
        let head = upstream_sees(trusted.clone()).await;
        // 203.0.113.9 is what the proxy appended; 6.6.6.6 is what its client typed.
        assert_eq!(
            header(&head, "x-forwarded-for"),
            ["203.0.113.9, 127.0.0.1"],
            "{trusted:?}: {head}"
        );
        assert_eq!(header(&head, "x-forwarded-proto"), ["https"], "{head}");
        assert!(header(&head, "forwarded").is_empty(), "{head}");
    }
}
