//! Every admin change is an audit event on the audit subject, naming who
//! made it (the API token's user, or "service") and never a secret; on
//! PostgreSQL + Redis + NATS and embedded.

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_proto::authz as pb;

on_both_stacks!(every_admin_change_is_audited);

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ laptop";
const NEW_PASSWORD: &str = "another long passphrase";

async fn every_admin_change_is_audited(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("root").await;
    h.set_admin("root", true).await;
    let token = h.api_token("root", &["admin"]).await;
    let mut c = h.as_token(&token);
    let user = |name: &str| pb::CreateUserRequest {
        username: name.into(),
        password: PASSWORD.into(),
    };
    c.create_user(user("alice")).await.unwrap();
    c.create_user(user("bob")).await.unwrap();
    c.set_password(pb::SetPasswordRequest {
        username: "alice".into(),
        password: NEW_PASSWORD.into(),
    })
    .await
    .unwrap();
    c.set_user_disabled(pb::SetUserDisabledRequest {
        username: "bob".into(),
        disabled: true,
    })
    .await
    .unwrap();
    c.set_user_admin(pb::SetUserAdminRequest {
        username: "alice".into(),
        admin: true,
    })
    .await
    .unwrap();
    let key = c
        .add_user_key(pb::AddUserKeyRequest {
            username: "alice".into(),
            public_key: KEY.into(),
        })
        .await
        .unwrap()
        .into_inner();
    c.remove_user_key(pb::RemoveUserKeyRequest {
        username: "alice".into(),
        fingerprint: key.fingerprint.clone(),
    })
    .await
    .unwrap();
    c.create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    c.add_group_member(pb::AddGroupMemberRequest {
        group: "ops".into(),
        username: "alice".into(),
    })
    .await
    .unwrap();
    c.remove_group_member(pb::RemoveGroupMemberRequest {
        group: "ops".into(),
        username: "alice".into(),
    })
    .await
    .unwrap();
    c.add_host(pb::AddHostRequest {
        name: "db".into(),
        ip: "10.0.0.1".into(),
        port: 22,
    })
    .await
    .unwrap();
    let grant = pb::GrantRequest {
        principal_kind: pb::PrincipalKind::Group.into(),
        principal: "ops".into(),
        target: "db".into(),
        ..Default::default()
    };
    c.grant(grant.clone()).await.unwrap();
    c.revoke(pb::RevokeRequest {
        principal_kind: grant.principal_kind,
        principal: grant.principal,
        target: grant.target,
        ..Default::default()
    })
    .await
    .unwrap();
    let node = c
        .create_node_token(pb::CreateNodeTokenRequest {
            username: "alice".into(),
            node_name: "web".into(),
            expires_in_secs: None,
            rotate: false,
        })
        .await
        .unwrap()
        .into_inner();
    c.revoke_token(pb::RevokeTokenRequest {
        token_id: node.token_id.clone(),
    })
    .await
    .unwrap();
    c.remove_host(pb::RemoveHostRequest { name: "db".into() })
        .await
        .unwrap();
    c.remove_group(pb::RemoveGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    c.remove_user(pb::RemoveUserRequest {
        username: "bob".into(),
    })
    .await
    .unwrap();

    let events: Vec<serde_json::Value> = h
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "admin")
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            // Made with the service token: the harness's first user (an
            // admin, as API tokens are capped by the role) and token.
            "user.add",
            "user.set_admin",
            "api_token.create",
            // Made with root's API token.
            "user.add",
            "user.add",
            "user.passwd",
            "user.disable",
            "user.set_admin",
            "user.key.add",
            "user.key.remove",
            "group.add",
            "group.member.add",
            "group.member.remove",
            "host.add",
            "grant",
            "revoke",
            "node.token.create",
            "token.revoke",
            "host.remove",
            "group.remove",
            "user.remove",
        ]
    );
    assert!(events[..3].iter().all(|e| e["actor"] == "service"));
    assert!(
        events[3..].iter().all(|e| e["actor"] == "root"),
        "{events:?}"
    );
    assert!(events[3..].iter().all(|e| e["actor_user_id"].is_string()));
    assert_eq!(
        events[8]["details"]["fingerprint"],
        key.fingerprint.as_str()
    );
    assert_eq!(events[14]["details"]["principal"], "ops");
    assert_eq!(events[14]["details"]["target"], "db");
    // No password, key blob or token anywhere.
    let all = serde_json::to_string(&events).unwrap();
    for secret in [
        PASSWORD,
        NEW_PASSWORD,
        &token,
        &node.token,
        "AAAAC3NzaC1lZDI1NTE5",
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    h.stop().await;
}
