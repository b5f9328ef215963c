//! Hostile peers cost bounded time and memory and never affect other sessions: stalled
//! unauthenticated sockets, a target with an endless banner, a target that drops mid-transfer.
//! Kicks end a held session.

use std::time::{Duration, Instant};

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_stalled_sockets_do_not_delay_a_real_login() {
    let f = EdgeFixture::start(|c| c.auth_deadline = Duration::from_secs(3)).await;
    let mut stalled = Vec::new();
    for _ in 0..200 {
        stalled.push(TcpStream::connect(f.edge.addr).await.unwrap());
    }
    let alice = f.alice();
    let started = Instant::now();
    let out = alice.ssh(&format!("{ALICE}:{HOST}"), &["true"]).await;
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(2), "login took {took:?}");

    // The pre-auth deadline closes them: each read ends (banner then EOF) within ~3 s.
    let deadline = Instant::now() + Duration::from_secs(8);
    for socket in stalled.iter_mut().take(20) {
        let mut sink = Vec::new();
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, socket.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "a stalled socket outlived the deadline");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_connections_beyond_the_cap_are_closed_at_once() {
    let f = EdgeFixture::start(|c| c.max_unauthenticated = 10).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(f.edge.addr).await.unwrap();
        let mut banner = [0u8; 8];
        s.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"SSH-2.0-");
        held.push(s);
    }
    let mut extra = TcpStream::connect(f.edge.addr).await.unwrap();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut sink)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "over the cap: closed without a banner"
    );
    drop(held);
    // Slots come back as the stalled connections go.
    let mut ok = false;
    for _ in 0..20 {
        let out = f.alice().ssh(&format!("{ALICE}:{HOST}"), &["true"]).await;
        if out.status.success() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "logins work again once slots are free");
}

/// A "target" that sends banner lines forever.
async fn tarpit() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let line = [b'x'; 250];
                while socket.write_all(&line).await.is_ok()
                    && socket.write_all(b"\r\n").await.is_ok()
                {}
            });
        }
    });
    addr
}

/// A TCP proxy to `upstream` that cuts the connection after `limit` bytes toward the client.
async fn dropper(upstream: std::net::SocketAddr, limit: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
                let mut sent = 0usize;
                let mut buf = vec![0u8; 16 * 1024];
                while sent < limit {
                    let Ok(n) = sr.read(&mut buf).await else {
                        break;
                    };
                    if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    sent += n;
                }
                up.abort();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endless_banner_and_mid_transfer_drop_fail_cleanly_without_hurting_others() {
    let f = EdgeFixture::start(|c| c.target_timeout = Duration::from_secs(2)).await;
    let pit = tarpit().await;
    let cut = dropper(f.host_sshd.addr, 2 * 1024 * 1024).await;
    for (name, addr) in [("tarpit", pit), ("dropper", cut)] {
        f.cluster.add_host(name, addr).await;
        f.cluster.grant(ALICE, name).await;
        f.cluster.set_password_login(name).await;
    }
    let alice = f.alice();
    // A healthy long session runs alongside the failures.
    let healthy = alice.ssh_command(
        &format!("{ALICE}:{HOST}"),
        &[],
        &["sleep 4; echo still-here"],
    );
    let healthy = tokio::spawn(run(healthy));

    let started = Instant::now();
    let out = alice.ssh(&format!("{ALICE}:tarpit"), &["true"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tarpit did not complete the ssh handshake"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let out = alice
        .ssh(
            &format!("{ALICE}:dropper"),
            &["head -c 200000000 /dev/zero"],
        )
        .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains("the connection to dropper was lost"),
        "{stderr}"
    );
    assert!(out.stdout.len() < 3 * 1024 * 1024, "{}", out.stdout.len());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let healthy = healthy.await.unwrap();
    assert_eq!(
        text(&healthy.stdout),
        "still-here\n",
        "{}",
        text(&healthy.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kick_ends_the_session_it_names() {
    let f = EdgeFixture::start(|_| {}).await;
    let alice = f.alice();
    let long = tokio::spawn(run(alice.ssh_command(
        &format!("{ALICE}:{HOST}"),
        &[],
        &["sleep 30"],
    )));
    let registry = f.cluster.registry();
    let mut session = None;
    for _ in 0..100 {
        let listed = registry
            .clone()
            .list_sessions(phirepass_proto::registry::ListSessionsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .sessions;
        if let Some(s) = listed.into_iter().next() {
            session = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let session = session.expect("the relay session is registered");
    assert_eq!(session.edge_kind, "ssh");
    assert_eq!(session.target_name, HOST);
    assert_eq!(session.client_ip, "127.0.0.1");
    assert_eq!(session.username, ALICE);
    assert_eq!(session.gateway_id, f.edge.id);
    let started = Instant::now();
    let subject = phirepass_ssh_edge::kick_subject(&f.cluster.prefix);
    f.cluster
        .bus()
        .publish(
            &subject,
            Vec::new(),
            session.session_id.clone().into_bytes().into(),
        )
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(3), long)
        .await
        .expect("kicked in time")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(out.status.code(), Some(0));
}
