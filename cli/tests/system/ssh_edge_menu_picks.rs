//! The management screen's picks in a real terminal: it asks which account when alice's grants
//! list several, and a pick that fails (a wrong password, an unreachable host, an offline
//! node) comes back to the menu with the reason instead of closing the connection.

use crate::common::*;
use crate::ssh_edge_accounts::grant_logins;
use crate::ssh_edge_passthrough::menu_number;
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER};

/// A host on the fixture's sshd whose vault names pptest and stores no secret.
const BARE: &str = "web-bare";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn menu_asks_the_account_when_the_grant_lists_several() {
    let f = EdgeFixture::start(|_| {}).await;
    f.cluster.add_host(BARE, f.host_sshd.addr).await;
    f.cluster.set_option(BARE, "auth.username", "svc").await;
    grant_logins(&f, BARE, &["svc", TEST_USER]).await;
    let n = menu_number(&f, BARE).await;
    let steps = serde_json::json!([
        ["expect", "pick a target"],
        ["send", format!("{n}\r")],
        [
            "expect",
            format!("Log in to {BARE} as which account? (svc, {TEST_USER};")
        ],
        ["send", format!("{TEST_USER}\r")],
        ["expect", format!("connecting to {BARE} as {TEST_USER}")],
        ["expect", format!("{TEST_USER}@{BARE}'s password: ")],
        ["send", format!("{TEST_PASSWORD}\r")],
        ["expect", "$ "],
        ["send", "echo I-am-$(whoami)\n"],
        ["expect", format!("I-am-{TEST_USER}")],
        ["send", "exit 4\n"],
    ]);
    let out = drive_pty(&f.alice(), ALICE, steps).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_picks_return_to_the_menu_with_the_reason() {
    let f = EdgeFixture::start(|_| {}).await;
    f.cluster.add_host(BARE, f.host_sshd.addr).await;
    f.cluster.set_option(BARE, "auth.username", TEST_USER).await;
    grant_logins(&f, BARE, &[]).await;
    // A host nothing listens on, with a stored login.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    f.cluster.add_host("dead", closed).await;
    f.cluster.set_password_login("dead").await;
    grant_logins(&f, "dead", &[]).await;
    // bob's node, granted to alice with several logins, whose agent is not connected.
    f.cluster.add_user("bob", "bob-Password-1").await;
    f.cluster.node_token("bob", "node-off").await;
    grant_logins(&f, "node-off", &["svc", TEST_USER]).await;
    let (bare, dead, off) = (
        menu_number(&f, BARE).await,
        menu_number(&f, "dead").await,
        menu_number(&f, "node-off").await,
    );
    let steps = serde_json::json!([
        ["expect", "pick a target"],
        // A wrong password: the target's refusal names the account, the menu comes back.
        ["send", format!("{bare}\r")],
        ["expect", "password: "],
        ["send", "not-the-password\r"],
        ["expect", "pick a target"],
        ["expect", format!("{BARE} refused the")],
        ["expect", format!("as \"{TEST_USER}\"")],
        // Nothing listens: said at once, back to the menu.
        ["send", format!("{dead}\r")],
        ["expect", "pick a target"],
        ["expect", "cannot connect to dead"],
        // Offline: said before any question.
        ["send", format!("{off}\r")],
        ["expect", "pick a target"],
        ["expect", "node-off is offline"],
        // Still a working menu: the right password gets a shell.
        ["send", format!("{bare}\r")],
        ["expect", "password: "],
        ["send", format!("{TEST_PASSWORD}\r")],
        ["expect", "$ "],
        ["send", "exit 6\n"],
    ]);
    let out = drive_pty(&f.alice(), ALICE, steps).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(!shown.contains("not-the-password"), "{shown}");
    assert!(!shown.contains("Log in to node-off as"), "{shown}");
}
