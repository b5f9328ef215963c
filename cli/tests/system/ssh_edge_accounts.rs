//! Which account on the target, with the real OpenSSH client: `USER:TARGET:ACCOUNT` logs in as
//! that account (typing its password when the vault's login is another account's), grants
//! list the accounts a user may use, a refused account is named with the exact logins to type,
//! and an unknown, offline or unreachable node is reported before any password prompt.

use crate::common::*;
use crate::ssh_edge_passthrough::{prompts, ssh_answering};
use phirepass_proto::authz::{GrantRequest, PrincipalKind};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER};

/// A host on the fixture's sshd whose vault names another account and stores no secret.
const OTHER: &str = "web-other";

/// Grants `target` to alice as `logins` (empty: the default account only).
pub(crate) async fn grant_logins(f: &EdgeFixture, target: &str, logins: &[&str]) {
    f.cluster
        .authz()
        .grant(GrantRequest {
            principal_kind: PrincipalKind::User as i32,
            principal: ALICE.into(),
            target: target.into(),
            logins: logins.iter().map(|l| l.to_string()).collect(),
            ..Default::default()
        })
        .await
        .expect("grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explicit_account_reaches_the_target_as_that_account() {
    let f = EdgeFixture::start(|_| {}).await;
    f.cluster.add_host(OTHER, f.host_sshd.addr).await;
    f.cluster.set_option(OTHER, "auth.username", "svc").await;
    grant_logins(&f, OTHER, &["svc", TEST_USER]).await;

    // The vault's login is svc's: for pptest the target asks pptest's own password.
    let alice = f.alice();
    let login = format!("{ALICE}:{OTHER}:{TEST_USER}");
    let out = run(ssh_answering(&alice, &login, TEST_PASSWORD, &["whoami"])).await;
    assert_eq!(
        text(&out.stdout),
        format!("{TEST_USER}\n"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        prompts(&alice).contains(&format!("{TEST_USER}@{OTHER}'s password:")),
        "{}",
        prompts(&alice)
    );

    // The vault's own account: its stored password, no prompt (BatchMode), scp and sftp too.
    grant_logins(&f, HOST, &[TEST_USER, "deploy"]).await;
    let login = format!("{ALICE}:{HOST}:{TEST_USER}");
    let out = f.alice().ssh(&login, &["whoami"]).await;
    assert_eq!(
        text(&out.stdout),
        format!("{TEST_USER}\n"),
        "{}",
        text(&out.stderr)
    );
    let sftp = f.alice().sftp(&login, "pwd\n").await;
    assert!(sftp.status.success(), "{}", text(&sftp.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn account_outside_the_grant_is_refused_naming_it_and_the_choices() {
    let f = EdgeFixture::start(|_| {}).await;
    // No logins on the grant: only the default account (the vault's pptest).
    let alice = f.alice();
    let out = run(ssh_answering(
        &alice,
        &format!("{ALICE}:{HOST}:root"),
        TEST_PASSWORD,
        &["true"],
    ))
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("you may not log in to {HOST} as \"root\"")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("`{ALICE}:{HOST}`")), "{stderr}");
    assert_eq!(prompts(&alice), "", "no password was asked");

    // With logins: the refusal lists them as logins to type.
    grant_logins(&f, HOST, &["deploy", TEST_USER]).await;
    let out = f
        .alice()
        .ssh(&format!("{ALICE}:{HOST}:root"), &["true"])
        .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("as \"root\""), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "`{ALICE}:{HOST}:deploy` or `{ALICE}:{HOST}:{TEST_USER}`"
        )),
        "{stderr}"
    );
    // The refusal is audited with the account.
    let events = f.cluster.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "login not allowed" && e["login"] == "root"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn target_refusal_names_the_account_and_how_to_choose_another() {
    let f = EdgeFixture::start(|_| {}).await;
    f.cluster.add_host(OTHER, f.host_sshd.addr).await;
    f.cluster
        .set_option(OTHER, "auth.username", TEST_USER)
        .await;
    grant_logins(&f, OTHER, &[TEST_USER, "deploy"]).await;
    let alice = f.alice();
    let out = run(ssh_answering(
        &alice,
        &format!("{ALICE}:{OTHER}"),
        "not-the-password",
        &["true"],
    ))
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains(&format!("{OTHER} refused the"))
            && stderr.contains(&format!("as \"{TEST_USER}\"")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("log in as `{ALICE}:{OTHER}:deploy`")),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_offline_or_closed_node_is_reported_before_any_password_prompt() {
    let f = EdgeFixture::start(|_| {}).await;
    // Unknown target.
    let alice = f.alice();
    let out = run(ssh_answering(
        &alice,
        &format!("{ALICE}:nowhere"),
        "x",
        &["true"],
    ))
    .await;
    assert!(
        text(&out.stderr).contains("target nowhere does not exist"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(prompts(&alice), "");

    // A node without a stored login (the target would ask a password) whose agent is gone.
    f.cluster.node_token(ALICE, "node-off").await;
    f.cluster
        .set_option("node-off", "auth.username", TEST_USER)
        .await;
    let alice = f.alice();
    let out = run(ssh_answering(
        &alice,
        &format!("{ALICE}:node-off"),
        "x",
        &["true"],
    ))
    .await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("node-off is offline"), "{stderr}");
    assert_eq!(prompts(&alice), "", "asked before reporting: {stderr}");

    // A node whose agent runs but whose sshd does not listen.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (token, _) = f.cluster.node_token(ALICE, "node-closed").await;
    f.cluster
        .set_option("node-closed", "auth.username", TEST_USER)
        .await;
    let _agent = start_agent(&f.cluster.gateways[0].addr, &token, closed);
    f.wait_node_online("node-closed").await;
    let alice = f.alice();
    let out = run(ssh_answering(
        &alice,
        &format!("{ALICE}:node-closed"),
        "x",
        &["true"],
    ))
    .await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("node-closed"), "{stderr}");
    assert_eq!(prompts(&alice), "", "asked before reporting: {stderr}");
}
