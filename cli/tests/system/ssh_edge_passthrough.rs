//! Login-time passthrough: with no login stored in the vault, the target's password prompt is
//! relayed to the user as keyboard-interactive after she is verified, and her answer reaches
//! the real sshd; `SSH_EDGE_UNKNOWN_HOSTKEY=prompt` asks her about an unpinned host key (pinned
//! on "yes", refused on "no"). Real OpenSSH client, real sshd targets.

use crate::common::*;
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER};

/// A direct host on the fixture's sshd whose vault entry names the account but no secret.
const BARE: &str = "web-bare";

async fn bare_target(f: &EdgeFixture) {
    f.cluster.add_host(BARE, f.host_sshd.addr).await;
    f.cluster.grant(ALICE, BARE).await;
    f.cluster.set_option(BARE, "auth.username", TEST_USER).await;
}

/// The client's options with keyboard-interactive allowed after the key (a person at a
/// terminal, not BatchMode).
fn interactive_options(client: &SshClient) -> Vec<String> {
    client
        .options()
        .into_iter()
        .map(|o| match o.as_str() {
            "BatchMode=yes" => "BatchMode=no".to_string(),
            "PreferredAuthentications=publickey" => {
                "PreferredAuthentications=publickey,keyboard-interactive".to_string()
            }
            _ => o,
        })
        .collect()
}

/// `ssh login command` whose every prompt is answered `answer` by an askpass script, which
/// also records the prompts it was shown.
pub(crate) fn ssh_answering(
    client: &SshClient,
    login: &str,
    answer: &str,
    command: &[&str],
) -> tokio::process::Command {
    use std::os::unix::fs::PermissionsExt;
    let script = client.dir.path().join("answer");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '%s\\n' \"$1\" >> \"$PP_PROMPTS\"\nprintf '%s\\n' \"$PP_ANSWER\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut c = client.command("ssh");
    c.args(interactive_options(client))
        .args(["-p", &client.port.to_string()])
        .arg(format!("{login}@127.0.0.1"))
        .args(command)
        .env("SSH_ASKPASS", &script)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .env("PP_ANSWER", answer)
        .env("PP_PROMPTS", prompts_file(client));
    c
}

fn prompts_file(client: &SshClient) -> std::path::PathBuf {
    client.dir.path().join("prompts")
}

pub(crate) fn prompts(client: &SshClient) -> String {
    std::fs::read_to_string(prompts_file(client)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_typed_in_a_pty_reaches_the_target() {
    let f = EdgeFixture::start(|_| {}).await;
    bare_target(&f).await;
    let alice = f.alice();
    let steps = serde_json::json!([
        ["expect", format!("{TEST_USER}@{BARE}'s password: ")],
        ["send", format!("{TEST_PASSWORD}\n")],
        ["expect", "$ "],
        ["send", "echo through-$((40+2))\n"],
        ["expect", "through-42"],
        ["send", "exit 3\n"],
    ]);
    let mut c = alice.command("python3");
    c.arg("-c")
        .arg(PTY_DRIVER)
        .arg(steps.to_string())
        .arg("ssh")
        .args(interactive_options(&alice))
        .args(["-p", &alice.port.to_string(), "-tt"])
        .arg(format!("{ALICE}:{BARE}@127.0.0.1"));
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // The secret never shows on the terminal (hidden prompt).
    assert!(!text(&out.stdout).contains(TEST_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_right_password_works_and_wrong_one_is_refused_clearly() {
    let f = EdgeFixture::start(|_| {}).await;
    bare_target(&f).await;
    let login = format!("{ALICE}:{BARE}");

    let alice = f.alice();
    let ok = run(ssh_answering(
        &alice,
        &login,
        TEST_PASSWORD,
        &["echo", "hello;", "exit", "5"],
    ))
    .await;
    assert_eq!(ok.status.code(), Some(5), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout), "hello\n");
    assert!(
        prompts(&alice).contains(&format!("{TEST_USER}@{BARE}'s password:")),
        "{}",
        prompts(&alice)
    );

    let alice = f.alice();
    let bad = run(ssh_answering(
        &alice,
        &login,
        "not-the-password",
        &["echo", "never"],
    ))
    .await;
    let stderr = text(&bad.stderr);
    assert_eq!(bad.status.code(), Some(255), "{stderr}");
    assert_eq!(text(&bad.stdout), "");
    assert!(stderr.contains(&format!("{BARE} refused")), "{stderr}");
    assert!(stderr.contains(TEST_USER), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");

    // Targets with a stored login are not affected: no prompt, BatchMode works.
    let stored = f
        .alice()
        .ssh(&format!("{ALICE}:{HOST}"), &["echo", "ok"])
        .await;
    assert_eq!(text(&stored.stdout), "ok\n", "{}", text(&stored.stderr));
}

/// The sshd's ed25519 key line and its SHA256 fingerprint, as OpenSSH tools see them.
fn host_key(addr: std::net::SocketAddr) -> (String, String) {
    let out = std::process::Command::new("ssh-keyscan")
        .args(["-t", "ed25519", "-p", &addr.port().to_string(), "127.0.0.1"])
        .output()
        .unwrap();
    let line = text(&out.stdout)
        .lines()
        .find(|l| l.contains("ssh-ed25519"))
        .unwrap()
        .split_once(' ')
        .unwrap()
        .1
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.pub");
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&file)
        .output()
        .unwrap();
    let fp = text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    (line, fp)
}

async fn pinned(f: &EdgeFixture, host: &str) -> Option<String> {
    f.cluster
        .secrets()
        .list_options(phirepass_proto::secrets::ListOptionsRequest { host: host.into() })
        .await
        .unwrap()
        .into_inner()
        .options
        .into_iter()
        .find(|o| o.key == "hostkey.openssh")
        .map(|o| o.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prompt_policy_pins_on_yes_and_refuses_on_no() {
    let f = EdgeFixture::start(|c| c.unknown_host_key = phirepass_ssh_edge::UnknownHostKey::Prompt)
        .await;
    let login = format!("{ALICE}:{HOST}");
    let (line, fp) = host_key(f.host_sshd.addr);

    // "no": refused with the key shown, nothing pinned.
    let alice = f.alice();
    let no = run(ssh_answering(&alice, &login, "no", &["echo", "never"])).await;
    let stderr = text(&no.stderr);
    assert_eq!(no.status.code(), Some(255), "{stderr}");
    assert_eq!(text(&no.stdout), "");
    assert!(stderr.contains("was not accepted"), "{stderr}");
    assert!(stderr.contains(&fp), "{stderr}");
    let asked = prompts(&alice);
    assert!(
        asked.contains("ssh-ed25519") && asked.contains(&fp) && asked.contains("(yes/no)"),
        "{asked}"
    );
    assert_eq!(pinned(&f, HOST).await, None);

    // No way to ask (BatchMode): refused, nothing pinned.
    let batch = f.alice().ssh(&login, &["echo", "never"]).await;
    assert_eq!(batch.status.code(), Some(255), "{}", text(&batch.stderr));
    assert_eq!(pinned(&f, HOST).await, None);

    // "yes": the session runs and the key is pinned exactly.
    let alice = f.alice();
    let yes = run(ssh_answering(&alice, &login, "yes", &["echo", "ok"])).await;
    assert_eq!(text(&yes.stdout), "ok\n", "{}", text(&yes.stderr));
    assert!(
        text(&yes.stderr).contains("pinned it now"),
        "{}",
        text(&yes.stderr)
    );
    assert_eq!(pinned(&f, HOST).await.as_deref(), Some(line.as_str()));

    // Pinned now: no question, even in BatchMode.
    let again = f.alice().ssh(&login, &["echo", "again"]).await;
    assert_eq!(text(&again.stdout), "again\n", "{}", text(&again.stderr));
    assert_eq!(text(&again.stderr), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prompt_policy_and_password_passthrough_in_one_login() {
    let f = EdgeFixture::start(|c| c.unknown_host_key = phirepass_ssh_edge::UnknownHostKey::Prompt)
        .await;
    bare_target(&f).await;
    let alice = f.alice();
    let (line, fp) = host_key(f.host_sshd.addr);
    let steps = serde_json::json!([
        ["expect", fp],
        ["expect", "(yes/no): "],
        ["send", "yes\n"],
        ["expect", format!("{TEST_USER}@{BARE}'s password: ")],
        ["send", format!("{TEST_PASSWORD}\n")],
        ["expect", "pinned it now"],
        ["send", "echo both-$((1+1))\n"],
        ["expect", "both-2"],
        ["send", "exit\n"],
    ]);
    let mut c = alice.command("python3");
    c.arg("-c")
        .arg(PTY_DRIVER)
        .arg(steps.to_string())
        .arg("ssh")
        .args(interactive_options(&alice))
        .args(["-p", &alice.port.to_string(), "-tt"])
        .arg(format!("{ALICE}:{BARE}@127.0.0.1"));
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(pinned(&f, BARE).await.as_deref(), Some(line.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forbidden_target_without_a_login_is_never_contacted() {
    let f = EdgeFixture::start(|c| c.unknown_host_key = phirepass_ssh_edge::UnknownHostKey::Prompt)
        .await;
    // Like `bare_target`, but without a grant for alice.
    f.cluster.add_host("bare-secret", f.host_sshd.addr).await;
    f.cluster
        .set_option("bare-secret", "auth.username", TEST_USER)
        .await;
    let alice = f.alice();
    let out = run(ssh_answering(
        &alice,
        &format!("{ALICE}:bare-secret"),
        TEST_PASSWORD,
        &["echo", "never"],
    ))
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(text(&out.stdout), "");
    assert!(
        stderr.contains("target bare-secret does not exist or you may not reach it"),
        "{stderr}"
    );
    // Neither a password prompt nor a host-key question was relayed.
    assert_eq!(prompts(&alice), "");
    assert_eq!(pinned(&f, "bare-secret").await, None);
}

/// The menu's 1-based number of `target` for alice (the menu lists in authz's order).
pub(crate) async fn menu_number(f: &EdgeFixture, target: &str) -> usize {
    let listed = f
        .cluster
        .authz()
        .list_accessible_targets(phirepass_proto::authz::ListAccessibleTargetsRequest {
            username: ALICE.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    let index = listed
        .iter()
        .filter_map(|a| a.target.as_ref())
        .position(|t| t.name == target)
        .expect("target listed");
    assert!(index < 9, "the test picks with one digit");
    index + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn menu_pick_asks_the_targets_password_on_the_terminal() {
    let f = EdgeFixture::start(|c| c.unknown_host_key = phirepass_ssh_edge::UnknownHostKey::Prompt)
        .await;
    bare_target(&f).await;
    let number = menu_number(&f, BARE).await;
    // BatchMode stays on: the questions come on the menu's terminal, not as ssh prompts.
    let alice = f.alice();
    let steps = serde_json::json!([
        ["expect", "pick a target"],
        ["send", format!("{number}\r")],
        ["expect", "(yes/no): "],
        ["send", "maybe\r"],
        ["expect", "maybe"],
        ["expect", "(yes/no): "],
        ["send", "yes\r"],
        ["expect", "password: "],
        ["send", format!("x\x7f{TEST_PASSWORD}\r")],
        ["expect", "$ "],
        ["send", "echo via-menu-$((40+2))\n"],
        ["expect", "via-menu-42"],
        ["send", "exit 3\n"],
    ]);
    let out = drive_pty(&alice, ALICE, steps).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(!shown.contains(TEST_PASSWORD), "the password was echoed");
    assert!(shown.contains("maybe"), "a visible answer is echoed");
    assert!(pinned(&f, BARE).await.is_some(), "accepted host key pinned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn menu_pick_wrong_password_or_ctrl_c_returns_to_the_menu_with_a_clear_message() {
    let f = EdgeFixture::start(|_| {}).await;
    bare_target(&f).await;
    let number = menu_number(&f, BARE).await;
    let alice = f.alice();
    // Pick the target from the menu, answer its password prompt with `typed`, see `then` on
    // the menu that comes back, and quit it.
    let answer = |typed: &str, then: String| {
        drive_pty(
            &alice,
            ALICE,
            serde_json::json!([
                ["expect", "pick a target"],
                ["send", format!("{number}\r")],
                ["expect", "password: "],
                ["send", typed],
                ["expect", "pick a target"],
                ["expect", then],
                ["send", "q"],
            ]),
        )
    };
    let cancelled = answer("\x03", format!("login to {BARE} cancelled")).await;
    assert_eq!(
        cancelled.status.code(),
        Some(0),
        "{}",
        text(&cancelled.stderr)
    );

    let wrong = answer("not-the-password\r", format!("{BARE} refused the")).await;
    assert_eq!(wrong.status.code(), Some(0), "{}", text(&wrong.stderr));
    let shown = text(&wrong.stdout);
    assert!(!shown.contains("not-the-password"), "{shown}");
    assert!(
        shown.contains(TEST_USER),
        "the message names the account: {shown}"
    );
}
