//! `phirepass admin users --admin / set-admin` and `phirepass admin invitations`, driven as an
//! operator would (the real binary), on the real stack (PostgreSQL + Redis + NATS) and the
//! embedded one; each change shows up as an audit event naming who made it.

use std::process::{Output, Stdio};

use crate::common::{Backend, Cluster};
use phirepass_pki::ServiceKind;
use phirepass_proto::authz as az;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

async fn run(c: &Cluster, args: &[&str], stdin: &str, token: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    c.write_trust(dir.path());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phirepass"));
    cmd.arg("admin")
        .args(args)
        .env("AUTHZ_URL", &c.authz_url)
        .env("SECRETS_URL", &c.secrets_url)
        .env("PHIREPASS_DATA_DIR", dir.path())
        .env_remove("PHIREPASS_CA")
        .env("PHIREPASS_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn phirepass");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

async fn json(c: &Cluster, args: &[&str], stdin: &str, token: &str) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(c, &all, stdin, token).await;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn admin_role_and_invitations(backend: Backend) {
    let c = Cluster::start(backend, 0).await;
    let service = c.operator_token().await;

    // users add --admin, set-admin, list shows the role.
    let root = json(
        &c,
        &["users", "add", "root", "--admin", "--password-stdin"],
        "correct horse battery",
        &service,
    )
    .await;
    assert_eq!(root["admin"], true);
    json(
        &c,
        &["users", "add", "bob", "--password-stdin"],
        "correct horse battery",
        &service,
    )
    .await;
    let bob = json(&c, &["users", "set-admin", "bob"], "", &service).await;
    assert_eq!(bob["admin"], true);
    let bob = json(&c, &["users", "set-admin", "bob", "--off"], "", &service).await;
    assert_eq!(bob["admin"], false);
    let users = json(&c, &["users", "list"], "", &service).await;
    let admins: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["admin"] == true)
        .map(|u| u["username"].as_str().unwrap())
        .filter(|name| *name != crate::common::cluster::OPERATOR)
        .collect();
    assert_eq!(admins, ["root"]);
    let table = run(&c, &["users", "list"], "", &service).await;
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.lines().next().unwrap().contains("ROLE"), "{table}");

    // An admin API token creates invitations in root's name.
    let api = json(
        &c,
        &[
            "tokens", "api", "create", "--user", "root", "--name", "cli", "--scope", "admin",
        ],
        "",
        &service,
    )
    .await;
    let api = api["token"].as_str().unwrap().to_owned();
    let created = json(
        &c,
        &[
            "invitations",
            "create",
            "--username",
            "carol",
            "--admin",
            "--ttl",
            "2d",
        ],
        "",
        &api,
    )
    .await;
    assert_eq!(created["state"], "pending");
    assert_eq!(created["created_by"], "root");
    assert_eq!(created["username"], "carol");
    assert_eq!(created["admin"], true);
    let span = created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap();
    assert!((span - 2 * 86_400_000).abs() < 5_000, "{span}");
    let code = created["code"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    // The human form shows the code once and where to use it.
    let human = run(&c, &["invitations", "create"], "", &api).await;
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains("/join/"), "{human}");

    // The invitee's code works with authz (the web edge's call)...
    let mut authz = c.authz();
    let seen = authz
        .inspect_invitation(az::InspectInvitationRequest {
            code: code.clone(),
            client_ip: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.id, id);
    // ...until revoked.
    json(&c, &["invitations", "revoke", &id], "", &api).await;
    let err = authz
        .inspect_invitation(az::InspectInvitationRequest {
            code,
            client_ip: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let list = json(&c, &["invitations", "list"], "", &service).await;
    let states: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&(id.as_str(), "revoked")), "{states:?}");
    assert_eq!(states.len(), 2);
    // Unknown ids exit 3; a bad TTL is a usage error.
    let out = run(&c, &["invitations", "revoke", "nope"], "", &service).await;
    assert_eq!(out.status.code(), Some(3));
    let out = run(&c, &["invitations", "create", "--ttl", "3w"], "", &service).await;
    assert_eq!(out.status.code(), Some(2));
    // An admin's read token lists but cannot create (exit 4); bob is no
    // admin any more, so his would not even list (scopes capped by role).
    let read = json(
        &c,
        &[
            "tokens", "api", "create", "--user", "root", "--name", "ro", "--scope", "read",
        ],
        "",
        &service,
    )
    .await;
    let read = read["token"].as_str().unwrap().to_owned();
    json(&c, &["invitations", "list"], "", &read).await;
    let out = run(&c, &["invitations", "create"], "", &read).await;
    assert_eq!(out.status.code(), Some(4));

    // Every change is in the audit log, with who made it and no secret.
    let events = c.audit_events().await;
    // Setting up the operator account itself (the harness, as a service) is not part of it.
    let admin_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "admin")
        .filter(|e| e["details"]["username"] != crate::common::cluster::OPERATOR)
        .collect();
    let find = |action: &str| {
        admin_events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} event in {admin_events:?}"))
    };
    assert_eq!(find("user.add")["actor"], crate::common::cluster::OPERATOR);
    assert_eq!(find("user.set_admin")["details"]["username"], "root");
    assert_eq!(find("api_token.create")["details"]["username"], "root");
    assert_eq!(find("invitation.create")["actor"], "root");
    assert_eq!(find("invitation.revoke")["actor"], "root");
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains("correct horse battery"));
    assert!(!all.contains(&api));
}

#[tokio::test]
async fn admin_role_and_invitations_real() {
    admin_role_and_invitations(Backend::Real).await;
}

#[tokio::test]
async fn admin_role_and_invitations_embedded() {
    admin_role_and_invitations(Backend::Embedded).await;
}

/// The services a gRPC endpoint lists by reflection (as `grpcurl list` would), asked over TLS
/// without a client certificate, with `authorization: Bearer <token>`.
async fn reflected_services(
    c: &Cluster,
    url: &str,
    server: ServiceKind,
    token: &str,
) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let trust = phirepass_runtime::grpc::trust_certs(c.pki.trust_pem()).unwrap();
    let channel = phirepass_runtime::grpc::admin_channel(url, &trust, server, token).unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = tonic::Request::new(tokio_stream::iter(vec![ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    }]));
    let mut responses = client
        .server_reflection_info(request)
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            names
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_the_services_with_an_api_token() {
    let c = Cluster::start(Backend::Real, 0).await;
    let service = c.operator_token().await;
    json(
        &c,
        &["users", "add", "ops", "--admin", "--password-stdin"],
        "correct horse battery",
        &service,
    )
    .await;
    let api = json(
        &c,
        &[
            "tokens", "api", "create", "--user", "ops", "--name", "ro", "--scope", "read",
        ],
        "",
        &service,
    )
    .await;
    let api = api["token"].as_str().unwrap().to_owned();
    let authz = reflected_services(&c, &c.authz_url, ServiceKind::Authz, &api).await;
    assert!(
        authz.contains(&"phirepass.authz.v1.Authz".to_owned()),
        "{authz:?}"
    );
    let secrets = reflected_services(&c, &c.secrets_url, ServiceKind::Secrets, &api).await;
    assert!(
        secrets.contains(&"phirepass.secrets.v1.Secrets".to_owned()),
        "{secrets:?}"
    );
    // The same token works on the service it reflected (read scope: lists).
    json(&c, &["users", "list"], "", &api).await;
}

/// `hosts refresh-hostkey` wipes the old pin before fetching: declining the new key leaves the
/// host unpinned, never trusted with a key it no longer presents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_hostkey_removes_the_old_pin_first() {
    let c = Cluster::start(Backend::Embedded, 0).await;
    let service = c.operator_token().await;
    let sshd = phirepass_testkit::sshd::TestSshd::start().await.unwrap();
    let addr = sshd.addr.to_string();
    json(
        &c,
        &["hosts", "add", &addr, "--name", "real", "--yes"],
        "",
        &service,
    )
    .await;
    // Pretend the host was re-keyed: the pin no longer matches what it presents.
    let stale =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldOldOldOldOldOldOldOldOldOldOldOldOldOldO old";
    json(
        &c,
        &["options", "set", "real", "hostkey.openssh", stale],
        "",
        &service,
    )
    .await;

    let out = run(&c, &["hosts", "refresh-hostkey", "real"], "n\n", &service).await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("old pinned host key of real was removed"),
        "{err}"
    );
    assert!(err.contains("DIFFERS"), "{err}");
    let options = json(&c, &["options", "list", "real"], "", &service).await;
    assert!(
        !options.to_string().contains("hostkey.openssh"),
        "{options}"
    );

    // Answering yes pins the key the host presents now.
    let out = run(&c, &["hosts", "refresh-hostkey", "real"], "y\n", &service).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let options = json(&c, &["options", "list", "real"], "", &service).await;
    let pinned = options
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "hostkey.openssh")
        .expect("pinned again");
    assert_ne!(pinned["value"], stale);
    assert!(
        pinned["value"]
            .as_str()
            .unwrap()
            .starts_with("ssh-ed25519 AAAA")
    );
}
