//! The health service answers SERVING over a real socket while SSH listens beside it.

use phirepass_runtime::health::{HealthStatus, check};
use phirepass_ssh_edge::SERVICE_NAME;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn health_reports_serving_and_ssh_sends_its_banner() {
    let edge = crate::start().await;

    let status = check(&format!("http://{}", edge.health_addr), SERVICE_NAME)
        .await
        .unwrap();
    assert_eq!(status, HealthStatus::Serving);
    let mut socket = tokio::net::TcpStream::connect(edge.ssh_addr).await.unwrap();
    let mut banner = [0u8; 17];
    socket.read_exact(&mut banner).await.unwrap();
    assert_eq!(&banner, b"SSH-2.0-phirepass");
    assert!(edge.dir.path().join("host_key").exists());

    edge.stop.send(()).unwrap();
    edge.server.await.unwrap().unwrap();
}
