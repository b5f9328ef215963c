//! Issue #14 finding 9: a random tunnel name is its user's like a chosen one. Before, asking
//! for another user's live random name reserved it to the asker (the live tunnel only made the
//! registration fail), so the asker could publish it on another port at once and inherited it
//! when its owner disconnected. Driven with the real OpenSSH client.
use std::time::Duration;

use crate::common::ALICE;
use crate::common::tunnels::{BOB, Publisher, TunnelFixture, http_server};

fn url_name(line: &str) -> String {
    let url = line.split("http tunnel: ").nth(1).expect("url");
    url.trim_start_matches("http://")
        .split('.')
        .next()
        .expect("name")
        .to_string()
}

/// `bob+strict` asks for `spec`; asserts the client is refused and bob publishes nothing.
async fn strict_bob_is_refused(f: &TunnelFixture, spec: &str) {
    let mut bob = Publisher::start(f.client(BOB), "bob+strict", &[spec], &[], false);
    let (status, stderr) = bob
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("bob's strict client exits");
    assert!(!status.success(), "-R {spec} was granted to bob: {stderr}");
    assert!(stderr.contains("forwarding failed"), "{stderr}");
    assert!(f.tunnels_of(BOB).await.is_empty(), "-R {spec}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_user_cannot_take_a_random_name_live_or_after_disconnect() {
    let f = TunnelFixture::start().await;
    let alice_port = http_server("alice's random site").await;
    let bob_port = http_server("bob's site").await;
    let mut alice = Publisher::start(
        f.client(ALICE),
        ALICE,
        &[&format!("80:127.0.0.1:{alice_port}")],
        &[],
        true,
    );
    let name = url_name(&alice.expect_line("http tunnel: ").await);

    // Live: bob asking for it falls back to a random name of his own.
    let spec = format!("{name}:80:127.0.0.1:{bob_port}");
    let mut bob = Publisher::start(f.client(BOB), BOB, &[&spec], &[], true);
    let note = bob.expect_line(&format!("requested name {name}")).await;
    assert!(note.contains("not available (taken)"), "{note}");
    let bobs = url_name(&bob.expect_line("http tunnel: ").await);
    assert_ne!(bobs, name);
    drop(bob);
    let held = f.get(&name, 80).await.expect("alice's tunnel");
    assert_eq!(held.username, ALICE);
    assert!(f.http_get(&held).await.ends_with("alice's random site"));

    // Live, strict: refused on the same port and as a private alias on another one.
    strict_bob_is_refused(&f, &spec).await;
    strict_bob_is_refused(&f, &format!("{name}:3000:127.0.0.1:{bob_port}")).await;

    // After alice disconnects the name is still hers.
    alice.child.kill().await.expect("kill alice");
    assert!(f.wait_gone(&name, 80, Duration::from_secs(10)).await);
    strict_bob_is_refused(&f, &spec).await;
    let mut bob = Publisher::start(f.client(BOB), BOB, &[&spec], &[], true);
    let note = bob.expect_line(&format!("requested name {name}")).await;
    assert!(note.contains("not available (taken)"), "{note}");
    assert_ne!(url_name(&bob.expect_line("http tunnel: ").await), name);
    assert!(f.get(&name, 80).await.is_none());

    // Alice, back, gets her name again.
    let mine = format!("{name}:80:127.0.0.1:{alice_port}");
    let _alice = Publisher::start(f.client(ALICE), ALICE, &[&mine], &[], false);
    let list = f.wait_tunnels(ALICE, 1).await;
    assert_eq!(list[0].name, name);
}
