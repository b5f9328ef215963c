//! Per-source limits before authentication (issue #9 finding 7), with the production defaults
//! (`PerSourceLimits::default()`): one address holding idle connections, or failing to log
//! in, is refused and penalised while another address (127.0.0.2, ... : loopback aliases)
//! still logs in with the real OpenSSH client.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;
use phirepass_ssh_edge::PerSourceLimits;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A raw TCP connection to `edge` from `source` (a 127.0.0.x alias).
async fn connect_from(source: [u8; 4], edge: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback alias");
    socket.connect(edge).await.unwrap()
}

/// The first bytes the edge sends: its banner, a refusal line, or nothing (closed).
async fn greeting(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let mut got = Vec::new();
    // A banner or a refusal line ends with "\r\n"; a bare close ends the read with 0.
    while !got.ends_with(b"\r\n") {
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the edge sent no greeting within 3 s"),
        }
    }
    got
}

async fn alice_from(f: &EdgeFixture, source: &str) -> std::process::Output {
    run(f
        .alice()
        .ssh_command(&format!("{ALICE}:{HOST}"), &["-b", source], &["true"]))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_source_filling_the_unauthenticated_slots_does_not_lock_out_another() {
    let f = EdgeFixture::start(|c| {
        c.per_source = PerSourceLimits::default();
        // The global cap is above one source's share (10) and below what it tries (30).
        c.max_unauthenticated = 16;
        c.auth_deadline = Duration::from_secs(3);
    })
    .await;
    let (mut held, mut refused) = (Vec::new(), 0);
    for _ in 0..30 {
        let mut s = connect_from([127, 0, 0, 1], f.edge.addr).await;
        let first = greeting(&mut s).await;
        if first.starts_with(b"SSH-2.0-") {
            held.push(s);
        } else {
            assert!(
                first.starts_with(b"phirepass: too many"),
                "refused with a reason line: {:?}",
                text(&first)
            );
            refused += 1;
        }
    }
    assert_eq!(held.len(), 10, "one source gets its share of slots");
    assert_eq!(refused, 20);

    // Another address logs in while the first still holds its slots.
    let out = alice_from(&f, "127.0.0.2").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The flooding address is refused before any key exchange.
    let out = alice_from(&f, "127.0.0.1").await;
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));

    // Its idle connections overstay the deadline and are closed; it stays penalised.
    for s in held.iter_mut() {
        let mut sink = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "an idle connection outlived the deadline");
    }
    let mut s = connect_from([127, 0, 0, 1], f.edge.addr).await;
    let first = greeting(&mut s).await;
    assert!(
        first.starts_with(b"phirepass: too many failed or incomplete logins"),
        "{:?}",
        text(&first)
    );
    let out = alice_from(&f, "127.0.0.1").await;
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    let out = alice_from(&f, "127.0.0.2").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_logins_penalise_their_source_and_no_other() {
    let f = EdgeFixture::start(|c| c.per_source = PerSourceLimits::default()).await;
    // Wrong passwords (for a name nobody has, so authz locks no real account) from .3.
    let guesser = SshClient::with_password(f.edge.addr.port(), "not-the-password");
    for attempt in 0..5 {
        let out = run(guesser.ssh_command("mallory", &["-b", "127.0.0.3"], &["true"])).await;
        assert_eq!(out.status.code(), Some(255), "attempt {attempt}");
    }
    // Now even a right key from .3 is refused before the key exchange ...
    let mut s = connect_from([127, 0, 0, 3], f.edge.addr).await;
    let first = greeting(&mut s).await;
    assert!(
        first.starts_with(b"phirepass: too many failed or incomplete logins"),
        "{:?}",
        text(&first)
    );
    let out = alice_from(&f, "127.0.0.3").await;
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    // ... while alice logs in from anywhere else.
    let out = alice_from(&f, "127.0.0.4").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = alice_from(&f, "127.0.0.1").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}
