//! What the edge offers before authentication, checked with real tools: `ssh-audit` (PyPI)
//! against a live edge, Terrapin's strict key exchange read from and tried on a raw socket,
//! and a public-key login whose signature comes from another key (russh client).

use std::time::Duration;

use crate::common::*;
use phirepass_ssh_edge::PerSourceLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs the installed `ssh-audit` with JSON output; fails (never skips) when it is missing.
async fn ssh_audit(port: u16) -> serde_json::Value {
    let out = tokio::process::Command::new("ssh-audit")
        .args(["-j", "-t", "10", "-p", &port.to_string(), "127.0.0.1"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("ssh-audit is required: `python3 -m pip install ssh-audit==3.9.0` ({e})")
        });
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ssh-audit printed no JSON ({e}): {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// Every `fail` and `warn` note, as "section algorithm: note".
fn findings(report: &serde_json::Value, level: &str) -> Vec<String> {
    let mut found = Vec::new();
    for section in ["kex", "key", "enc", "mac"] {
        for alg in report[section].as_array().into_iter().flatten() {
            for note in alg["notes"][level].as_array().into_iter().flatten() {
                found.push(format!("{section} {}: {}", alg["algorithm"], note));
            }
        }
    }
    found
}

const NOT_POST_QUANTUM: &str = "does not provide protection against post-quantum attacks";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ssh_audit_finds_no_failure_and_no_warning() {
    let f = EdgeFixture::start(|c| c.per_source = PerSourceLimits::default()).await;
    let report = ssh_audit(f.edge.addr.port()).await;
    let kex: Vec<&str> = report["kex"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["algorithm"].as_str())
        .collect();
    assert_eq!(kex.first(), Some(&"mlkem768x25519-sha256"), "{kex:?}");
    assert!(kex.contains(&"kex-strict-s-v00@openssh.com"), "{kex:?}");
    assert_eq!(findings(&report, "fail"), Vec::<String>::new());
    // The classic fallbacks for clients before OpenSSH 9.9 draw only ssh-audit's
    // post-quantum note; nothing else may be flagged.
    let warnings: Vec<String> = findings(&report, "warn")
        .into_iter()
        .filter(|w| !w.ends_with(&format!("\"{NOT_POST_QUANTUM}\"")))
        .collect();
    assert_eq!(warnings, Vec::<String>::new());
    assert_eq!(
        report["compression"],
        serde_json::json!(["none", "zlib@openssh.com"])
    );
    assert_eq!(report["cves"], serde_json::json!([]));
    // DHEat: a finite-field group is offered, so ssh-audit measured the connection rate.
    let notes = report["additional_notes"].to_string();
    assert!(!notes.contains("DHEat"), "per-source throttling: {notes}");

    // The same edge without per-source limits: ssh-audit does see the DHEat exposure.
    let open = EdgeFixture::start(|c| c.per_source = PerSourceLimits::off()).await;
    let notes = ssh_audit(open.edge.addr.port()).await["additional_notes"].to_string();
    assert!(notes.contains("DHEat"), "the rate test ran: {notes}");

    // Post-quantum only: not a single warning.
    let f = EdgeFixture::start(|c| {
        c.per_source = PerSourceLimits::default();
        c.kex_post_quantum_only = true;
    })
    .await;
    let report = ssh_audit(f.edge.addr.port()).await;
    assert_eq!(findings(&report, "fail"), Vec::<String>::new());
    assert_eq!(findings(&report, "warn"), Vec::<String>::new());
    // The hybrid works end to end (russh), and an OpenSSH client without it is told why.
    let key = russh::keys::load_secret_key(&f.alice_key, None).unwrap();
    assert!(login_signed_by(&f, key).await, "a post-quantum login");
    let mut client = f.alice();
    // OpenSSH reports a failed negotiation at INFO.
    client.log_level = "INFO";
    let out = client.ssh(&format!("{ALICE}:{HOST}"), &["true"]).await;
    let stderr = text(&out.stderr);
    let openssh_has_hybrid = !stderr.contains("no matching key exchange method");
    assert!(
        out.status.success() || !openssh_has_hybrid,
        "OpenSSH before 9.9 cannot negotiate, newer ones log in: {:?} {stderr}",
        out.status
    );
}

/// One unencrypted SSH packet (block size 8, at least 4 bytes of padding).
fn packet(payload: &[u8]) -> Vec<u8> {
    let mut padding = 8 - (5 + payload.len()) % 8;
    if padding < 4 {
        padding += 8;
    }
    let mut p = ((1 + payload.len() + padding) as u32)
        .to_be_bytes()
        .to_vec();
    p.push(padding as u8);
    p.extend_from_slice(payload);
    p.extend(std::iter::repeat_n(0u8, padding));
    p
}

fn name_list(out: &mut Vec<u8>, names: &str) {
    out.extend_from_slice(&(names.len() as u32).to_be_bytes());
    out.extend_from_slice(names.as_bytes());
}

async fn read_packet(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.unwrap();
    let padding = body[0] as usize;
    body[1..body.len() - padding].to_vec()
}

/// Connects, exchanges banners and returns the edge's KEXINIT name-lists.
async fn server_kexinit(addr: std::net::SocketAddr) -> (TcpStream, Vec<Vec<String>>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"SSH-2.0-raw_test\r\n").await.unwrap();
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.push(s.read_u8().await.unwrap());
    }
    assert!(line.starts_with(b"SSH-2.0-"), "{}", text(&line));
    let payload = read_packet(&mut s).await;
    assert_eq!(payload[0], 20, "SSH_MSG_KEXINIT first");
    let mut r = &payload[17..];
    let mut lists = Vec::new();
    for _ in 0..10 {
        let n = u32::from_be_bytes(r[..4].try_into().unwrap()) as usize;
        let names = std::str::from_utf8(&r[4..4 + n]).unwrap();
        lists.push(names.split(',').map(str::to_owned).collect());
        r = &r[4 + n..];
    }
    (s, lists)
}

fn client_kexinit(kex: &str) -> Vec<u8> {
    let mut p = vec![20u8];
    p.extend_from_slice(&[7u8; 16]);
    for list in [
        kex,
        "ssh-ed25519",
        "aes128-ctr",
        "aes128-ctr",
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "none",
        "none",
        "",
        "",
    ] {
        name_list(&mut p, list);
    }
    p.push(0);
    p.extend_from_slice(&[0u8; 4]);
    packet(&p)
}

/// Whether the edge closes the connection within `within` (a DISCONNECT may come first).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(within, s.read_to_end(&mut sink))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terrapin_strict_kex_is_offered_and_enforced() {
    let f = EdgeFixture::start(|_| {}).await;
    let (_, lists) = server_kexinit(f.edge.addr).await;
    let kex = &lists[0];
    assert_eq!(kex[0], "mlkem768x25519-sha256", "{kex:?}");
    assert!(
        kex.iter().any(|k| k == "kex-strict-s-v00@openssh.com"),
        "{kex:?}"
    );
    assert!(kex.iter().any(|k| k == "ext-info-s"), "{kex:?}");
    assert!(
        !kex.iter().any(|k| k.starts_with("ecdh-sha2-nistp")),
        "{kex:?}"
    );
    assert!(!kex.iter().any(|k| k.ends_with("-sha1")), "{kex:?}");
    for macs in &lists[4..6] {
        assert!(
            macs.iter().all(|m| m.ends_with("-etm@openssh.com")),
            "{macs:?}"
        );
    }
    for compression in &lists[6..8] {
        assert_eq!(compression, &["none", "zlib@openssh.com"]);
    }

    // Strict mode: an SSH_MSG_IGNORE before NEWKEYS ends the connection ...
    let ignore = packet(&[2, 0, 0, 0, 0]);
    let (mut strict, _) = server_kexinit(f.edge.addr).await;
    strict
        .write_all(&client_kexinit(
            "curve25519-sha256,kex-strict-c-v00@openssh.com",
        ))
        .await
        .unwrap();
    strict.write_all(&ignore).await.unwrap();
    assert!(
        closed_within(&mut strict, Duration::from_secs(3)).await,
        "strict kex: a message out of place must end the connection"
    );
    // ... which a client without the marker may send (the edge waits for its key exchange).
    let (mut lax, _) = server_kexinit(f.edge.addr).await;
    lax.write_all(&client_kexinit("curve25519-sha256"))
        .await
        .unwrap();
    lax.write_all(&ignore).await.unwrap();
    assert!(
        !closed_within(&mut lax, Duration::from_secs(1)).await,
        "without strict kex the IGNORE is allowed"
    );
}

struct AnyHostKey;

impl russh::client::Handler for AnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Signs the login request with `0`, whatever public key the request names.
struct SignWith(russh::keys::PrivateKey);

impl russh::Signer for SignWith {
    type Error = russh::AgentAuthError;

    fn auth_sign(
        &mut self,
        _key: &russh::keys::agent::AgentIdentity,
        _hash_alg: Option<russh::keys::HashAlg>,
        mut to_sign: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        use russh::keys::signature::Signer as _;
        use russh::keys::ssh_encoding::Encode as _;
        let signature: russh::keys::ssh_key::Signature = self.0.try_sign(&to_sign).unwrap();
        let blob = signature.encode_vec().unwrap();
        to_sign.extend_from_slice(&(blob.len() as u32).to_be_bytes());
        to_sign.extend_from_slice(&blob);
        async move { Ok(to_sign) }
    }
}

async fn login_signed_by(f: &EdgeFixture, signer: russh::keys::PrivateKey) -> bool {
    let registered = russh::keys::load_secret_key(&f.alice_key, None)
        .unwrap()
        .public_key()
        .clone();
    let config = std::sync::Arc::new(russh::client::Config::default());
    let mut handle = russh::client::connect(config, f.edge.addr, AnyHostKey)
        .await
        .unwrap();
    handle
        .authenticate_publickey_with(ALICE, registered, None, &mut SignWith(signer))
        .await
        .unwrap()
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registered_public_key_signed_by_another_key_is_refused() {
    let f = EdgeFixture::start(|_| {}).await;
    let right = russh::keys::load_secret_key(&f.alice_key, None).unwrap();
    assert!(
        login_signed_by(&f, right).await,
        "the harness signs correctly"
    );
    let (other, _) = new_user_key(f.keys.path(), "other");
    let wrong = russh::keys::load_secret_key(&other, None).unwrap();
    assert!(
        !login_signed_by(&f, wrong).await,
        "alice's public key with another key's signature logged in"
    );
}
