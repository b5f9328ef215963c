//! The target client against a real OpenSSH sshd (and against hostile fake servers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use phirepass_ssh_target::{
    Credentials, HostKeyError, HostKeyPolicy, HostKeyTrust, TargetError, TargetSpec, connect,
    handshake,
};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};
use russh::ChannelMsg;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

fn spec(password: &str) -> TargetSpec {
    TargetSpec::new("web-1", TEST_USER, Credentials::Password(password.into()))
}

async fn run(session: &phirepass_ssh_target::TargetSession, command: &str) -> (String, u32) {
    let mut channel = session.handle.channel_open_session().await.unwrap();
    channel.exec(true, command).await.unwrap();
    let (mut out, mut status) = (Vec::new(), u32::MAX);
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => out.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = exit_status,
            _ => {}
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), status)
}

#[tokio::test]
async fn password_login_then_pinned_match_and_mismatch() {
    let sshd = TestSshd::start().await.unwrap();
    let tcp = TcpStream::connect(sshd.addr).await.unwrap();
    let session = connect(tcp, &spec(TEST_PASSWORD)).await.unwrap();
    assert_eq!(session.trust, HostKeyTrust::AcceptedUnpinned);
    assert!(session.host_key.fingerprint.starts_with("SHA256:"));
    let (out, status) = run(&session, "echo hello; exit 3").await;
    assert_eq!((out.as_str(), status), ("hello\n", 3));

    let mut pinned = spec(TEST_PASSWORD);
    pinned.pinned_host_key = Some(session.host_key.openssh.clone());
    pinned.policy = HostKeyPolicy::Reject;
    let again = connect(TcpStream::connect(sshd.addr).await.unwrap(), &pinned)
        .await
        .unwrap();
    assert_eq!(again.trust, HostKeyTrust::Pinned);

    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEMuRtum+t1kOyjud4SWkbKXLpx6ghJ6ILX2119eWqSV";
    pinned.pinned_host_key = Some(other.into());
    let err = connect(TcpStream::connect(sshd.addr).await.unwrap(), &pinned)
        .await
        .err()
        .expect("a mismatched key is refused");
    let msg = err.to_string();
    assert!(
        matches!(err, TargetError::HostKey(HostKeyError::Mismatch { .. })),
        "{msg}"
    );
    assert!(msg.contains(&session.host_key.fingerprint), "{msg}");
    assert!(msg.contains("SHA256:"), "{msg}");

    let mut reject = spec(TEST_PASSWORD);
    reject.policy = HostKeyPolicy::Reject;
    let err = connect(TcpStream::connect(sshd.addr).await.unwrap(), &reject)
        .await
        .err()
        .expect("unknown keys refused under reject");
    assert!(err.to_string().contains(&session.host_key.fingerprint));
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let sshd = TestSshd::start().await.unwrap();
    let tcp = TcpStream::connect(sshd.addr).await.unwrap();
    let err = connect(tcp, &spec("not-the-password")).await.err().unwrap();
    assert!(matches!(err, TargetError::AuthRejected { .. }), "{err}");
}

/// The browser terminal's two steps: the key is verified before any credentials exist, and the
/// login follows on the same connection.
#[tokio::test]
async fn handshake_verifies_the_key_before_the_login() {
    let sshd = TestSshd::start().await.unwrap();
    let mut check = spec("");
    check.policy = HostKeyPolicy::Reject;
    let refused = handshake(TcpStream::connect(sshd.addr).await.unwrap(), &check)
        .await
        .err()
        .expect("unknown key refused at the handshake");
    assert!(
        matches!(refused, TargetError::HostKey(HostKeyError::Unknown { .. })),
        "{refused}"
    );

    check.policy = HostKeyPolicy::AcceptOnce;
    let first = handshake(TcpStream::connect(sshd.addr).await.unwrap(), &check)
        .await
        .unwrap();
    assert_eq!(first.trust, HostKeyTrust::AcceptedUnpinned);
    assert!(first.is_open());
    check.pinned_host_key = Some(first.host_key.openssh.clone());
    check.policy = HostKeyPolicy::Reject;
    let wrong = first
        .login(&spec("not-the-password"))
        .await
        .err()
        .expect("wrong password");
    assert!(matches!(wrong, TargetError::AuthRejected { .. }), "{wrong}");

    let pinned = handshake(TcpStream::connect(sshd.addr).await.unwrap(), &check)
        .await
        .unwrap();
    assert_eq!(pinned.trust, HostKeyTrust::Pinned);
    let session = pinned.login(&spec(TEST_PASSWORD)).await.unwrap();
    assert_eq!(
        run(&session, "echo two-step").await,
        ("two-step\n".into(), 0)
    );
}

#[tokio::test]
async fn passphrase_protected_key_logs_in() {
    let sshd = TestSshd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let ok = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "open sesame",
            "-C",
            "target-test",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let home = format!("/home/{TEST_USER}/.ssh");
    std::fs::create_dir_all(&home).unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(format!("{home}/authorized_keys"))
        .unwrap()
        .write_all(public.as_bytes())
        .unwrap();
    let private = std::fs::read_to_string(&key).unwrap();

    let mut with_key = spec("");
    with_key.credentials = Credentials::Key {
        openssh: private.clone(),
        passphrase: Some("open sesame".into()),
    };
    let session = connect(TcpStream::connect(sshd.addr).await.unwrap(), &with_key)
        .await
        .unwrap();
    assert_eq!(run(&session, "whoami").await.0.trim(), TEST_USER);

    with_key.credentials = Credentials::Key {
        openssh: private,
        passphrase: Some("wrong".into()),
    };
    let err = connect(TcpStream::connect(sshd.addr).await.unwrap(), &with_key)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, TargetError::Credentials(_)), "{err}");
    assert!(!err.to_string().contains("open sesame"));
}

/// A fake server: `behaviour` runs on every accepted socket.
async fn fake_server(endless_banner: bool) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                if endless_banner {
                    let line = [b'x'; 200];
                    loop {
                        if socket.write_all(&line).await.is_err()
                            || socket.write_all(b"\r\n").await.is_err()
                        {
                            break;
                        }
                    }
                } else {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    drop(socket);
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn endless_banner_and_silent_peer_cost_bounded_time() {
    for endless in [true, false] {
        let addr = fake_server(endless).await;
        let mut s = spec(TEST_PASSWORD);
        s.setup_timeout = Duration::from_secs(1);
        let started = Instant::now();
        let err = connect(TcpStream::connect(addr).await.unwrap(), &s)
            .await
            .err()
            .unwrap();
        if endless {
            // russh reads a bounded number of non-version lines, then gives up.
            assert!(matches!(err, TargetError::NotSsh { .. }), "{err}");
            assert!(err.to_string().contains("no SSH version line"), "{err}");
        } else {
            assert!(matches!(err, TargetError::Timeout { .. }), "{err}");
            assert!(err.to_string().contains("within 1s"), "{err}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}

/// Answers every prompt with one text and remembers the prompts it saw.
struct Answer(String, std::sync::Mutex<Vec<String>>);

impl phirepass_ssh_target::KbiResponder for Answer {
    fn respond<'a>(
        &'a self,
        round: &'a phirepass_ssh_target::KbiRound,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<String>>> + Send + 'a>> {
        let mut seen = self.1.lock().unwrap();
        seen.extend(round.prompts.iter().map(|(p, _)| p.clone()));
        let answers = round.prompts.iter().map(|_| self.0.clone()).collect();
        Box::pin(async move { Some(answers) })
    }
}

impl phirepass_ssh_target::HostKeyPrompt for Answer {
    fn confirm<'a>(
        &'a self,
        _target: &'a str,
        key: &'a phirepass_ssh_target::HostKeyInfo,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        self.1.lock().unwrap().push(key.fingerprint.clone());
        let yes = self.0 == "yes";
        Box::pin(async move { yes })
    }
}

#[tokio::test]
async fn keyboard_interactive_answers_fall_back_to_the_password_method() {
    // TestSshd offers only `password`: the responder is asked for it as OpenSSH would.
    let sshd = TestSshd::start().await.unwrap();
    let right = std::sync::Arc::new(Answer(TEST_PASSWORD.into(), Default::default()));
    let spec = TargetSpec::new(
        "web-1",
        TEST_USER,
        Credentials::KeyboardInteractive(right.clone()),
    );
    let session = connect(TcpStream::connect(sshd.addr).await.unwrap(), &spec)
        .await
        .unwrap();
    let (out, status) = run(&session, "echo kbi").await;
    assert_eq!((out.as_str(), status), ("kbi\n", 0));
    assert_eq!(
        *right.1.lock().unwrap(),
        vec![format!("{TEST_USER}@web-1's password: ")]
    );

    let wrong = std::sync::Arc::new(Answer("wrong".into(), Default::default()));
    let spec = TargetSpec::new("web-1", TEST_USER, Credentials::KeyboardInteractive(wrong));
    let err = connect(TcpStream::connect(sshd.addr).await.unwrap(), &spec)
        .await
        .err()
        .expect("a wrong answer is refused");
    assert!(matches!(err, TargetError::AuthRejected { .. }), "{err}");
}

#[tokio::test]
async fn prompt_policy_asks_with_the_fingerprint() {
    let sshd = TestSshd::start().await.unwrap();
    for (answer, accepted) in [("no", false), ("yes", true)] {
        let asker = std::sync::Arc::new(Answer(answer.into(), Default::default()));
        let mut s = spec(TEST_PASSWORD);
        s.policy = HostKeyPolicy::Prompt(asker.clone());
        let result = connect(TcpStream::connect(sshd.addr).await.unwrap(), &s).await;
        let asked = asker.1.lock().unwrap().clone();
        assert_eq!(asked.len(), 1);
        assert!(asked[0].starts_with("SHA256:"), "{asked:?}");
        match result {
            Ok(session) => {
                assert!(accepted);
                assert_eq!(session.trust, HostKeyTrust::AcceptedUnpinned);
                assert_eq!(session.host_key.fingerprint, asked[0]);
            }
            Err(err) => {
                assert!(!accepted);
                assert!(
                    matches!(err, TargetError::HostKey(HostKeyError::Declined { .. })),
                    "{err}"
                );
            }
        }
    }
}

/// A server that only speaks NIST ECDH (an old appliance, say) is refused by the default
/// policy and reached only when its target is marked insecure.
#[tokio::test]
async fn a_legacy_only_server_needs_the_insecure_flag() {
    let sshd = TestSshd::start_with("KexAlgorithms ecdh-sha2-nistp256\n")
        .await
        .unwrap();
    let err = connect(
        TcpStream::connect(sshd.addr).await.unwrap(),
        &spec(TEST_PASSWORD),
    )
    .await
    .err()
    .expect("no common key exchange under the default policy");
    assert!(matches!(err, TargetError::Protocol(_)), "{err}");
    let mut insecure = spec(TEST_PASSWORD);
    insecure.insecure = true;
    let session = connect(TcpStream::connect(sshd.addr).await.unwrap(), &insecure)
        .await
        .unwrap();
    assert_eq!(run(&session, "echo legacy").await, ("legacy\n".into(), 0));
}
