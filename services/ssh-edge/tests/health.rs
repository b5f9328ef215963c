//! The health service answers SERVING over a real socket.
#![allow(clippy::unwrap_used)]

use phirepass_runtime::health::{HealthStatus, check};
use phirepass_ssh_edge::{SERVICE_NAME, SshEdgeConfig, SshEdgeDeps, serve};

#[tokio::test]
async fn health_reports_serving() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = SshEdgeConfig { health_addr: addr };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(config, listener, SshEdgeDeps::default(), async {
        let _ = stopped.await;
    }));

    let status = check(&format!("http://{addr}"), SERVICE_NAME)
        .await
        .unwrap();
    assert_eq!(status, HealthStatus::Serving);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
