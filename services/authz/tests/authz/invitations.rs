//! Invitations: created by admins, inspected and accepted through the
//! service token, single use, expiring, revocable, stored hashed; on
//! PostgreSQL + Redis + NATS and embedded.

use std::time::Duration;

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_authz::LoginLimits;
use phirepass_proto::authz as pb;
use sqlx::Row;
use tonic::Code;

on_both_stacks!(
    invitation_is_used_once,
    fixed_username_and_admin_role,
    taken_username_keeps_the_code_usable,
    revoked_and_expired_codes_are_refused,
    creator_is_recorded_and_must_be_an_admin,
    concurrent_accepts_create_one_user,
    one_source_guessing_codes_does_not_lock_out_another,
);

async fn invite(
    h: &Harness,
    username: Option<&str>,
    admin: bool,
    ttl_secs: Option<u64>,
) -> pb::CreateInvitationResponse {
    h.client()
        .create_invitation(pb::CreateInvitationRequest {
            created_by: String::new(),
            username: username.map(str::to_owned),
            admin,
            ttl_secs,
        })
        .await
        .unwrap()
        .into_inner()
}

fn accept(code: &str, username: &str) -> pb::AcceptInvitationRequest {
    pb::AcceptInvitationRequest {
        code: code.into(),
        username: username.into(),
        password: PASSWORD.into(),
        client_ip: Some("192.0.2.5".into()),
    }
}

async fn inspect(h: &Harness, code: &str) -> Result<pb::Invitation, tonic::Status> {
    h.client()
        .inspect_invitation(pb::InspectInvitationRequest {
            code: code.into(),
            client_ip: Some("192.0.2.5".into()),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn listed(h: &Harness, id: &str) -> pb::Invitation {
    h.client()
        .list_invitations(pb::ListInvitationsRequest {})
        .await
        .unwrap()
        .into_inner()
        .invitations
        .into_iter()
        .find(|i| i.id == id)
        .unwrap()
}

async fn invitation_is_used_once(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("root").await;
    h.set_admin("root", true).await;
    let admin = h.api_token("root", &["admin"]).await;
    let created = h
        .as_token(&admin)
        .create_invitation(pb::CreateInvitationRequest::default())
        .await
        .unwrap()
        .into_inner();
    let code = created.code.clone();
    // URL-safe, 32 characters of base64url: 192 bits.
    assert_eq!(code.len(), 32);
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let inv = created.invitation.unwrap();
    assert_eq!(inv.state, "pending");
    assert_eq!(inv.created_by, "root");
    assert!(inv.username.is_empty());
    let week = 7 * 24 * 3_600_000;
    assert!((inv.expires_at - inv.created_at - week).abs() < 5_000);

    // Stored hashed: the code appears in no column.
    let rows = sqlx::query("SELECT id, code_hash, username, created_by FROM invitations")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    for row in &rows {
        for col in ["id", "code_hash", "username", "created_by"] {
            let v: String = row.get(col);
            assert!(!v.contains(&code), "{col}");
        }
    }

    let seen = inspect(&h, &code).await.unwrap();
    assert_eq!(seen.id, inv.id);
    let joined = h
        .client()
        .accept_invitation(accept(&code, "dave"))
        .await
        .unwrap()
        .into_inner();
    let dave = joined.user.unwrap();
    assert_eq!(dave.username, "dave");
    assert!(!dave.admin);
    h.login("dave", PASSWORD).await.unwrap();

    let used = listed(&h, &inv.id).await;
    assert_eq!(used.state, "used");
    assert_eq!(used.used_by.as_deref(), Some("dave"));
    // Used up: both calls give the one NOT_FOUND.
    let err = inspect(&h, &code).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = h
        .client()
        .accept_invitation(accept(&code, "eve"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "invitation not found");

    // Inspect and accept are for services only; a read token may
    // list but not create.
    let err = h
        .as_token(&admin)
        .inspect_invitation(pb::InspectInvitationRequest {
            code,
            client_ip: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let read = h.api_token("root", &["read"]).await;
    let mut r = h.as_token(&read);
    assert!(
        r.list_invitations(pb::ListInvitationsRequest {})
            .await
            .is_ok()
    );
    let err = r
        .create_invitation(pb::CreateInvitationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let events = h.audit_events().await;
    let create = events
        .iter()
        .find(|e| e["action"] == "invitation.create")
        .unwrap();
    assert_eq!(create["actor"], "root");
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "invitation.accept" && e["details"]["username"] == "dave")
    );
    h.stop().await;
}

async fn fixed_username_and_admin_role(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let created = invite(&h, Some("frank"), true, None).await;
    let inv = created.invitation.unwrap();
    assert_eq!(inv.username, "frank");
    assert!(inv.admin);
    assert_eq!(inv.created_by, "service");
    let err = h
        .client()
        .accept_invitation(accept(&created.code, "mallory"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // The fixed name is used when none is given.
    let joined = h
        .client()
        .accept_invitation(accept(&created.code, ""))
        .await
        .unwrap()
        .into_inner();
    let frank = joined.user.unwrap();
    assert_eq!(frank.username, "frank");
    assert!(frank.admin);
    // An invitation for a taken username cannot be created.
    let err = h
        .client()
        .create_invitation(pb::CreateInvitationRequest {
            username: Some("frank".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    h.stop().await;
}

async fn taken_username_keeps_the_code_usable(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    let created = invite(&h, None, false, None).await;
    let err = h
        .client()
        .accept_invitation(accept(&created.code, "alice"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = h
        .client()
        .accept_invitation(pb::AcceptInvitationRequest {
            password: "short".into(),
            ..accept(&created.code, "gina")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(inspect(&h, &created.code).await.unwrap().state, "pending");
    h.client()
        .accept_invitation(accept(&created.code, "gina"))
        .await
        .unwrap();
    h.stop().await;
}

async fn revoked_and_expired_codes_are_refused(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let revoked = invite(&h, None, false, None).await;
    let id = revoked.invitation.unwrap().id;
    let mut c = h.client();
    c.revoke_invitation(pb::RevokeInvitationRequest { id: id.clone() })
        .await
        .unwrap();
    // Twice is not an error; an unknown id is NOT_FOUND.
    c.revoke_invitation(pb::RevokeInvitationRequest { id: id.clone() })
        .await
        .unwrap();
    let err = c
        .revoke_invitation(pb::RevokeInvitationRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(listed(&h, &id).await.state, "revoked");
    assert_eq!(
        inspect(&h, &revoked.code).await.unwrap_err().code(),
        Code::NotFound
    );
    let err = c
        .accept_invitation(accept(&revoked.code, "henry"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let short = invite(&h, None, false, Some(1)).await;
    assert!(inspect(&h, &short.code).await.is_ok());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        inspect(&h, &short.code).await.unwrap_err().code(),
        Code::NotFound
    );
    let err = c
        .accept_invitation(accept(&short.code, "henry"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        listed(&h, &short.invitation.unwrap().id).await.state,
        "expired"
    );

    // TTL bounds: 0 and more than 30 days are refused.
    for ttl in [0, 31 * 24 * 3600] {
        let err = c
            .create_invitation(pb::CreateInvitationRequest {
                ttl_secs: Some(ttl),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{ttl}");
    }
    // Made-up codes are NOT_FOUND too.
    for bad in ["", "x", &"A".repeat(32), &"/".repeat(32)] {
        assert_eq!(inspect(&h, bad).await.unwrap_err().code(), Code::NotFound);
    }
    let users = c
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    assert!(users.is_empty());
    h.stop().await;
}

async fn creator_is_recorded_and_must_be_an_admin(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let boss = h.create_user("boss").await;
    h.create_user("pleb").await;
    let mut c = h.client();
    c.set_user_admin(pb::SetUserAdminRequest {
        username: "boss".into(),
        admin: true,
    })
    .await
    .unwrap();
    let request = |created_by: &str| pb::CreateInvitationRequest {
        created_by: created_by.into(),
        ..Default::default()
    };
    // The web edge passes the session's user: by name or by id.
    for by in ["boss", boss.id.as_str()] {
        let inv = c
            .create_invitation(request(by))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(inv.created_by, "boss");
    }
    let err = c.create_invitation(request("pleb")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c.create_invitation(request("ghost")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    h.stop().await;
}

async fn concurrent_accepts_create_one_user(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let created = invite(&h, None, false, None).await;
    let (mut a, mut b) = (h.client(), h.client());
    let (ra, rb) = tokio::join!(
        a.accept_invitation(accept(&created.code, "ivy")),
        b.accept_invitation(accept(&created.code, "jack")),
    );
    assert_eq!(
        [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{ra:?} {rb:?}"
    );
    for r in [ra, rb] {
        if let Err(e) = r {
            assert_eq!(e.code(), Code::NotFound);
        }
    }
    let users = h
        .client()
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.len(), 1);
    h.stop().await;
}

async fn inspect_from(h: &Harness, code: &str, ip: &str) -> Result<pb::Invitation, tonic::Status> {
    h.client()
        .inspect_invitation(pb::InspectInvitationRequest {
            code: code.into(),
            client_ip: Some(ip.into()),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Wrong codes are counted per source: a stranger who uses up their own
/// bucket is refused, while an invitee elsewhere still opens their link.
async fn one_source_guessing_codes_does_not_lock_out_another(stack: Stack) {
    let options = Options {
        limits: LoginLimits {
            max_failures_per_ip: 3,
            ..LoginLimits::default()
        },
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    let code = invite(&h, Some("newcomer"), false, None).await.code;
    let stranger = "198.51.100.7";
    for _ in 0..3 {
        let err = inspect_from(&h, "not-a-real-code", stranger)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    let err = inspect_from(&h, &code, stranger).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    let invitee = "203.0.113.20";
    let offered = inspect_from(&h, &code, invitee).await.unwrap();
    assert_eq!(offered.username, "newcomer");
    let err = inspect_from(&h, "another-wrong-code", invitee)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::NotFound,
        "the invitee's own bucket is fresh"
    );
    h.stop().await;
}
