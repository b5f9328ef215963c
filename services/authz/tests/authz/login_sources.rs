//! A lockout a stranger cannot turn against someone else: failures cost
//! their source (per source, per username and source), a source stays
//! known for a username after a correct password, and the per-username
//! ceiling holds back only sources the user never logged in from, for one
//! window at most. Nothing ends a live session. Also: the per-source
//! count is taken before hashing, so concurrent guesses cannot overrun it.

use std::time::Duration;

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_authz::{HashLimits, LoginLimits, UserLimits};
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    a_stranger_cannot_lock_alice_out_or_end_her_session,
    many_sources_hold_back_only_new_sources_for_one_window,
    concurrent_guesses_cannot_overrun_the_source_limit,
    a_strangers_guesses_never_block_a_key_login,
);

const HOME: &str = "192.0.2.10";
const STRANGER: &str = "203.0.113.66";
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ laptop";

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

async fn session_works(h: &Harness, token: &str) -> bool {
    h.client()
        .verify_session(pb::VerifySessionRequest {
            session_token: token.into(),
        })
        .await
        .is_ok()
}

async fn a_stranger_cannot_lock_alice_out_or_end_her_session(stack: Stack) {
    // The defaults: 5 per username and source, 50 per source, 20 per
    // username from unknown sources.
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    h.create_user("bob").await;
    h.set_admin("alice", true).await;
    let session = login_from(&h, "alice", PASSWORD, HOME)
        .await
        .unwrap()
        .session_token;

    let mut answers = Vec::new();
    for _ in 0..50 {
        let err = login_from(&h, "alice", "not her password", STRANGER)
            .await
            .unwrap_err();
        answers.push(err.code());
    }
    // Five guesses are checked; then that source waits for alice.
    assert!(
        answers[..5].iter().all(|c| *c == Code::Unauthenticated),
        "{answers:?}"
    );
    assert!(
        answers[5..].iter().all(|c| *c == Code::ResourceExhausted),
        "{answers:?}"
    );
    // The stranger's source is over its own limit now: refused for any
    // name, even with a right password.
    let err = login_from(&h, "bob", PASSWORD, STRANGER).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);

    // Alice, an admin, keeps her live session and logs in from home, and
    // from an address she never used.
    assert!(session_works(&h, &session).await);
    let fresh = login_from(&h, "alice", PASSWORD, HOME).await.unwrap();
    assert!(session_works(&h, &fresh.session_token).await);
    assert!(
        login_from(&h, "alice", PASSWORD, "198.51.100.23")
            .await
            .is_ok()
    );
    assert!(session_works(&h, &session).await);
    h.stop().await;
}

async fn many_sources_hold_back_only_new_sources_for_one_window(stack: Stack) {
    let window = Duration::from_secs(2);
    let options = Options {
        user_limits: UserLimits {
            max_failures: 4,
            window,
            ..UserLimits::default()
        },
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    h.create_user("alice").await;
    // Alice's first login from home counts once against the ceiling of 4.
    let session = login_from(&h, "alice", PASSWORD, HOME)
        .await
        .unwrap()
        .session_token;
    // Three strangers, one guess each, reach the ceiling.
    for i in 1..=3 {
        let err = login_from(&h, "alice", "guess", &format!("203.0.113.{i}"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    // A fifth source waits, even with the right password...
    let err = login_from(&h, "alice", PASSWORD, "198.51.100.23")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    // ...but home is known: alice logs in there, and her session lives.
    assert!(login_from(&h, "alice", PASSWORD, HOME).await.is_ok());
    assert!(session_works(&h, &session).await);
    // The wait is bounded by the window.
    tokio::time::sleep(window + Duration::from_millis(300)).await;
    assert!(
        login_from(&h, "alice", PASSWORD, "198.51.100.23")
            .await
            .is_ok()
    );
    h.stop().await;
}

async fn concurrent_guesses_cannot_overrun_the_source_limit(stack: Stack) {
    // Room in the hashing pool for everyone: only the limiter refuses.
    let options = Options {
        limits: LoginLimits {
            max_failures: 100,
            max_failures_per_ip: 5,
            window: Duration::from_secs(60),
        },
        user_limits: UserLimits {
            max_failures: 100,
            ..UserLimits::default()
        },
        hash_limits: HashLimits {
            concurrency: 2,
            queue: 1000,
            queue_wait: Duration::from_secs(120),
        },
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    // Forty guesses at once from one source, each for another name: the
    // old code checked the count, hashed, then counted, so all forty passed
    // the check before the first failure was counted.
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let client = h.client();
            tokio::spawn(async move {
                let mut client = client;
                client
                    .login(pb::LoginRequest {
                        username: format!("user{i}"),
                        password: "a guess at it".into(),
                        client_ip: Some(STRANGER.into()),
                    })
                    .await
                    .unwrap_err()
            })
        })
        .collect();
    let (mut checked, mut refused) = (0, 0);
    for guess in guesses {
        let status = guess.await.unwrap();
        match status.code() {
            Code::Unauthenticated => checked += 1,
            Code::ResourceExhausted => {
                assert!(
                    status.message().contains("too many failed attempts"),
                    "{status:?}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other:?}: {status:?}"),
        }
    }
    assert_eq!((checked, refused), (5, 35));
    h.stop().await;
}

async fn key_login_from(h: &Harness, user: &str, ip: &str) -> Result<(), tonic::Status> {
    h.client()
        .verify_user_key(pb::VerifyUserKeyRequest {
            username: user.into(),
            public_key: KEY.into(),
            client_ip: Some(ip.into()),
        })
        .await
        .map(|_| ())
}

async fn a_strangers_guesses_never_block_a_key_login(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    h.client()
        .add_user_key(pb::AddUserKeyRequest {
            username: "alice".into(),
            public_key: KEY.into(),
        })
        .await
        .unwrap();
    for _ in 0..6 {
        login_from(&h, "alice", "guess", STRANGER)
            .await
            .unwrap_err();
    }
    // The old lockout refused alice's key too once anyone had guessed
    // five times; now only a source over its own limit is held back.
    key_login_from(&h, "alice", HOME).await.unwrap();
    key_login_from(&h, "alice", STRANGER).await.unwrap();
    for _ in 6..50 {
        login_from(&h, "alice", "guess", STRANGER)
            .await
            .unwrap_err();
    }
    let err = key_login_from(&h, "alice", STRANGER).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    key_login_from(&h, "alice", HOME).await.unwrap();
    h.stop().await;
}
