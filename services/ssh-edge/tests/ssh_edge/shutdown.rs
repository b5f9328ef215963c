//! Shutdown closes the connections it finds (before the banner exchange, and after the key
//! exchange) and waits for them, well before the authentication deadline would close them.

use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::PublicKeyOrCertificate;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A client that trusts any host key: these tests never log in.
struct AnyHostKey;

impl client::Handler for AnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Reads until the edge closes the connection (EOF or a reset).
async fn closed_by_edge(mut socket: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

#[tokio::test]
async fn shutdown_closes_open_connections_and_waits_for_them() {
    let edge = crate::start().await;
    // One client is silent after the edge's banner, one finished the key exchange.
    let mut silent = TcpStream::connect(edge.ssh_addr).await.unwrap();
    let mut banner = [0u8; 17];
    silent.read_exact(&mut banner).await.unwrap();
    let config = Arc::new(client::Config::default());
    let ssh = client::connect(config, edge.ssh_addr, AnyHostKey)
        .await
        .unwrap();

    edge.stop.send(()).unwrap();
    // Both would stay open for the 10 s authentication deadline if nobody closed them.
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        closed_by_edge(silent).await;
        while !ssh.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    closed.await.expect("shutdown left a connection open");
    // Under the 3 s drain bound: the connections were waited for, not timed out.
    tokio::time::timeout(Duration::from_secs(2), edge.server)
        .await
        .expect("serve did not return after its connections closed")
        .unwrap()
        .unwrap();
}
