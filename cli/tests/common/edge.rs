//! The SSH edge fixture: alice, a direct host and an agent node, both real sshd targets with
//! vault credentials, and one ssh-edge in front of them.

use super::{AgentHandle, Backend, Cluster, SshClient, SshEdge, new_user_key, start_agent};

pub const ALICE: &str = "alice";
pub const ALICE_PASSWORD: &str = "alice-Password-1";
pub const HOST: &str = "web-1";
pub const AGENT_NODE: &str = "node-1";

/// A deployment with alice (password + key), a direct host `web-1` (granted), an agent node
/// `node-1` (alice owns it) behind a gateway, both real sshd targets with vault credentials,
/// and one ssh-edge that has never talked to that gateway.
pub struct EdgeFixture {
    pub cluster: Cluster,
    pub edge: SshEdge,
    pub host_sshd: phirepass_testkit::sshd::TestSshd,
    pub node_sshd: phirepass_testkit::sshd::TestSshd,
    pub agent: AgentHandle,
    pub keys: tempfile::TempDir,
    pub alice_key: std::path::PathBuf,
}

impl EdgeFixture {
    pub async fn start(tweak: impl FnOnce(&mut phirepass_ssh_edge::SshEdgeConfig)) -> Self {
        use phirepass_proto::authz::{AddUserKeyRequest, GrantRequest, PrincipalKind};
        let cluster =
            Cluster::start_with(Backend::Real, 1, &[(ALICE, ALICE_PASSWORD)], |_| {}).await;
        let keys = tempfile::tempdir().expect("tempdir");
        let (alice_key, alice_pub) = new_user_key(keys.path(), "alice");
        cluster
            .authz()
            .add_user_key(AddUserKeyRequest {
                username: ALICE.into(),
                public_key: alice_pub,
            })
            .await
            .expect("add key");
        let host_sshd = phirepass_testkit::sshd::TestSshd::start()
            .await
            .expect("sshd");
        let node_sshd = phirepass_testkit::sshd::TestSshd::start()
            .await
            .expect("sshd");
        cluster.add_host(HOST, host_sshd.addr).await;
        cluster
            .authz()
            .grant(GrantRequest {
                principal_kind: PrincipalKind::User as i32,
                principal: ALICE.into(),
                target: HOST.into(),
                ..Default::default()
            })
            .await
            .expect("grant");
        cluster.set_password_login(HOST).await;
        let (token, _) = cluster.node_token(ALICE, AGENT_NODE).await;
        cluster.set_password_login(AGENT_NODE).await;
        let agent = start_agent(&cluster.gateways[0].addr, &token, node_sshd.addr);
        let host_key_file = keys.path().join("edge_host_key");
        let edge = cluster.start_ssh_edge(&host_key_file, tweak).await;
        let fixture = Self {
            cluster,
            edge,
            host_sshd,
            node_sshd,
            agent,
            keys,
            alice_key,
        };
        fixture.wait_node_online(AGENT_NODE).await;
        fixture
    }

    pub fn alice(&self) -> SshClient {
        SshClient::with_key(self.edge.addr.port(), &self.alice_key)
    }

    pub async fn wait_node_online(&self, node: &str) {
        self.cluster.wait_node_online(node).await;
    }
}
