//! The SSH edge's calls (VerifyPassword, ListAccessibleTargets) and the
//! admin role (SetUserAdmin), on PostgreSQL + Redis + NATS and embedded.

use std::time::{Duration, Instant};

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_authz::LoginLimits;
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    verify_password_answers_like_login,
    verify_password_shares_the_lockout,
    accessible_targets_agree_with_authorize,
    accessible_targets_say_whether_the_user_is_active,
    admin_flag_is_set_and_shown,
);

async fn verify(h: &Harness, user: &str, password: &str) -> Result<pb::User, tonic::Status> {
    h.client()
        .verify_password(pb::VerifyPasswordRequest {
            username: user.into(),
            password: password.into(),
            client_ip: Some("198.51.100.4".into()),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn verify_password_answers_like_login(stack: Stack) {
    // A high limit: lockout is the next test's subject.
    let options = Options {
        limits: LoginLimits {
            max_failures: 1000,
            max_failures_per_ip: 1000,
            window: Duration::from_secs(60),
        },
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    let alice = h.create_user("alice").await;
    h.create_user("carol").await;
    h.client()
        .set_user_disabled(pb::SetUserDisabledRequest {
            username: "carol".into(),
            disabled: true,
        })
        .await
        .unwrap();

    let ok = verify(&h, "alice", PASSWORD).await.unwrap();
    assert_eq!(ok.id, alice.id);
    assert!(!ok.admin);

    let login_wrong = h.login("alice", "wrong password").await.unwrap_err();
    for (user, password) in [
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        ("carol", PASSWORD),
        ("Not A Name", PASSWORD),
    ] {
        let err = verify(&h, user, password).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{user}");
        assert_eq!(err.message(), login_wrong.message(), "{user}");
    }

    // Unknown user and wrong password cost the same (Argon2 against a
    // dummy hash). Interleaved medians, so machine load hits both alike.
    let time = |user: &'static str| {
        let h = &h;
        async move {
            let start = Instant::now();
            let _ = verify(h, user, "not the password").await;
            start.elapsed()
        }
    };
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        unknown.push(time("nobody-at-all").await);
        wrong.push(time("alice").await);
        wrong.push(time("alice").await);
        unknown.push(time("nobody-else").await);
    }
    let median = |mut v: Vec<Duration>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (u, w) = (median(unknown), median(wrong));
    let ratio = u.as_secs_f64() / w.as_secs_f64();
    assert!((0.5..2.0).contains(&ratio), "unknown {u:?} vs wrong {w:?}");
    h.stop().await;
}

async fn verify_password_shares_the_lockout(stack: Stack) {
    let options = Options {
        limits: LoginLimits {
            max_failures: 3,
            max_failures_per_ip: 100,
            window: Duration::from_secs(60),
        },
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    h.create_user("alice").await;
    for _ in 0..3 {
        verify(&h, "alice", "wrong password").await.unwrap_err();
    }
    // That source waits for alice: the right password is refused by both
    // calls, with VerifyPassword's one UNAUTHENTICATED answer.
    let err = verify(&h, "alice", PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = h
        .client()
        .login(pb::LoginRequest {
            username: "alice".into(),
            password: PASSWORD.into(),
            client_ip: Some("198.51.100.4".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    h.stop().await;
}

async fn accessible(h: &Harness, user: &str) -> Vec<(String, String)> {
    h.client()
        .list_accessible_targets(pb::ListAccessibleTargetsRequest {
            username: user.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .targets
        .into_iter()
        .map(|t| (t.target.unwrap().name, t.reason))
        .collect()
}

async fn accessible_targets_agree_with_authorize(stack: Stack) {
    use pb::PrincipalKind::{Group, User};
    let options = Options {
        limits: LoginLimits {
            max_failures: 2,
            ..LoginLimits::default()
        },
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    let mut c = h.client();
    for u in [
        "owner", "direct", "member", "both", "outsider", "disabled", "locked",
    ] {
        h.create_user(u).await;
    }
    h.node_token("owner", "web", None).await.unwrap();
    h.node_token("owner", "api", None).await.unwrap();
    for (name, port) in [("db", 22), ("cache", 2222), ("zeta", 22)] {
        c.add_host(pb::AddHostRequest {
            name: name.into(),
            ip: "10.9.8.7".into(),
            port,
        })
        .await
        .unwrap();
    }
    for (group, members) in [
        ("ops", vec!["member", "both", "disabled", "locked"]),
        ("dev", vec!["both"]),
    ] {
        c.create_group(pb::CreateGroupRequest { name: group.into() })
            .await
            .unwrap();
        for m in members {
            c.add_group_member(pb::AddGroupMemberRequest {
                group: group.into(),
                username: m.into(),
            })
            .await
            .unwrap();
        }
    }
    for (kind, principal, target) in [
        (User, "direct", "db"),
        (User, "direct", "web"),
        (Group, "ops", "db"),
        (Group, "ops", "cache"),
        (Group, "dev", "cache"),
        (Group, "dev", "zeta"),
        (User, "both", "cache"),
        (User, "owner", "web"),
    ] {
        c.grant(pb::GrantRequest {
            principal_kind: kind.into(),
            principal: principal.into(),
            target: target.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    c.set_user_disabled(pb::SetUserDisabledRequest {
        username: "disabled".into(),
        disabled: true,
    })
    .await
    .unwrap();
    for _ in 0..2 {
        h.login("locked", "wrong password").await.unwrap_err();
    }

    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        accessible(&h, "owner").await,
        pairs(&[("api", "owner"), ("web", "owner")])
    );
    assert_eq!(
        accessible(&h, "both").await,
        pairs(&[
            ("cache", "user grant"),
            ("db", "group grant: ops"),
            ("zeta", "group grant: dev"),
        ])
    );
    assert!(accessible(&h, "outsider").await.is_empty());
    assert!(accessible(&h, "disabled").await.is_empty());
    // Failed logins (a stranger's, say) take nothing away.
    assert_eq!(
        accessible(&h, "locked").await,
        accessible(&h, "member").await
    );
    assert!(!accessible(&h, "locked").await.is_empty());
    assert!(accessible(&h, "nobody").await.is_empty());

    // Every listed target authorizes with the same reason; every unlisted
    // one is denied.
    let all: Vec<String> = c
        .list_targets(pb::ListTargetsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .targets
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(all.len(), 5);
    for user in [
        "owner", "direct", "member", "both", "outsider", "disabled", "locked", "nobody",
    ] {
        let listed = accessible(&h, user).await;
        let names: Vec<&String> = listed.iter().map(|(n, _)| n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{user}: sorted by name");
        for target in &all {
            let d = c
                .authorize(pb::AuthorizeRequest {
                    username: user.into(),
                    target: target.clone(),
                    action: "ssh".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let entry = listed.iter().find(|(n, _)| n == target);
            assert_eq!(
                d.allowed,
                entry.is_some(),
                "{user} -> {target}: {}",
                d.reason
            );
            if let Some((_, reason)) = entry {
                assert_eq!(&d.reason, reason, "{user} -> {target}");
            }
        }
    }

    // An API token cannot ask (services only: no certificate, unauthenticated).
    let api = h.api_token("owner", &["admin"]).await;
    let mut with_api = h.as_token(&api);
    let err = with_api
        .list_accessible_targets(pb::ListAccessibleTargetsRequest {
            username: "owner".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    h.stop().await;
}

/// `user_gone`: false for an existing, enabled user (with targets or none), true for a
/// disabled or unknown one; the edges end every connection of a user who is gone.
async fn accessible_targets_say_whether_the_user_is_active(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    h.create_user("idle").await;
    h.node_token("alice", "web", None).await.unwrap();
    let listing = |user: &'static str| {
        let mut c = h.client();
        async move {
            let r = c
                .list_accessible_targets(pb::ListAccessibleTargetsRequest {
                    username: user.into(),
                })
                .await
                .unwrap()
                .into_inner();
            (!r.user_gone, r.targets.len())
        }
    };
    assert_eq!(listing("alice").await, (true, 1));
    assert_eq!(listing("idle").await, (true, 0));
    assert_eq!(listing("nobody").await, (false, 0));
    let disable = |disabled| pb::SetUserDisabledRequest {
        username: "alice".into(),
        disabled,
    };
    h.client().set_user_disabled(disable(true)).await.unwrap();
    assert_eq!(listing("alice").await, (false, 0));
    h.client().set_user_disabled(disable(false)).await.unwrap();
    assert_eq!(listing("alice").await, (true, 1));
    h.stop().await;
}

async fn admin_flag_is_set_and_shown(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let mut c = h.client();
    let alice = h.create_user("alice").await;
    assert!(!alice.admin);
    let u = c
        .set_user_admin(pb::SetUserAdminRequest {
            username: "alice".into(),
            admin: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(u.admin);
    let session = h.login("alice", PASSWORD).await.unwrap();
    assert!(session.user.unwrap().admin);
    let me = c
        .verify_session(pb::VerifySessionRequest {
            session_token: session.session_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(me.admin);
    let users = c
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    assert!(users.iter().any(|u| u.username == "alice" && u.admin));

    let err = c
        .set_user_admin(pb::SetUserAdminRequest {
            username: "nobody".into(),
            admin: true,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A read token may not; an admin token may.
    for (scope, code) in [("read", Some(Code::PermissionDenied)), ("admin", None)] {
        let token = h.api_token("alice", &[scope]).await;
        let got = h
            .as_token(&token)
            .set_user_admin(pb::SetUserAdminRequest {
                username: "alice".into(),
                admin: false,
            })
            .await;
        assert_eq!(got.err().map(|e| e.code()), code, "{scope}");
    }
    let users = c
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    assert!(users.iter().any(|u| u.username == "alice" && !u.admin));
    h.stop().await;
}
