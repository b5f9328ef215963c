//! `ssh -R` tunnels on ssh-edge with the real OpenSSH client: naming (requested, random,
//! taken, strict, another user's reserved name), bytes through a TunnelStream opened from the
//! test like a gateway would, private aliases over `direct-tcpip`, kicks, disconnects and
//! keepalives.
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::tunnels::{BOB, Publisher, TunnelFixture, echo_server, http_server};
use crate::common::{ALICE, SshClient, run, text};
use tokio::io::AsyncWriteExt;

fn is_random_name(name: &str) -> bool {
    name.len() == 10
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn url_name(line: &str) -> String {
    let url = line.split("http tunnel: ").nth(1).expect("url");
    url.trim_start_matches("http://")
        .split('.')
        .next()
        .expect("name")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requested_name_is_granted_and_serves_http() {
    let f = TunnelFixture::start().await;
    let port = http_server("hello from myapp").await;
    let spec = format!("myapp:80:127.0.0.1:{port}");
    let mut alice = Publisher::start(f.client(ALICE), ALICE, &[&spec], &[], false);
    let list = f.wait_tunnels(ALICE, 1).await;
    let t = &list[0];
    assert_eq!(
        (t.name.as_str(), t.port, t.kind.as_str()),
        ("myapp", 80, "http")
    );
    assert!(t.node_id.starts_with("sshr-"), "{}", t.node_id);
    assert_eq!(t.edge_id, f.edge.id);
    for _ in 0..3 {
        let reply = f.http_get(t).await;
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.ends_with("hello from myapp"), "{reply}");
    }
    // A port the session does not publish is refused with a reason, not another tunnel.
    let refused = match f.open_port(t, 81).await {
        Ok(_) => panic!("port 81 opened"),
        Err(e) => e.to_string(),
    };
    assert!(refused.contains("no tunnel on port 81"), "{refused}");
    assert!(alice.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_name_gets_a_random_one_and_the_url_is_printed() {
    let f = TunnelFixture::start().await;
    let port = http_server("random tunnel").await;
    let spec = format!("80:127.0.0.1:{port}");
    let mut alice = Publisher::start(f.client(ALICE), ALICE, &[&spec], &[], true);
    let line = alice.expect_line("http tunnel: ").await;
    let name = url_name(&line);
    assert!(is_random_name(&name), "{line}");
    assert_eq!(
        line.trim(),
        format!("http tunnel: http://{name}.tunnel.test")
    );
    let t = f.get(&name, 80).await.expect("registered");
    assert_eq!(t.username, ALICE);
    let reply = f.http_get(&t).await;
    assert!(reply.ends_with("random tunnel"), "{reply}");
    // Counters reach the registry with the heartbeat; the stream itself was counted.
    assert!(alice.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn taken_name_falls_back_to_a_random_one_with_a_message() {
    let f = TunnelFixture::start().await;
    let first = http_server("first").await;
    let second = http_server("second").await;
    let spec1 = format!("myapp:80:127.0.0.1:{first}");
    let _one = Publisher::start(f.client(ALICE), ALICE, &[&spec1], &[], false);
    f.wait_tunnels(ALICE, 1).await;
    let spec2 = format!("myapp:80:127.0.0.1:{second}");
    let mut two = Publisher::start(f.client(ALICE), ALICE, &[&spec2], &[], true);
    let note = two.expect_line("requested name myapp is taken").await;
    let line = two.expect_line("http tunnel: ").await;
    let name = url_name(&line);
    assert!(is_random_name(&name), "{line}");
    assert!(note.ends_with(&format!("; using {name}")), "{note}");
    let mine = f.get("myapp", 80).await.expect("myapp");
    assert!(f.http_get(&mine).await.ends_with("first"));
    let fallback = f.get(&name, 80).await.expect("fallback");
    assert!(f.http_get(&fallback).await.ends_with("second"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strict_login_refuses_a_name_it_cannot_have() {
    let f = TunnelFixture::start().await;
    let port = http_server("bob").await;
    let spec = format!("bobapp:80:127.0.0.1:{port}");
    let _bob = Publisher::start(f.client(BOB), BOB, &[&spec], &[], false);
    f.wait_tunnels(BOB, 1).await;
    let mut strict = Publisher::start(f.client(ALICE), "alice+strict", &[&spec], &[], false);
    let (status, stderr) = strict
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("strict client exits");
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("forwarding failed"), "{stderr}");
    assert!(f.tunnels_of(ALICE).await.is_empty());
    // A free name is granted to a strict login as usual.
    let free = format!("alicefree:80:127.0.0.1:{port}");
    let _ok = Publisher::start(f.client(ALICE), "alice+strict", &[&free], &[], false);
    let list = f.wait_tunnels(ALICE, 1).await;
    assert_eq!(list[0].name, "alicefree");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_users_reserved_name_is_not_granted_online_or_offline() {
    let f = TunnelFixture::start().await;
    let bob_port = http_server("bob's site").await;
    let alice_port = http_server("alice's site").await;
    let bob_spec = format!("bobsite:80:127.0.0.1:{bob_port}");
    let mut bob = Publisher::start(f.client(BOB), BOB, &[&bob_spec], &[], false);
    f.wait_tunnels(BOB, 1).await;
    let alice_spec = format!("bobsite:80:127.0.0.1:{alice_port}");
    // Online: alice gets a random name, bob keeps his.
    let mut alice = Publisher::start(f.client(ALICE), ALICE, &[&alice_spec], &[], true);
    let note = alice.expect_line("requested name bobsite").await;
    assert!(note.contains("not available"), "{note}");
    let name = url_name(&alice.expect_line("http tunnel: ").await);
    assert_ne!(name, "bobsite");
    let held = f.get("bobsite", 80).await.expect("bob's tunnel");
    assert_eq!(held.username, BOB);
    assert!(f.http_get(&held).await.ends_with("bob's site"));
    drop(alice);
    // Offline: the name is still bob's.
    bob.child.kill().await.expect("kill bob");
    assert!(f.wait_gone("bobsite", 80, Duration::from_secs(10)).await);
    let _alice = Publisher::start(f.client(ALICE), ALICE, &[&alice_spec], &[], false);
    let list = f.wait_tunnels(ALICE, 1).await;
    assert_ne!(list[0].name, "bobsite");
    assert!(is_random_name(&list[0].name));
    assert!(f.get("bobsite", 80).await.is_none());
}

/// `ssh -W alias:port login@edge` with `input` on stdin; returns (success, stdout).
async fn through_alias(
    client: &SshClient,
    login: &str,
    alias: &str,
    input: &[u8],
) -> (bool, String, String) {
    let mut c = client.ssh_command(login, &["-W", alias], &[]);
    c.stdin(Stdio::piped());
    let mut child = c.spawn().expect("spawn ssh -W");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    tokio::spawn(async move {
        let _ = stdin.write_all(&data).await;
        let _ = stdin.shutdown().await;
    });
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("ssh -W finished")
        .expect("ssh -W output");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_alias_for_the_owner_and_granted_users_only() {
    let f = TunnelFixture::start().await;
    let echo = echo_server().await;
    let spec = format!("db:5432:127.0.0.1:{echo}");
    let mut alice = Publisher::start(f.client(ALICE), ALICE, &[&spec], &[], true);
    let line = alice.expect_line("tcp alias: db:5432").await;
    assert!(line.contains("ssh -J alice@edge.test -W db:5432"), "{line}");
    let t = f.get("db", 5432).await.expect("alias");
    assert_eq!(t.kind, "tcp");

    let (ok, out, err) =
        through_alias(&f.client(ALICE), ALICE, "db:5432", b"ping from alice\n").await;
    assert!(ok, "{err}");
    assert_eq!(out, "ping from alice\n");

    let (ok, out, err) = through_alias(&f.client(BOB), BOB, "db:5432", b"ping from bob\n").await;
    assert!(!ok, "bob reached the alias without a grant: {out}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("forwarding failed"), "{err}");
    // Unknown aliases are refused the same way.
    let (ok, _, _) = through_alias(&f.client(ALICE), ALICE, "nosuch:5432", b"x").await;
    assert!(!ok);

    f.cluster.grant(BOB, "db").await;
    let (ok, out, err) = through_alias(&f.client(BOB), BOB, "db:5432", b"ping from bob\n").await;
    assert!(ok, "{err}");
    assert_eq!(out, "ping from bob\n");

    let events = f.cluster.audit_events().await;
    let alias: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "ssh_tcp_alias")
        .collect();
    assert!(
        alias
            .iter()
            .any(|e| e["username"] == BOB && e["allowed"] == false),
        "{alias:?}"
    );
    assert!(
        alias
            .iter()
            .any(|e| e["username"] == BOB && e["allowed"] == true),
        "{alias:?}"
    );
    assert!(alice.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kick_ends_the_session_within_two_seconds() {
    let f = TunnelFixture::start().await;
    let port = http_server("kick").await;
    let spec = format!("kickme:80:127.0.0.1:{port}");
    let mut client = f.client(ALICE);
    client.log_level = "INFO";
    let mut alice = Publisher::start(client, ALICE, &[&spec], &[], false);
    f.wait_tunnels(ALICE, 1).await;
    let started = Instant::now();
    let sessions = f.kick("kickme").await;
    assert_eq!(sessions.len(), 1);
    let (_, stderr) = alice
        .wait_exit(Duration::from_secs(2))
        .await
        .expect("client ended within 2 s");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(stderr.contains("ended by an administrator"), "{stderr}");
    assert!(f.wait_gone("kickme", 80, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disconnect_removes_the_tunnel() {
    let f = TunnelFixture::start().await;
    let port = http_server("bye").await;
    let specs = [
        format!("bye:80:127.0.0.1:{port}"),
        format!("byedb:6000:127.0.0.1:{port}"),
    ];
    let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
    let mut alice = Publisher::start(f.client(ALICE), ALICE, &specs, &[], false);
    let list = f.wait_tunnels(ALICE, 2).await;
    let node = list[0].node_id.clone();
    assert!(
        list.iter().all(|t| t.node_id == node),
        "one node per session"
    );
    alice.child.kill().await.expect("kill");
    assert!(f.wait_gone("bye", 80, Duration::from_secs(5)).await);
    assert!(f.wait_gone("byedb", 6000, Duration::from_secs(5)).await);
    // The node no longer answers: "offline" at once, not a timeout.
    let bus = f.cluster.bus();
    let subjects = phirepass_tunnel::Subjects::new(f.cluster.prefix.clone());
    let err = phirepass_tunnel::open(
        &bus,
        &subjects,
        "test-edge-y",
        &node,
        phirepass_tunnel::Target::Port { port: 80 },
        Vec::new(),
        &Default::default(),
    )
    .await
    .expect_err("offline");
    assert!(
        matches!(err, phirepass_tunnel::OpenError::NodeOffline),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keepalives_keep_the_session_up() {
    let f = TunnelFixture::start().await;
    let port = http_server("still here").await;
    let spec = format!("ka:80:127.0.0.1:{port}");
    let mut alice = Publisher::start(
        f.client(ALICE),
        ALICE,
        &[&spec],
        &["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"],
        false,
    );
    let list = f.wait_tunnels(ALICE, 1).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        alice.running(),
        "client ended: {:?}",
        alice.wait_exit(Duration::from_secs(1)).await
    );
    assert!(f.http_get(&list[0]).await.ends_with("still here"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_logins_and_bad_ports_cannot_publish() {
    let f = TunnelFixture::start().await;
    let port = http_server("x").await;
    // Malformed flags are refused at login, with the reason.
    let mut client = f.client(ALICE);
    client.log_level = "INFO";
    let out = run(client.ssh_command("alice+foo", &[], &["true"])).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("+strict"),
        "{}",
        text(&out.stderr)
    );
    // Port 0 (a dynamic port) is refused: names are what is published, not ports.
    let spec = format!("0:127.0.0.1:{port}");
    let mut zero = Publisher::start(f.client(ALICE), ALICE, &[&spec], &[], false);
    let (status, _) = zero
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("exits");
    assert!(!status.success());
    assert!(f.tunnels_of(ALICE).await.is_empty());
}
