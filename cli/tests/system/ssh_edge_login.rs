//! Logging in to the SSH edge with the real OpenSSH client: public key, password and
//! keyboard-interactive succeed; wrong keys, wrong passwords, unknown users, an offer without a
//! signature and a username switched mid-authentication are refused. The management screen.

use std::sync::Arc;

use crate::common::*;
use russh::client::{self, KeyboardInteractiveAuthResponse};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_password_and_keyboard_interactive_logins() {
    let f = EdgeFixture::start(|_| {}).await;
    let port = f.edge.addr.port();
    let menu = f.alice().ssh(ALICE, &[]).await;
    assert_eq!(menu.status.code(), Some(0), "{}", text(&menu.stderr));
    let listing = text(&menu.stdout);
    assert!(listing.contains("node-1\tnode\tonline"), "{listing}");
    assert!(listing.contains("web-1\thost\tdirect"), "{listing}");

    let password = SshClient::with_password(port, ALICE_PASSWORD);
    let out = password
        .ssh(&format!("{ALICE}:{HOST}"), &["echo", "by-password"])
        .await;
    assert_eq!(text(&out.stdout), "by-password\n", "{}", text(&out.stderr));

    let mut kbi = SshClient::with_password(port, ALICE_PASSWORD);
    kbi.kbi = true;
    let out = kbi
        .ssh(&format!("{ALICE}:{HOST}"), &["echo", "by-kbi"])
        .await;
    assert_eq!(text(&out.stdout), "by-kbi\n", "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_credentials_are_refused() {
    let f = EdgeFixture::start(|_| {}).await;
    let port = f.edge.addr.port();
    let login = format!("{ALICE}:{HOST}");
    let refused = |out: &std::process::Output| {
        out.status.code() == Some(255) && text(&out.stderr).contains("Permission denied")
    };

    let (other_key, _) = new_user_key(f.keys.path(), "stranger");
    let out = SshClient::with_key(port, &other_key)
        .ssh(&login, &["true"])
        .await;
    assert!(refused(&out), "wrong key: {}", text(&out.stderr));

    let out = SshClient::with_password(port, "not-alices-password")
        .ssh(&login, &["true"])
        .await;
    assert!(refused(&out), "wrong password: {}", text(&out.stderr));

    let out = SshClient::with_password(port, ALICE_PASSWORD)
        .ssh(&format!("mallory:{HOST}"), &["true"])
        .await;
    assert!(refused(&out), "unknown user: {}", text(&out.stderr));

    // Only the public half (`-i id.pub`): ssh offers it, gets PK_OK, cannot sign, and must
    // not get in.
    let mut client = SshClient::with_key(port, &f.alice_key);
    std::fs::remove_file(client.key.as_ref().unwrap()).unwrap();
    let public = client.dir.path().join("id.pub");
    std::fs::copy(f.alice_key.with_extension("pub"), &public).unwrap();
    client.key = Some(public);
    client.log_level = "DEBUG1";
    let out = client.ssh(&login, &["true"]).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Server accepts key"),
        "PK_OK expected: {stderr}"
    );
    assert!(refused(&out), "signature-less offer: {stderr}");
}

struct AnyKey;

impl client::Handler for AnyKey {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

async fn step<T>(f: impl std::future::Future<Output = Result<T, russh::Error>>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), f)
        .await
        .expect("auth step timed out")
        .expect("auth step")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn username_change_mid_authentication_resets_the_state() {
    let f = EdgeFixture::start(|_| {}).await;
    let mut session = client::connect(Arc::new(client::Config::default()), f.edge.addr, AnyKey)
        .await
        .unwrap();
    let kbi = |r: &KeyboardInteractiveAuthResponse| {
        matches!(r, KeyboardInteractiveAuthResponse::InfoRequest { .. })
    };
    // A keyboard-interactive round as alice...
    let first = step(session.authenticate_keyboard_interactive_start(ALICE, None::<String>)).await;
    assert!(kbi(&first), "{first:?}");
    let wrong =
        step(session.authenticate_keyboard_interactive_respond(vec!["nope-nope".into()])).await;
    assert!(matches!(
        wrong,
        KeyboardInteractiveAuthResponse::Failure { .. }
    ));
    // ...then the same connection switches to mallory and answers with alice's password:
    // the attempt is checked for mallory only, and refused.
    let switched =
        step(session.authenticate_keyboard_interactive_start("mallory", None::<String>)).await;
    assert!(kbi(&switched), "{switched:?}");
    let answer =
        step(session.authenticate_keyboard_interactive_respond(vec![ALICE_PASSWORD.to_string()]))
            .await;
    assert!(
        matches!(answer, KeyboardInteractiveAuthResponse::Failure { .. }),
        "{answer:?}"
    );
    // Nothing learnt for mallory carries over: alice still logs in cleanly.
    let ok = step(session.authenticate_password(ALICE, ALICE_PASSWORD)).await;
    assert!(matches!(ok, client::AuthResult::Success));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn management_screen_lists_redraws_connects_and_quits() {
    let f = EdgeFixture::start(|_| {}).await;
    let alice = f.alice();
    let quit = drive_pty(
        &alice,
        ALICE,
        json!([
            ["expect", "pick a target"],
            ["expect", "node-1"],
            ["expect", "online"],
            ["expect", "web-1"],
            ["expect", "q: quit"],
            ["resize", 30, 100],
            ["expect", "\u{1b}[30;1H"],
            ["send", "q"],
        ]),
    )
    .await;
    assert_eq!(
        quit.status.code(),
        Some(0),
        "{}{}",
        text(&quit.stdout),
        text(&quit.stderr)
    );

    let connect = drive_pty(
        &alice,
        ALICE,
        json!([
            ["expect", "q: quit"],
            ["send", "j\r"],
            ["expect", "connecting to web-1"],
            ["send", "echo SIZE=$(stty size)=\r"],
            ["expect", "SIZE=24 80="],
            ["send", "exit 3\r"],
        ]),
    )
    .await;
    assert_eq!(
        connect.status.code(),
        Some(3),
        "{}{}",
        text(&connect.stdout),
        text(&connect.stderr)
    );
}
