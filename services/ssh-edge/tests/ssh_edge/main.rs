//! ssh-edge's own integration tests, one binary: an edge on loopback whose gRPC services are
//! unreachable, for what needs no login (health, the banner, shutdown). Logins and relays
//! cross services and are tested in cli/tests.
#![allow(clippy::unwrap_used)]

mod health;
mod shutdown;

use std::net::SocketAddr;
use std::sync::Arc;

use phirepass_ssh_edge::{
    HostKeySource, SshEdgeConfig, SshEdgeDeps, SshEdgeError, SshEdgeListeners, serve,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running edge: its addresses, its shutdown trigger and its `serve` task.
struct Edge {
    health_addr: SocketAddr,
    ssh_addr: SocketAddr,
    /// Holds the generated host key.
    dir: tempfile::TempDir,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), SshEdgeError>>,
}

async fn start() -> Edge {
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (health_addr, ssh_addr) = (health.local_addr().unwrap(), ssh.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let unused = "http://127.0.0.1:9".to_string();
    let config = SshEdgeConfig::local(
        unused.clone(),
        unused.clone(),
        unused,
        phirepass_pki::LocalPki::generate()
            .unwrap()
            .identity(phirepass_pki::ServiceKind::SshEdge)
            .unwrap(),
        HostKeySource::File(dir.path().join("host_key")),
    );
    let deps = SshEdgeDeps {
        bus: phirepass_bus::connect(None).await.unwrap(),
        events: Arc::new(phirepass_bus::MemoryEventLog::new()),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        config,
        SshEdgeListeners { health, ssh },
        deps,
        async {
            let _ = stopped.await;
        },
    ));
    Edge {
        health_addr,
        ssh_addr,
        dir,
        stop,
        server,
    }
}
