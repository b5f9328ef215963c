//! The health service answers SERVING over a real socket while SSH listens beside it.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use phirepass_runtime::grpc::ServiceToken;
use phirepass_runtime::health::{HealthStatus, check};
use phirepass_ssh_edge::{
    HostKeySource, SERVICE_NAME, SshEdgeConfig, SshEdgeDeps, SshEdgeListeners, serve,
};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn health_reports_serving_and_ssh_sends_its_banner() {
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (health_addr, ssh_addr) = (health.local_addr().unwrap(), ssh.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let unused = "http://127.0.0.1:9".to_string();
    let config = SshEdgeConfig::local(
        unused.clone(),
        unused.clone(),
        unused,
        ServiceToken::generate(),
        HostKeySource::File(dir.path().join("host_key")),
    );
    let deps = SshEdgeDeps {
        bus: phirepass_bus::connect(None).await.unwrap(),
        events: Arc::new(phirepass_bus::MemoryEventLog::new()),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        config,
        SshEdgeListeners { health, ssh },
        deps,
        async {
            let _ = stopped.await;
        },
    ));

    let status = check(&format!("http://{health_addr}"), SERVICE_NAME)
        .await
        .unwrap();
    assert_eq!(status, HealthStatus::Serving);
    let mut socket = tokio::net::TcpStream::connect(ssh_addr).await.unwrap();
    let mut banner = [0u8; 17];
    socket.read_exact(&mut banner).await.unwrap();
    assert_eq!(&banner, b"SSH-2.0-phirepass");
    assert!(dir.path().join("host_key").exists());

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
