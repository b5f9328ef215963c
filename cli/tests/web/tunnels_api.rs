//! `GET /api/tunnels` with real `ssh -R` clients on a real ssh-edge: each caller sees only her
//! own tunnels, online and offline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::tunnels::{BOB, Publisher, TUNNEL_URL, http_server};
use crate::common::{ALICE, ALICE_PASSWORD, Backend, Cluster, SshClient, new_user_key};
use crate::web_ui_api::{T, get, json_of};
use phirepass_proto::authz::AddUserKeyRequest;
use phirepass_testkit::browser::login;
use serde_json::{Value, json};

/// The caller's tunnels from `GET /api/tunnels`.
async fn tunnels(addr: &str, session: &str) -> Vec<Value> {
    let r = get(addr, "/api/tunnels", Some(session)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    json_of(&r)["tunnels"].as_array().unwrap().clone()
}

/// Polls until `name` on port 80 (or, offline, with no port) shows `online`; returns the row.
async fn wait_tunnel(addr: &str, session: &str, name: &str, online: bool) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let list = tunnels(addr, session).await;
        if let Some(row) = list
            .iter()
            .find(|t| t["name"] == name && t["online"] == online)
        {
            return row.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name} never showed online={online}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Alice and bob each publish an HTTP tunnel with `ssh -R`: each sees only their own, online
/// with the public URL the gateway's proxy answers; when alice's client exits her name stays
/// listed, offline. A gateway whose registry is unreachable says 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tunnels_api_lists_the_callers_own_tunnels() {
    const BOB_PASSWORD: &str = "bob-Password-1";
    let started = AtomicUsize::new(0);
    let cluster = Cluster::start_with(
        Backend::Real,
        2,
        &[(ALICE, ALICE_PASSWORD), (BOB, BOB_PASSWORD)],
        |c| {
            c.proxy.tunnel_domain = Some("tunnel.test".into());
            c.proxy.public_port = Some(8080);
            c.proxy.ssh_edge_addr = Some("edge.test:2222".into());
            // The second gateway's registry is a closed port.
            if started.fetch_add(1, Ordering::SeqCst) == 1 {
                c.registry_url = "http://127.0.0.1:1".into();
            }
        },
    )
    .await;
    let addr = &cluster.gateways[0].addr;
    let r = get(addr, "/api/tunnels", None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(json_of(&r)["error"], "not logged in");

    let keys = tempfile::tempdir().unwrap();
    for user in [ALICE, BOB] {
        let (_, public_key) = new_user_key(keys.path(), user);
        cluster
            .authz()
            .add_user_key(AddUserKeyRequest {
                username: user.into(),
                public_key,
            })
            .await
            .unwrap();
    }
    let edge = cluster
        .start_ssh_edge(&keys.path().join("edge_host_key"), |c| {
            c.tunnel_url = TUNNEL_URL.into();
            c.public_host = Some("edge.test".into());
        })
        .await;
    let alice = login(addr, ALICE, ALICE_PASSWORD).await.unwrap();
    let bob = login(addr, BOB, BOB_PASSWORD).await.unwrap();
    let empty = json_of(&get(addr, "/api/tunnels", Some(&alice)).await);
    assert_eq!(empty["tunnels"], json!([]));
    assert_eq!(empty["tunnel_domain"], "tunnel.test");
    // The hint's command is the one to type, not a `<ssh-edge host>` placeholder.
    assert_eq!(
        empty["ssh_command"],
        "ssh -p 2222 -R 80:localhost:3000 alice@edge.test"
    );

    let port = http_server("alice's site").await;
    let client = |user: &str| SshClient::with_key(edge.addr.port(), &keys.path().join(user));
    let spec = format!("alicesite:80:127.0.0.1:{port}");
    let mut alice_ssh = Publisher::start(client(ALICE), ALICE, &[&spec], &[], false);
    let spec = format!("bobsite:80:127.0.0.1:{port}");
    let _bob_ssh = Publisher::start(client(BOB), BOB, &[&spec], &[], false);

    let row = wait_tunnel(addr, &alice, "alicesite", true).await;
    assert_eq!(row["url"], "http://alicesite.tunnel.test:8080/", "{row}");
    assert_eq!(
        (row["kind"].as_str(), row["port"].as_u64()),
        (Some("http"), Some(80))
    );
    assert_eq!(row["reserved"], true, "{row}");
    assert!(row["since"].as_i64().unwrap() > 0, "{row}");
    assert!(row["created_at"].as_i64().unwrap() > 0, "{row}");
    wait_tunnel(addr, &bob, "bobsite", true).await;
    // Neither sees the other's tunnel or name.
    let mine = tunnels(addr, &alice).await;
    assert!(mine.iter().all(|t| t["name"] == "alicesite"), "{mine:?}");
    let theirs = tunnels(addr, &bob).await;
    assert!(theirs.iter().all(|t| t["name"] == "bobsite"), "{theirs:?}");

    // The client exits: the name stays hers, offline, without a URL.
    alice_ssh.child.kill().await.unwrap();
    let row = wait_tunnel(addr, &alice, "alicesite", false).await;
    assert_eq!(row["reserved"], true, "{row}");
    assert!(row["url"].is_null() && row["since"].is_null(), "{row}");
    assert_eq!(tunnels(addr, &alice).await.len(), 1);
    assert!(
        tunnels(addr, &bob)
            .await
            .iter()
            .any(|t| t["name"] == "bobsite" && t["online"] == true)
    );

    // No registry behind the second gateway: a clear 503, not a list missing tunnels.
    let other = &cluster.gateways[1].addr;
    let alice_there = login(other, ALICE, ALICE_PASSWORD).await.unwrap();
    let r = get(other, "/api/tunnels", Some(&alice_there)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        json_of(&r)["error"]
            .as_str()
            .unwrap()
            .contains("unavailable")
    );
    assert_eq!(get(other, "/api/tunnels", None).await.status, 401);
}
