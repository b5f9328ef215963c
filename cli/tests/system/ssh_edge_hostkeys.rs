//! Host keys: the edge's own key survives restarts and is shared by instances; target keys are
//! pinned per target (match, mismatch refused with both fingerprints, reject policy).

use crate::common::*;

/// The sshd's ed25519 key line as `ssh-keyscan` sees it.
pub(crate) fn keyscan(addr: std::net::SocketAddr) -> String {
    let out = std::process::Command::new("ssh-keyscan")
        .args(["-t", "ed25519", "-p", &addr.port().to_string(), "127.0.0.1"])
        .output()
        .unwrap();
    let line = text(&out.stdout);
    let line = line
        .lines()
        .find(|l| l.contains("ssh-ed25519"))
        .unwrap()
        .to_string();
    // "[127.0.0.1]:port ssh-ed25519 AAAA..." -> "ssh-ed25519 AAAA..."
    line.split_once(' ').unwrap().1.to_string()
}

pub(crate) fn fingerprint(line: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.pub");
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&file)
        .output()
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
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
async fn pinned_match_mismatch_and_accept_once() {
    let f = EdgeFixture::start(|_| {}).await;
    let alice = f.alice();
    let login = format!("{ALICE}:{HOST}");
    let real = keyscan(f.host_sshd.addr);

    // Accept-once pinned exactly the presented key, per target name.
    assert_eq!(pinned(&f, HOST).await, None);
    let first = alice.ssh(&login, &["true"]).await;
    assert!(
        text(&first.stderr).contains(&fingerprint(&real)),
        "{}",
        text(&first.stderr)
    );
    assert_eq!(pinned(&f, HOST).await.as_deref(), Some(real.as_str()));

    // Pinned match: silent success.
    let again = alice.ssh(&login, &["echo", "ok"]).await;
    assert_eq!(text(&again.stdout), "ok\n");
    assert_eq!(text(&again.stderr), "");

    // Pinned mismatch: refused, both fingerprints shown, the pin untouched.
    let (_, impostor) = new_user_key(f.keys.path(), "impostor");
    let impostor = impostor
        .rsplit_once(' ')
        .map(|(k, _)| k.to_string())
        .unwrap();
    f.cluster
        .set_option(HOST, "hostkey.openssh", &impostor)
        .await;
    let refused = alice.ssh(&login, &["echo", "never"]).await;
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert_eq!(text(&refused.stdout), "");
    assert!(stderr.contains("does not match the pinned key"), "{stderr}");
    assert!(stderr.contains(&fingerprint(&impostor)), "{stderr}");
    assert!(stderr.contains(&fingerprint(&real)), "{stderr}");
    assert_eq!(pinned(&f, HOST).await.as_deref(), Some(impostor.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reject_policy_refuses_unpinned_keys() {
    let f = EdgeFixture::start(|c| c.unknown_host_key = phirepass_ssh_edge::UnknownHostKey::Reject)
        .await;
    let out = f.alice().ssh(&format!("{ALICE}:{HOST}"), &["true"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not pinned"), "{stderr}");
    assert!(
        stderr.contains(&fingerprint(&keyscan(f.host_sshd.addr))),
        "{stderr}"
    );
    assert_eq!(pinned(&f, HOST).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edge_host_key_is_the_same_after_restart_and_across_instances() {
    let f = EdgeFixture::start(|_| {}).await;
    let alice = f.alice();
    let first = alice.ssh(&format!("{ALICE}:{HOST}"), &["true"]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    // A second instance with the same key file: known_hosts from the first must verify.
    let file = f.keys.path().join("edge_host_key");
    let second = f.cluster.start_ssh_edge(&file, |_| {}).await;
    let known = std::fs::read_to_string(alice.known_hosts()).unwrap();
    let key = known
        .lines()
        .next()
        .unwrap()
        .split_once(' ')
        .unwrap()
        .1
        .to_string();
    let other = SshClient::with_key(second.addr.port(), &f.alice_key);
    let pinned_line = format!("[127.0.0.1]:{} {key}\n", second.addr.port());
    std::fs::write(other.known_hosts(), &pinned_line).unwrap();
    // accept-new refuses a changed key, so success means the same key was presented.
    let out = other.ssh(&format!("{ALICE}:{HOST}"), &["true"]).await;
    assert_eq!(
        std::fs::read_to_string(other.known_hosts()).unwrap(),
        pinned_line
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}
