//! Access ends with its revocation for `ssh -R` tunnels too (issue #9 finding 10): an ssh-edge
//! connection that only publishes tunnels was never re-checked, so a disabled user's tunnels
//! stayed published and her connection lived on. Driven with the real OpenSSH client, the
//! tunnels reached over HTTP through a real gateway.

use std::time::{Duration, Instant};

use phirepass_proto::authz::{AddUserKeyRequest, SetUserDisabledRequest};
use phirepass_proto::registry::GetTunnelRequest;

use crate::common::http_proxy::ProxyCluster;
use crate::common::tunnels::{BOB, Publisher, http_server};
use crate::common::{ALICE, ALICE_PASSWORD, SshClient, SshEdge, new_user_key};

/// Connections are re-checked every 5 s by default (SSH_EDGE_ACCESS_RECHECK_SECS); on NATS
/// authz's announcement starts a round at once.
const REVOKE_BOUND: Duration = Duration::from_secs(12);
const T: Duration = Duration::from_secs(20);

struct Deployment {
    cluster: ProxyCluster,
    edge: SshEdge,
    keys: tempfile::TempDir,
}

impl Deployment {
    async fn start() -> Self {
        let users = [(ALICE, ALICE_PASSWORD), (BOB, "bob-Password-1")];
        let cluster = ProxyCluster::start(1, &users, Duration::from_secs(900)).await;
        let keys = tempfile::tempdir().expect("tempdir");
        for user in [ALICE, BOB] {
            let (_, public_key) = new_user_key(keys.path(), user);
            let add = AddUserKeyRequest {
                username: user.into(),
                public_key,
            };
            cluster.authz().add_user_key(add).await.expect("add key");
        }
        let host_key = keys.path().join("edge_host_key");
        let edge = cluster
            .start_ssh_edge(&host_key, |c| {
                c.tunnel_url = "http://{name}.tunnel.localhost".into();
            })
            .await;
        Self {
            cluster,
            edge,
            keys,
        }
    }

    /// `user` publishes `name` (port 80) for a local HTTP server answering `body`.
    async fn publish(&self, user: &str, name: &str, body: &str) -> Publisher {
        let port = http_server(body).await;
        let mut client = SshClient::with_key(self.edge.addr.port(), &self.keys.path().join(user));
        // INFO: the client prints the edge's disconnect message.
        client.log_level = "INFO";
        let spec = format!("{name}:80:127.0.0.1:{port}");
        let publisher = Publisher::start(client, user, &[&spec], &[], false);
        let deadline = Instant::now() + T;
        while !self.registered(name).await {
            assert!(Instant::now() < deadline, "{name} was not published");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        publisher
    }

    async fn registered(&self, name: &str) -> bool {
        let ask = GetTunnelRequest {
            name: name.into(),
            port: 80,
        };
        self.cluster.registry().get_tunnel(ask).await.is_ok()
    }

    /// `GET /` on `<name>.tunnel.localhost` through the gateway: (status, body).
    async fn get(&self, name: &str) -> (u16, String) {
        let gw: std::net::SocketAddr = self.cluster.gateways[0].addr.parse().expect("addr");
        let host = format!("{name}.tunnel.localhost");
        let client = reqwest::Client::builder()
            .resolve(&host, gw)
            .timeout(T)
            .build()
            .expect("client");
        let reply = client
            .get(format!("http://{host}:{}/", gw.port()))
            .send()
            .await
            .expect("request through the gateway");
        let status = reply.status().as_u16();
        (status, reply.text().await.unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disabling_a_user_ends_her_ssh_connection_and_unpublishes_her_tunnels() {
    let d = Deployment::start().await;
    let mut alice = d.publish(ALICE, "alicesite", "alice's site").await;
    let mut bob = d.publish(BOB, "bobsite", "bob's site").await;
    assert_eq!(d.get("alicesite").await, (200, "alice's site".into()));
    assert_eq!(d.get("bobsite").await, (200, "bob's site".into()));

    let disable = SetUserDisabledRequest {
        username: ALICE.into(),
        disabled: true,
    };
    d.cluster
        .authz()
        .set_user_disabled(disable)
        .await
        .expect("disable alice");
    let started = Instant::now();

    let (status, stderr) = alice
        .wait_exit(REVOKE_BOUND)
        .await
        .expect("alice's ssh -R client ends within the bound");
    assert!(started.elapsed() < REVOKE_BOUND);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("access revoked: your account was disabled or removed"),
        "{stderr}"
    );
    // Her tunnel is unpublished with her connection (the edge's cleanup follows the disconnect
    // the client already read); then the gateway finds it gone (404), never her site. While
    // the gateway still remembers the node it answers 502, or 504 after its response timeout
    // when its first open after the session's end goes unanswered.
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.registered("alicesite").await {
        assert!(Instant::now() < deadline, "alicesite still registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = d.get("alicesite").await;
        assert!(matches!(status, 404 | 502 | 504), "{status} {body}");
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "alicesite still known: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Bob, still active, keeps his connection and his tunnel.
    assert!(bob.running(), "bob's client ended: {}", bob.stderr());
    assert_eq!(d.get("bobsite").await, (200, "bob's site".into()));
}
