//! Issue #9 finding 5: a user code alone approves nothing. InspectDevice shows what it asks for
//! (kind, hostname, source address, times, the approver's node it would replace) and
//! ApproveDevice confirms only that request; on PostgreSQL + Redis + NATS and embedded.

use crate::common::{Harness, Options, Stack};
use crate::devices::inspect;
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    approval_needs_the_reviewed_request,
    details_describe_the_request
);

async fn start(
    h: &Harness,
    kind: &str,
    hostname: &str,
    ip: Option<&str>,
) -> pb::DeviceAuthorization {
    h.client()
        .start_device_authorization(pb::StartDeviceAuthorizationRequest {
            kind: kind.into(),
            hostname: hostname.into(),
            client_ip: ip.map(str::to_owned),
        })
        .await
        .unwrap()
        .into_inner()
}

fn approval(user_id: &str, user_code: &str, device_id: &str) -> pb::ApproveDeviceRequest {
    pb::ApproveDeviceRequest {
        user_id: user_id.into(),
        user_code: user_code.into(),
        node_name: "box".into(),
        device_id: device_id.into(),
        ..Default::default()
    }
}

async fn approval_needs_the_reviewed_request(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let alice = h.create_user("alice").await;
    let d = start(&h, "agent", "box", Some("192.0.2.30")).await;
    let other = start(&h, "cli", "other", Some("192.0.2.31")).await;
    let poll = || async {
        h.client()
            .poll_device_authorization(pb::PollDeviceAuthorizationRequest {
                device_code: d.device_code.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .state
    };
    // The code alone, as the old one-step approval sent it.
    let err = h
        .client()
        .approve_device(approval(&alice.id, &d.user_code, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("device_id"), "{err:?}");
    assert_eq!(poll().await, "pending");
    // Another request's id.
    let elsewhere = inspect(&h, &alice.id, &other.user_code, "").await.unwrap();
    let err = h
        .client()
        .approve_device(approval(&alice.id, &d.user_code, &elsewhere.device_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(poll().await, "pending");
    // Admin scope is not something an agent gets.
    let reviewed = inspect(&h, &alice.id, &d.user_code, "").await.unwrap();
    let mut ask = approval(&alice.id, &d.user_code, &reviewed.device_id);
    ask.admin_scope = true;
    let err = h.client().approve_device(ask).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // The reviewed request.
    let approved = h
        .client()
        .approve_device(approval(&alice.id, &d.user_code, &reviewed.device_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.node.unwrap().name, "box");
    assert_eq!(poll().await, "approved");
    h.stop().await;
}

async fn details_describe_the_request(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let alice = h.create_user("alice").await;
    let root = h.create_user("root").await;
    h.client()
        .set_user_admin(pb::SetUserAdminRequest {
            username: "root".into(),
            admin: true,
        })
        .await
        .unwrap();
    h.create_user("owner").await;
    h.node_token("alice", "build-7", None).await.unwrap();
    h.node_token("owner", "theirs", None).await.unwrap();
    let before = phirepass_store::now_millis();
    let d = start(&h, "agent", "Build-7", Some("192.0.2.32")).await;
    let got = inspect(&h, &alice.id, &d.user_code.to_lowercase(), "")
        .await
        .unwrap();
    assert_eq!(got.kind, "agent");
    assert_eq!(got.hostname, "Build-7");
    assert_eq!(got.client_ip, "192.0.2.32");
    assert!(got.created_at >= before && got.created_at <= phirepass_store::now_millis());
    assert_eq!(got.expires_at, d.expires_at);
    assert!(!got.can_grant_admin);
    // The hostname, as a node name, is alice's node: approving would replace it.
    assert_eq!(got.node_name, "build-7");
    assert_eq!(got.existing_node.unwrap().name, "build-7");
    // Another user's node is not "hers to replace"; a free name has nothing.
    for name in ["theirs", "free-name"] {
        let got = inspect(&h, &alice.id, &d.user_code, name).await.unwrap();
        assert_eq!(got.node_name, name);
        assert!(got.existing_node.is_none(), "{name}");
    }
    // Looking is not approving.
    let state = h
        .client()
        .poll_device_authorization(pb::PollDeviceAuthorizationRequest {
            device_code: d.device_code.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .state;
    assert_eq!(state, "pending");
    // A CLI code: an admin may grant admin scope, a user may not; an unknown address is empty.
    let cli = start(&h, "cli", "laptop", None).await;
    let by_root = inspect(&h, &root.id, &cli.user_code, "").await.unwrap();
    assert!(by_root.can_grant_admin && by_root.existing_node.is_none());
    assert_eq!(by_root.client_ip, "");
    assert!(
        !inspect(&h, &alice.id, &cli.user_code, "")
            .await
            .unwrap()
            .can_grant_admin
    );
    // Unknown codes: one answer.
    let err = inspect(&h, &alice.id, "BBBB-BBBB", "").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    h.stop().await;
}
