//! The SSH check: an SSH server, something else, and nothing at SSH_HOST:SSH_PORT.

use phirepass_agent::ssh_check::{Probe, probe};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;

/// A listener that greets every connection with `greeting`.
async fn greeter(greeting: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(greeting).await;
        }
    });
    port
}

#[tokio::test]
async fn an_ssh_greeting_is_reachable() {
    let port = greeter(b"SSH-2.0-OpenSSH_9.2\r\n").await;
    assert_eq!(probe("127.0.0.1", port).await, Probe::Ssh);
}

#[tokio::test]
async fn another_server_is_not_ssh() {
    let port = greeter(b"HTTP/1.1 400 Bad Request\r\n").await;
    assert!(
        matches!(probe("127.0.0.1", port).await, Probe::NotSsh(why) if why.contains("HTTP/1.1"))
    );
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    assert!(matches!(
        probe("127.0.0.1", port).await,
        Probe::Unreachable(_)
    ));
}
