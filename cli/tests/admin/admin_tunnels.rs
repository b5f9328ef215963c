//! `phirepass admin tunnels` as an operator runs it: the real binary against a test deployment
//! served in-process (embedded: SQLite, in-memory presence and bus).

use std::process::{Output, Stdio};
use std::time::Duration;

use crate::common::{Backend, Cluster};
use futures_util::StreamExt as _;
use phirepass_proto::authz::{ClaimTunnelNameRequest, CreateUserRequest};
use phirepass_proto::registry::TunnelPresence;
use serde_json::Value;
use tokio::process::Command;

/// `phirepass admin ARGS` with the operator's API token, verifying the services against `ca`.
async fn admin(
    authz: &str,
    registry: &str,
    (token, ca): &(String, std::path::PathBuf),
    args: &[&str],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .arg("admin")
        .args(args)
        .env("AUTHZ_URL", authz)
        .env("REGISTRY_URL", registry)
        .env("PHIREPASS_DATA_DIR", "/nonexistent")
        .env("PHIREPASS_CA", ca)
        .env("PHIREPASS_TOKEN", token)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn tunnels_list_kick_names_release() {
    let cluster = Cluster::start(Backend::Embedded, 0).await;
    let (authz_url, registry_url) = (cluster.authz_url.clone(), cluster.registry_url.clone());
    let bus = cluster.bus();
    let mut authz = cluster.authz();
    let mut registry = cluster.registry();
    let mut alice = None;
    for _ in 0..100 {
        let req = CreateUserRequest {
            username: "alice".into(),
            password: "correct horse battery".into(),
        };
        if let Ok(u) = authz.create_user(req).await {
            alice = Some(u.into_inner());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alice = alice.expect("authz up");
    let ca_dir = tempfile::tempdir().unwrap();
    let token = (
        cluster.operator_token().await,
        cluster.write_trust(ca_dir.path()),
    );
    let claimed = authz
        .claim_tunnel_name(ClaimTunnelNameRequest {
            user_id: alice.id.clone(),
            name: "myapp".into(),
            reserve: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(claimed.allowed);
    registry
        .tunnel_opened(TunnelPresence {
            name: "myapp".into(),
            port: 80,
            node_id: "sshr-0123456789abcdef".into(),
            edge_id: "edge-1".into(),
            session_id: "sess-1".into(),
            user_id: alice.id.clone(),
            username: "alice".into(),
            bytes_in: 12,
            ..Default::default()
        })
        .await
        .unwrap();

    let list = json(
        &admin(
            &authz_url,
            &registry_url,
            &token,
            &["--json", "tunnels", "list"],
        )
        .await,
    );
    assert_eq!(list[0]["name"], "myapp");
    assert_eq!(list[0]["kind"], "http");
    assert_eq!(list[0]["username"], "alice");
    let table = admin(&authz_url, &registry_url, &token, &["tunnels", "list"]).await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains("myapp") && text.contains("edge-1"), "{text}");

    let names = json(
        &admin(
            &authz_url,
            &registry_url,
            &token,
            &["--json", "tunnels", "names", "--user", "alice"],
        )
        .await,
    );
    assert_eq!(names[0]["name"], "myapp");
    let none = json(
        &admin(
            &authz_url,
            &registry_url,
            &token,
            &["--json", "tunnels", "names", "--user", "bob"],
        )
        .await,
    );
    assert_eq!(none, Value::Array(vec![]));

    let mut kicks = bus
        .subscribe(&format!("{}.control.kick", cluster.prefix))
        .await
        .unwrap();
    bus.flush().await.unwrap();
    let kicked = json(
        &admin(
            &authz_url,
            &registry_url,
            &token,
            &["--json", "tunnels", "kick", "myapp"],
        )
        .await,
    );
    assert_eq!(kicked["session_ids"][0], "sess-1");
    let msg = tokio::time::timeout(Duration::from_secs(5), kicks.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"sess-1");
    let missing = admin(
        &authz_url,
        &registry_url,
        &token,
        &["tunnels", "kick", "nope"],
    )
    .await;
    assert_eq!(missing.status.code(), Some(3), "not found");

    json(
        &admin(
            &authz_url,
            &registry_url,
            &token,
            &["--json", "tunnels", "release", "myapp"],
        )
        .await,
    );
    let again = admin(
        &authz_url,
        &registry_url,
        &token,
        &["tunnels", "release", "myapp"],
    )
    .await;
    assert_eq!(again.status.code(), Some(3), "not found");
}
