//! Login brute-force protection: per-(username, source) and per-source
//! limits in presence (Redis on the production stack), a lockout that
//! leaves the user's sessions and API tokens alone, and equal timing for
//! unknown users and wrong passwords. Strangers and many sources:
//! `login_sources`; the hashing pool: `hash_pool`.

use std::time::{Duration, Instant};

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_authz::{LoginLimits, UserLimits};
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    lockout_refuses_the_source_but_not_the_users_tokens,
    unknown_usernames_count,
    ip_counter_spans_usernames,
    lock_ends_with_the_window,
    unknown_user_and_wrong_password_take_the_same_time,
);

/// Per-source limits; the per-username ceiling is out of the way (and
/// its window, which an unknown source's failures count in, is `window`).
fn limits(max_failures: u64, max_failures_per_ip: u64, window: Duration) -> Options {
    Options {
        limits: LoginLimits {
            max_failures,
            max_failures_per_ip,
            window,
        },
        user_limits: UserLimits {
            max_failures: 10_000,
            window,
            ..UserLimits::default()
        },
        ..Options::default()
    }
}

async fn login_from(
    h: &Harness,
    user: &str,
    password: &str,
    ip: &str,
) -> Result<pb::LoginResponse, tonic::Status> {
    h.client()
        .login(pb::LoginRequest {
            username: user.into(),
            password: password.into(),
            client_ip: Some(ip.into()),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn lockout_refuses_the_source_but_not_the_users_tokens(stack: Stack) {
    let h = Harness::on(stack, limits(5, 100, Duration::from_secs(60))).await;
    h.create_user("alice").await;
    h.create_user("bob").await;
    let session = h.login("alice", PASSWORD).await.unwrap().session_token;
    let api = h
        .client()
        .create_api_token(pb::CreateApiTokenRequest {
            username: "alice".into(),
            name: "ci".into(),
            scopes: vec!["read".into()],
            expires_in_secs: None,
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let verify_session = || {
        let mut c = h.client();
        let session_token = session.clone();
        async move {
            c.verify_session(pb::VerifySessionRequest { session_token })
                .await
        }
    };
    assert!(verify_session().await.is_ok());

    for _ in 0..5 {
        let err = h.login("alice", "wrong password").await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    // That source waits for alice, even with the right password...
    let err = h.login("alice", PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    // ...but her session, her API token and her access are untouched (the
    // old lockout ended them all: anyone could log anyone out).
    assert!(verify_session().await.is_ok());
    let verified = h
        .client()
        .verify_api_token(pb::VerifyApiTokenRequest { token: api })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(verified.user.unwrap().username, "alice");
    let d = h
        .client()
        .authorize(pb::AuthorizeRequest {
            username: "alice".into(),
            target: "anything".into(),
            action: "ssh".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.reason, "unknown target");
    // From another source she logs in; others are unaffected.
    assert!(
        login_from(&h, "alice", PASSWORD, "192.0.2.80")
            .await
            .is_ok()
    );
    assert!(h.login("bob", PASSWORD).await.is_ok());
    h.stop().await;
}

async fn unknown_usernames_count(stack: Stack) {
    let h = Harness::on(stack, limits(5, 100, Duration::from_secs(60))).await;
    for _ in 0..5 {
        let err = h.login("ghost", "whatever pass").await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let err = h.login("ghost", "whatever pass").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    // Creating the user now does not clear the lock on the name.
    h.create_user("ghost").await;
    let err = h.login("ghost", PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    h.stop().await;
}

async fn ip_counter_spans_usernames(stack: Stack) {
    let h = Harness::on(stack, limits(5, 3, Duration::from_secs(60))).await;
    h.create_user("alice").await;
    for user in ["u1", "u2", "u3"] {
        let err = login_from(&h, user, "nope nope", "198.51.100.9")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let err = login_from(&h, "alice", PASSWORD, "198.51.100.9")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        login_from(&h, "alice", PASSWORD, "198.51.100.10")
            .await
            .is_ok()
    );
    h.stop().await;
}

async fn lock_ends_with_the_window(stack: Stack) {
    let h = Harness::on(stack, limits(2, 100, Duration::from_secs(1))).await;
    h.create_user("alice").await;
    for _ in 0..2 {
        assert!(h.login("alice", "wrong password").await.is_err());
    }
    let err = h.login("alice", PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(h.login("alice", PASSWORD).await.is_ok());
    h.stop().await;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

async fn unknown_user_and_wrong_password_take_the_same_time(stack: Stack) {
    // A high limit: this test is about timing, not lockout.
    let h = Harness::on(stack, limits(1000, 1000, Duration::from_secs(60))).await;
    h.create_user("alice").await;
    let time = |user: &'static str| {
        let h = &h;
        async move {
            let start = Instant::now();
            let err = h.login(user, "wrong password").await.unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated);
            start.elapsed()
        }
    };
    for _ in 0..3 {
        time("alice").await;
        time("nobody").await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, so drift in machine load hits both alike.
    for _ in 0..15 {
        known.push(time("alice").await);
        unknown.push(time("nobody").await);
    }
    let (k, u) = (median(known), median(unknown));
    let ratio = u.as_secs_f64() / k.as_secs_f64();
    assert!(
        (0.75..=1.25).contains(&ratio),
        "unknown {u:?} vs wrong password {k:?}"
    );
    h.stop().await;
}
