//! The browser terminal pins node host keys in the vault record ssh-edge uses (per target
//! name): the first key is pinned (accept-once) and said so, a changed key is refused before
//! any password is asked, naming both fingerprints and the admin command, `reject` refuses an
//! unpinned key, and a pin learnt through either edge is enforced by the other. Real sshd
//! (a second one, with its own host key, put behind the same node), real agents, gateway,
//! vault and ssh-edge.

use std::time::Duration;

use crate::common::*;
use crate::ssh_edge_hostkeys::{fingerprint, keyscan};
use phirepass_gateway_ws::browser_protocol::{ErrorKind, WebControl};
use phirepass_ssh_edge::UnknownHostKey;
use phirepass_testkit::browser::{Browser, login};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};

const T: Duration = Duration::from_secs(20);

/// A node `NODE` of alice behind the cluster's only gateway.
struct NodeFixture {
    cluster: Cluster,
    gateway: String,
    token: String,
    agent: Option<AgentHandle>,
    session: String,
}

impl NodeFixture {
    async fn start(unknown: UnknownHostKey, sshd: &TestSshd) -> Self {
        let cluster = Cluster::start_with(Backend::Real, 1, &[(ALICE, ALICE_PASSWORD)], move |c| {
            c.unknown_host_key = unknown
        })
        .await;
        let gateway = cluster.gateways[0].addr.clone();
        let (token, _) = cluster.node_token(ALICE, NODE).await;
        let agent = start_agent(&gateway, &token, sshd.addr);
        cluster.wait_node_online(NODE).await;
        let session = login(&gateway, ALICE, ALICE_PASSWORD).await.unwrap();
        Self {
            cluster,
            gateway,
            token,
            agent: Some(agent),
            session,
        }
    }

    /// Puts another sshd behind the node: the agent restarts pointing at it.
    async fn move_node_to(&mut self, sshd: &TestSshd) {
        if let Some(old) = self.agent.take() {
            old.stop().await;
        }
        wait_node_offline(&self.cluster, NODE).await;
        self.agent = Some(start_agent(&self.gateway, &self.token, sshd.addr));
        self.cluster.wait_node_online(NODE).await;
    }

    /// A browser connection of alice that asked for a terminal on the node.
    async fn open(&self, password: Option<&str>) -> (Browser, WebControl) {
        let mut browser = Browser::connect(&self.gateway, &self.session)
            .await
            .unwrap();
        assert!(matches!(
            browser.control(T).await.unwrap(),
            Some(WebControl::Ok { .. })
        ));
        let reply = browser
            .open_tunnel(NODE, TEST_USER, password)
            .await
            .unwrap();
        (browser, reply)
    }

    async fn pinned(&self) -> Option<String> {
        pinned(&self.cluster, NODE).await
    }
}

async fn pinned(cluster: &Cluster, host: &str) -> Option<String> {
    cluster
        .secrets()
        .list_options(phirepass_proto::secrets::ListOptionsRequest { host: host.into() })
        .await
        .unwrap()
        .into_inner()
        .options
        .into_iter()
        .find(|o| o.key == "hostkey.openssh")
        .map(|o| o.value)
}

async fn unpin(cluster: &Cluster, host: &str) {
    cluster
        .secrets()
        .unset_option(phirepass_proto::secrets::UnsetOptionRequest {
            host: host.into(),
            key: "hostkey.openssh".into(),
        })
        .await
        .unwrap();
}

/// Waits until the registry no longer lists node `name`, so a new agent is not refused as a
/// second one.
async fn wait_node_offline(cluster: &Cluster, name: &str) {
    let nodes = cluster
        .authz()
        .list_nodes(phirepass_proto::authz::ListNodesRequest { user_id: None })
        .await
        .unwrap()
        .into_inner()
        .nodes;
    let id = nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap()
        .node_id
        .clone();
    for _ in 0..200 {
        let found = cluster
            .registry()
            .get_node(phirepass_proto::registry::GetNodeRequest {
                node_id: id.clone(),
            })
            .await;
        if found.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node {name} did not go offline");
}

fn refusal(reply: WebControl) -> String {
    match reply {
        WebControl::Error {
            kind: ErrorKind::Generic,
            message,
        } => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn password_asked(reply: WebControl) -> String {
    match reply {
        WebControl::Error {
            kind: ErrorKind::RequiresPassword,
            message,
        } => message,
        other => panic!("expected the password dialog, got {other:?}"),
    }
}

/// The terminal opened: runs a command in it and exits.
async fn shell_works(browser: &mut Browser, reply: WebControl) {
    assert!(
        matches!(
            reply,
            WebControl::Ok {
                session_id: Some(_),
                ..
            }
        ),
        "open failed: {reply:?}"
    );
    browser.type_text("echo $((6*7))\r").await.unwrap();
    browser.read_until("42\r\n", T).await.unwrap();
    browser.type_text("exit\r").await.unwrap();
    let (_, status) = browser.wait_closed(T).await.unwrap();
    assert_eq!(status, Some(0));
}

/// The refusal of a changed key: both fingerprints, in order, and the admin's command.
fn assert_changed(message: &str, expected: &str, got: &str) {
    assert!(
        message.contains("does not match the pinned key"),
        "{message}"
    );
    let (e, g) = (fingerprint(expected), fingerprint(got));
    assert!(
        message.contains(&format!("expected ssh-ed25519 {e}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("got ssh-ed25519 {g}")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "phirepass admin options set {NODE} hostkey.openssh"
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminal_pins_the_first_node_key_and_refuses_a_changed_one() {
    let first = TestSshd::start().await.unwrap();
    let mut f = NodeFixture::start(UnknownHostKey::AcceptOnce, &first).await;
    let key_a = keyscan(first.addr);
    assert_eq!(f.pinned().await, None);

    // Accept-once: pinned at the check, before any password, and the dialog says which key.
    let (mut browser, reply) = f.open(None).await;
    let ask = password_asked(reply);
    assert!(ask.contains("pinned now"), "{ask}");
    assert!(ask.contains(&fingerprint(&key_a)), "{ask}");
    assert_eq!(f.pinned().await.as_deref(), Some(key_a.as_str()));
    let reply = browser
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
        .unwrap();
    shell_works(&mut browser, reply).await;

    // The pinned key matches: nothing to tell, the session works.
    let (mut browser, reply) = f.open(None).await;
    let ask = password_asked(reply);
    assert!(!ask.contains("pinned"), "{ask}");
    let reply = browser
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
        .unwrap();
    shell_works(&mut browser, reply).await;

    // Another sshd (another host key) answers for the node: refused whether or not a password
    // came along, and the pin stays.
    let second = TestSshd::start().await.unwrap();
    let key_b = keyscan(second.addr);
    assert_ne!(key_a, key_b);
    f.move_node_to(&second).await;
    for password in [None, Some(TEST_PASSWORD)] {
        let (_browser, reply) = f.open(password).await;
        let message = refusal(reply);
        assert_changed(&message, &key_a, &key_b);
        assert!(
            message.contains(&format!("options unset {NODE} hostkey.openssh")),
            "{message}"
        );
    }
    assert_eq!(f.pinned().await.as_deref(), Some(key_a.as_str()));

    // The administrator removes the pin: the next terminal pins the new key and says so.
    unpin(&f.cluster, NODE).await;
    let (mut browser, reply) = f.open(Some(TEST_PASSWORD)).await;
    assert!(matches!(reply, WebControl::Ok { .. }), "{reply:?}");
    let said = browser.read_until(&fingerprint(&key_b), T).await.unwrap();
    assert!(
        said.contains("phirepass: The host key of web-1 was not pinned"),
        "{said}"
    );
    assert_eq!(f.pinned().await.as_deref(), Some(key_b.as_str()));
    shell_works(&mut browser, reply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reject_refuses_an_unpinned_node_key_until_an_admin_pins_it() {
    let sshd = TestSshd::start().await.unwrap();
    let f = NodeFixture::start(UnknownHostKey::Reject, &sshd).await;
    let key = keyscan(sshd.addr);
    for password in [None, Some(TEST_PASSWORD)] {
        let (_browser, reply) = f.open(password).await;
        let message = refusal(reply);
        assert!(message.contains("is not pinned"), "{message}");
        assert!(message.contains(&fingerprint(&key)), "{message}");
        assert!(
            message.contains(&format!(
                "phirepass admin options set {NODE} hostkey.openssh"
            )),
            "{message}"
        );
    }
    assert_eq!(f.pinned().await, None);

    f.cluster.set_option(NODE, "hostkey.openssh", &key).await;
    let (mut browser, reply) = f.open(Some(TEST_PASSWORD)).await;
    shell_works(&mut browser, reply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pin_learnt_by_either_edge_is_enforced_by_the_other() {
    use phirepass_proto::authz::AddUserKeyRequest;
    let a = TestSshd::start().await.unwrap();
    let b = TestSshd::start().await.unwrap();
    let (key_a, key_b) = (keyscan(a.addr), keyscan(b.addr));
    let mut f = NodeFixture::start(UnknownHostKey::AcceptOnce, &a).await;
    // ssh-edge logs in to the node with the vault's credentials; alice logs in with her key.
    f.cluster.set_password_login(NODE).await;
    let keys = tempfile::tempdir().unwrap();
    let (alice_key, alice_pub) = new_user_key(keys.path(), "alice");
    f.cluster
        .authz()
        .add_user_key(AddUserKeyRequest {
            username: ALICE.into(),
            public_key: alice_pub,
        })
        .await
        .unwrap();
    let edge = f
        .cluster
        .start_ssh_edge(&keys.path().join("edge_host_key"), |_| {})
        .await;
    let alice = SshClient::with_key(edge.addr.port(), &alice_key);
    let relay = format!("{ALICE}:{NODE}");

    // Learnt through the browser terminal, enforced by ssh-edge.
    let (mut browser, reply) = f.open(Some(TEST_PASSWORD)).await;
    browser.read_until("pinned now", T).await.unwrap();
    shell_works(&mut browser, reply).await;
    assert_eq!(f.pinned().await.as_deref(), Some(key_a.as_str()));
    f.move_node_to(&b).await;
    let refused = alice.ssh(&relay, &["echo", "never"]).await;
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert_eq!(text(&refused.stdout), "");
    assert!(stderr.contains("does not match the pinned key"), "{stderr}");
    assert!(stderr.contains(&fingerprint(&key_a)), "{stderr}");
    assert!(stderr.contains(&fingerprint(&key_b)), "{stderr}");
    assert_eq!(f.pinned().await.as_deref(), Some(key_a.as_str()));

    // Learnt through ssh-edge (after the administrator dropped the old pin), enforced by the
    // browser terminal.
    unpin(&f.cluster, NODE).await;
    let learnt = alice.ssh(&relay, &["echo", "ok"]).await;
    assert_eq!(text(&learnt.stdout), "ok\n", "{}", text(&learnt.stderr));
    assert!(text(&learnt.stderr).contains(&fingerprint(&key_b)));
    assert_eq!(f.pinned().await.as_deref(), Some(key_b.as_str()));
    f.move_node_to(&a).await;
    let (_browser, reply) = f.open(None).await;
    assert_changed(&refusal(reply), &key_b, &key_a);
    assert_eq!(f.pinned().await.as_deref(), Some(key_b.as_str()));
}
