//! The bounded Argon2 pool seen from a client: when every slot is busy
//! and the queue is full, a login gets a clear RESOURCE_EXHAUSTED at once
//! instead of queueing more 19 MiB hashes.

use std::time::{Duration, Instant};

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_authz::{HashLimits, LoginLimits, UserLimits};
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(saturated_hashing_refuses_the_excess_clearly);

async fn saturated_hashing_refuses_the_excess_clearly(stack: Stack) {
    let options = Options {
        // Limits out of the way: only the pool refuses here.
        limits: LoginLimits {
            max_failures: 1000,
            max_failures_per_ip: 1000,
            window: Duration::from_secs(60),
        },
        user_limits: UserLimits {
            max_failures: 1000,
            ..UserLimits::default()
        },
        hash_limits: HashLimits {
            concurrency: 1,
            queue: 1,
            queue_wait: Duration::from_secs(30),
        },
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    h.create_user("alice").await;
    let logins: Vec<_> = (0..16)
        .map(|i| {
            let mut client = h.client();
            tokio::spawn(async move {
                let at = Instant::now();
                let answer = client
                    .login(pb::LoginRequest {
                        username: "alice".into(),
                        password: format!("guess number {i}"),
                        client_ip: Some(format!("198.51.100.{i}")),
                    })
                    .await;
                (answer.unwrap_err(), at.elapsed())
            })
        })
        .collect();
    let (mut checked, mut busy) = (0, 0);
    for login in logins {
        let (status, took) = login.await.unwrap();
        match status.code() {
            Code::Unauthenticated => checked += 1,
            Code::ResourceExhausted => {
                assert_eq!(
                    status.message(),
                    "too many login attempts in progress, try again in a moment"
                );
                // Refused without waiting for a hash.
                assert!(took < Duration::from_secs(5), "{took:?}");
                busy += 1;
            }
            other => panic!("unexpected {other:?}: {status:?}"),
        }
    }
    assert!(busy >= 8, "{checked} checked, {busy} refused as busy");
    assert!(checked >= 2, "{checked} checked, {busy} refused as busy");
    // Once the burst is over, logins work again.
    assert!(h.login("alice", PASSWORD).await.is_ok());
    h.stop().await;
}
