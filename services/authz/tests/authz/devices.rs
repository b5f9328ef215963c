//! Device activation: start, approve, poll for agents and CLIs; expiry,
//! single use, rate limits, concurrent approvals; on PostgreSQL + Redis +
//! NATS and embedded.

use std::time::Duration;

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_authz::LoginLimits;
use phirepass_proto::authz as pb;
use sqlx::Row;
use tonic::Code;

on_both_stacks!(
    agent_receives_its_node_token_once,
    cli_receives_an_api_token_scoped_by_role,
    codes_expire,
    two_approvals_one_wins,
    starts_are_rate_limited_per_ip,
    wrong_user_codes_are_counted_per_user,
    taken_node_name_can_be_retried,
);

const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

async fn start(
    h: &Harness,
    kind: &str,
    ip: &str,
) -> Result<pb::DeviceAuthorization, tonic::Status> {
    h.client()
        .start_device_authorization(pb::StartDeviceAuthorizationRequest {
            kind: kind.into(),
            hostname: "build-7".into(),
            client_ip: Some(ip.into()),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// What the approval page shows for a code.
pub(crate) async fn inspect(
    h: &Harness,
    user_id: &str,
    user_code: &str,
    node: &str,
) -> Result<pb::DeviceDetails, tonic::Status> {
    h.client()
        .inspect_device(pb::InspectDeviceRequest {
            user_id: user_id.into(),
            user_code: user_code.into(),
            node_name: node.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Reviews the code, then approves the request reviewed, with nothing ticked.
async fn approve(
    h: &Harness,
    user_id: &str,
    user_code: &str,
    node: &str,
) -> Result<pb::ApproveDeviceResponse, tonic::Status> {
    approve_with(h, user_id, user_code, node, false, false).await
}

pub(crate) async fn approve_with(
    h: &Harness,
    user_id: &str,
    user_code: &str,
    node: &str,
    replace_node: bool,
    admin_scope: bool,
) -> Result<pb::ApproveDeviceResponse, tonic::Status> {
    let reviewed = inspect(h, user_id, user_code, node).await?;
    h.client()
        .approve_device(pb::ApproveDeviceRequest {
            user_id: user_id.into(),
            user_code: user_code.into(),
            node_name: node.into(),
            device_id: reviewed.device_id,
            replace_node,
            admin_scope,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn poll(
    h: &Harness,
    device_code: &str,
) -> Result<pb::PollDeviceAuthorizationResponse, tonic::Status> {
    h.client()
        .poll_device_authorization(pb::PollDeviceAuthorizationRequest {
            device_code: device_code.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn agent_receives_its_node_token_once(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let alice = h.create_user("alice").await;
    let d = start(&h, "agent", "192.0.2.10").await.unwrap();
    // XXXX-XXXX from the consonant alphabet; a 10 minute life.
    assert_eq!(d.user_code.len(), 9);
    assert_eq!(&d.user_code[4..5], "-");
    assert!(
        d.user_code
            .bytes()
            .all(|b| b == b'-' || ALPHABET.contains(&b))
    );
    let life = d.expires_at - phirepass_store::now_millis();
    assert!((590_000..=600_000).contains(&life), "{life}");
    assert!(d.interval_secs > 0);

    // Neither code is stored in clear.
    let rows = sqlx::query("SELECT device_code_hash, user_code_hash FROM device_authorizations")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    for col in ["device_code_hash", "user_code_hash"] {
        let v: String = rows[0].get(col);
        assert!(!v.contains(&d.device_code) && !v.contains(&d.user_code.replace('-', "")));
    }

    assert_eq!(poll(&h, &d.device_code).await.unwrap().state, "pending");
    // Node name required for an agent, and must be valid.
    let err = approve(&h, &alice.id, &d.user_code, "").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let typed = d.user_code.to_lowercase().replace('-', "");
    let approved = approve(&h, &alice.id, &typed, "laptop").await.unwrap();
    assert_eq!(approved.kind, "agent");
    let node = approved.node.unwrap();
    assert_eq!(node.name, "laptop");
    assert_eq!(node.user_id, alice.id);
    // Approving again: the code is used.
    let err = approve(&h, &alice.id, &d.user_code, "laptop")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let got = poll(&h, &d.device_code).await.unwrap();
    assert_eq!(got.state, "approved");
    assert_eq!(got.username, "alice");
    let token = got.token.unwrap();
    assert!(token.starts_with("pp_node_"));
    let verified = h.verify_node(&token).await.unwrap();
    assert_eq!(verified.node_id, node.node_id);
    assert_eq!(verified.username, "alice");
    assert_eq!(got.node.unwrap().node_id, node.node_id);
    // The token came exactly once.
    let err = poll(&h, &d.device_code).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // The node is alice's to reach.
    let d = h
        .client()
        .authorize(pb::AuthorizeRequest {
            username: "alice".into(),
            target: "laptop".into(),
            action: "ssh".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(d.allowed);
    assert_eq!(d.reason, "owner");
    // Unknown and malformed device codes.
    for bad in ["", "nope", &"a".repeat(32)] {
        assert_eq!(poll(&h, bad).await.unwrap_err().code(), Code::NotFound);
    }
    h.stop().await;
}

/// Admin scope only when an admin ticks it (issue #9 finding 5); a user's is "read".
async fn cli_receives_an_api_token_scoped_by_role(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let admin = h.create_user("root").await;
    let user = h.create_user("bob").await;
    h.client()
        .set_user_admin(pb::SetUserAdminRequest {
            username: "root".into(),
            admin: true,
        })
        .await
        .unwrap();
    for (who, ticked, scopes) in [
        (&admin, false, vec!["read"]),
        (&admin, true, vec!["admin", "read"]),
        (&user, false, vec!["read"]),
    ] {
        let d = start(&h, "cli", "192.0.2.11").await.unwrap();
        let approved = approve_with(&h, &who.id, &d.user_code, "", false, ticked)
            .await
            .unwrap();
        assert_eq!(approved.kind, "cli");
        assert_eq!(approved.scopes, scopes);
        assert!(approved.node.is_none());
        let got = poll(&h, &d.device_code).await.unwrap();
        let token = got.token.unwrap();
        assert!(token.starts_with("pp_api_"));
        let v = h
            .client()
            .verify_api_token(pb::VerifyApiTokenRequest {
                token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v.user.unwrap().id, who.id);
        assert_eq!(v.scopes, scopes);
        assert!(poll(&h, &d.device_code).await.is_err());
    }
    // A non-admin cannot tick admin scope; the code stays usable.
    let d = start(&h, "cli", "192.0.2.11").await.unwrap();
    let err = approve_with(&h, &user.id, &d.user_code, "", false, true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(poll(&h, &d.device_code).await.unwrap().state, "pending");
    // Bad kinds and hostnames are refused.
    let err = start(&h, "toaster", "192.0.2.11").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Device calls are for services only: a token without a certificate is nobody.
    let token = h.api_token("root", &["admin"]).await;
    let err = h
        .as_token(&token)
        .start_device_authorization(pb::StartDeviceAuthorizationRequest {
            kind: "cli".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    h.stop().await;
}

async fn codes_expire(stack: Stack) {
    let options = Options {
        device_code_ttl: Duration::from_secs(1),
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    let alice = h.create_user("alice").await;
    let d = start(&h, "agent", "192.0.2.12").await.unwrap();
    assert_eq!(poll(&h, &d.device_code).await.unwrap().state, "pending");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(poll(&h, &d.device_code).await.unwrap().state, "expired");
    let err = approve(&h, &alice.id, &d.user_code, "late")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "device code not found");
    // Nothing was created.
    let nodes = h
        .client()
        .list_nodes(pb::ListNodesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert!(nodes.is_empty());
    h.stop().await;
}

async fn two_approvals_one_wins(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let alice = h.create_user("alice").await;
    let bob = h.create_user("bob").await;
    for _ in 0..3 {
        let d = start(&h, "cli", "192.0.2.13").await.unwrap();
        let (ra, rb) = tokio::join!(
            approve(&h, &alice.id, &d.user_code, ""),
            approve(&h, &bob.id, &d.user_code, ""),
        );
        assert_eq!(
            [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{ra:?} {rb:?}"
        );
        let winner = if ra.is_ok() { "alice" } else { "bob" };
        for r in [ra, rb] {
            if let Err(e) = r {
                assert_eq!(e.code(), Code::NotFound);
            }
        }
        // The device gets the winner's token, once, even with two polls.
        let (pa, pb_) = tokio::join!(poll(&h, &d.device_code), poll(&h, &d.device_code));
        let tokens: Vec<_> = [pa, pb_].into_iter().filter_map(|p| p.ok()).collect();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].username, winner);
        assert!(tokens[0].token.is_some());
    }
    // Two agents' approvals race for their nodes the same way.
    let d = start(&h, "agent", "192.0.2.13").await.unwrap();
    let (ra, rb) = tokio::join!(
        approve(&h, &alice.id, &d.user_code, "alpha"),
        approve(&h, &bob.id, &d.user_code, "beta"),
    );
    assert_eq!([ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(), 1);
    let nodes = h
        .client()
        .list_nodes(pb::ListNodesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    h.stop().await;
}

async fn starts_are_rate_limited_per_ip(stack: Stack) {
    let options = Options {
        device_starts_per_minute: 3,
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    for _ in 0..3 {
        start(&h, "agent", "203.0.113.20").await.unwrap();
    }
    let err = start(&h, "agent", "203.0.113.20").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    start(&h, "agent", "203.0.113.21").await.unwrap();
    h.stop().await;
}

async fn wrong_user_codes_are_counted_per_user(stack: Stack) {
    let options = Options {
        limits: LoginLimits {
            max_failures: 3,
            max_failures_per_ip: 100,
            window: Duration::from_secs(60),
        },
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    let mallory = h.create_user("mallory").await;
    let alice = h.create_user("alice").await;
    let d = start(&h, "cli", "192.0.2.14").await.unwrap();
    for guess in ["BBBB-BBBB", "CCCC-CCCC", "not a code"] {
        let err = approve(&h, &mallory.id, guess, "").await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    // Locked for device approvals, even with the right code...
    let err = approve(&h, &mallory.id, &d.user_code, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    // ...but not for logging in, and other users are not affected.
    h.login("mallory", PASSWORD).await.unwrap();
    approve(&h, &alice.id, &d.user_code, "").await.unwrap();
    // A disabled or unknown approver is refused.
    h.client()
        .set_user_disabled(pb::SetUserDisabledRequest {
            username: "alice".into(),
            disabled: true,
        })
        .await
        .unwrap();
    let d = start(&h, "cli", "192.0.2.14").await.unwrap();
    let err = approve(&h, &alice.id, &d.user_code, "").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = approve(&h, "no-such-id", &d.user_code, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    h.stop().await;
}

async fn taken_node_name_can_be_retried(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("owner").await;
    let alice = h.create_user("alice").await;
    h.node_token("owner", "web", None).await.unwrap();
    h.client()
        .add_host(pb::AddHostRequest {
            name: "db".into(),
            ip: "10.0.0.1".into(),
            port: 22,
        })
        .await
        .unwrap();
    let d = start(&h, "agent", "192.0.2.15").await.unwrap();
    for taken in ["web", "db"] {
        let err = approve(&h, &alice.id, &d.user_code, taken)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists, "{taken}");
    }
    assert_eq!(poll(&h, &d.device_code).await.unwrap().state, "pending");
    approve(&h, &alice.id, &d.user_code, "alices-box")
        .await
        .unwrap();
    let got = poll(&h, &d.device_code).await.unwrap();
    let node = h.verify_node(&got.token.unwrap()).await.unwrap();
    assert_eq!(node.name, "alices-box");
    // Re-activating a node alice owns re-keys it only when she chooses to replace it; then the
    // old token stops.
    let old = h
        .rotate_node_token("alice", "alices-box")
        .await
        .unwrap()
        .token;
    let d = start(&h, "agent", "192.0.2.15").await.unwrap();
    let err = approve(&h, &alice.id, &d.user_code, "alices-box")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("replace node alices-box"), "{err:?}");
    assert_eq!(poll(&h, &d.device_code).await.unwrap().state, "pending");
    assert!(h.verify_node(&old).await.is_ok());
    let replaced = approve_with(&h, &alice.id, &d.user_code, "alices-box", true, false)
        .await
        .unwrap();
    assert!(replaced.replaced);
    let fresh = poll(&h, &d.device_code).await.unwrap().token.unwrap();
    assert!(h.verify_node(&old).await.is_err());
    assert_eq!(h.verify_node(&fresh).await.unwrap().name, "alices-box");
    h.stop().await;
}
