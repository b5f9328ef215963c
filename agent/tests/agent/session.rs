//! `run` against an in-process stand-in gateway: auth, ping/pong,
//! heartbeats, refusals, reconnects, dead-link detection, fatal disconnect.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use phirepass_agent::{AgentConfig, AgentError, NOT_ALLOWED, run};
use phirepass_tunnel::{NodeControl, StreamId, Target};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::TOKEN;
use crate::gateway::{WAIT, accept, authed, bind, expect, send};

pub fn config(url: &str, extra: &[(&str, &str)]) -> AgentConfig {
    let mut vars: HashMap<String, String> =
        [("SERVER_URL", url), ("PORT", ""), ("PING_INTERVAL", "1")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    AgentConfig::from_lookup(|name| vars.get(name).cloned()).unwrap()
}

#[tokio::test]
async fn serves_control_messages_then_reconnects_and_honours_fatal_disconnect() {
    let (listener, url) = bind().await;
    let pinned = crate::tickets::Pinned::new();
    let agent = tokio::spawn(run(
        config(&url, &[("STATS_REFRESH_INTERVAL", "1"), pinned.var()]),
        TOKEN.to_owned(),
        std::future::pending(),
    ));

    let mut ws = authed(&listener).await;
    let NodeControl::Heartbeat { stats } =
        expect(&mut ws, |c| matches!(c, NodeControl::Heartbeat { .. })).await
    else {
        unreachable!()
    };
    assert!(!stats.hostname.is_empty());
    send(&mut ws, NodeControl::Ping { nonce: 42 }).await;
    assert_eq!(
        expect(&mut ws, |c| matches!(c, NodeControl::Pong { .. })).await,
        NodeControl::Pong { nonce: 42 }
    );
    expect(&mut ws, |c| matches!(c, NodeControl::Ping { .. })).await;

    let request = crate::tickets::signed(&pinned.signer, 5, Target::Port { port: 5432 });
    send(&mut ws, NodeControl::Open { request }).await;
    let result = expect(&mut ws, |c| matches!(c, NodeControl::OpenResult { .. })).await;
    assert_eq!(
        result,
        NodeControl::OpenResult {
            stream_id: StreamId(5),
            error: Some(NOT_ALLOWED.to_owned())
        }
    );

    // Losing the connection is retried, not fatal.
    drop(ws);
    let mut ws = authed(&listener).await;
    send(
        &mut ws,
        NodeControl::Disconnect {
            reason: "token revoked".into(),
            fatal: true,
        },
    )
    .await;
    let result = tokio::time::timeout(WAIT, agent).await.unwrap().unwrap();
    assert!(matches!(result, Err(AgentError::Disconnected(r)) if r == "token revoked"));
}

#[tokio::test]
async fn auth_failure_ends_run_with_rejected() {
    let (listener, url) = bind().await;
    let agent = tokio::spawn(run(
        config(&url, &[]),
        TOKEN.to_owned(),
        std::future::pending(),
    ));
    let mut ws = accept(&listener).await;
    expect(&mut ws, |c| matches!(c, NodeControl::Auth { .. })).await;
    send(
        &mut ws,
        NodeControl::AuthFailed {
            reason: "unknown token".into(),
        },
    )
    .await;
    let result = tokio::time::timeout(WAIT, agent).await.unwrap().unwrap();
    assert!(matches!(result, Err(AgentError::Rejected(r)) if r == "unknown token"));
}

#[tokio::test]
async fn silent_gateway_is_treated_as_dead() {
    let (listener, url) = bind().await;
    let _agent = tokio::spawn(run(
        config(&url, &[]),
        TOKEN.to_owned(),
        std::future::pending(),
    ));
    let mut first = authed(&listener).await;
    // Keep reading (so the agent's writes succeed) but never answer.
    let drain = tokio::spawn(async move { while first.next().await.is_some() {} });
    // PING_INTERVAL=1: three silent seconds, then a reconnect.
    let started = tokio::time::Instant::now();
    let _second = authed(&listener).await;
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    drain.abort();
}

#[tokio::test]
async fn shutdown_ends_run_cleanly() {
    let (listener, url) = bind().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(run(config(&url, &[]), TOKEN.to_owned(), async {
        let _ = stopped.await;
    }));
    let mut ws = authed(&listener).await;
    stop.send(()).unwrap();
    assert!(
        tokio::time::timeout(WAIT, agent)
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
    // The agent says goodbye with a close frame.
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    });
    closed.await.unwrap();
}

#[tokio::test]
async fn shutdown_waits_for_streams_to_close_their_connections() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let (listener, url) = bind().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let allowed = port.to_string();
    let pinned = crate::tickets::Pinned::new();
    let agent = tokio::spawn(run(
        config(&url, &[("ALLOWED_PORTS", allowed.as_str()), pinned.var()]),
        TOKEN.to_owned(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut ws = authed(&listener).await;
    let request = crate::tickets::signed(&pinned.signer, 7, Target::Port { port });
    send(&mut ws, NodeControl::Open { request }).await;
    let (local, _) = tokio::time::timeout(WAIT, target.accept())
        .await
        .unwrap()
        .unwrap();
    let result = expect(&mut ws, |c| matches!(c, NodeControl::OpenResult { .. })).await;
    assert_eq!(
        result,
        NodeControl::OpenResult {
            stream_id: StreamId(7),
            error: None
        }
    );

    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // By the time `run` returns, the stream has closed its local connection: EOF is already
    // there, without waiting for it.
    let local = local.into_std().unwrap();
    local.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(std::io::Read::read(&mut &local, &mut buf).unwrap(), 0);
}

#[tokio::test]
async fn malformed_token_is_refused_before_dialing() {
    let result = run(
        config("ws://127.0.0.1:1", &[]),
        "nope".into(),
        std::future::pending(),
    )
    .await;
    assert!(matches!(result, Err(AgentError::Token(_))));
}

#[tokio::test]
async fn first_heartbeat_reports_ports_and_no_cpu_figure_yet() {
    let (listener, url) = bind().await;
    let _agent = tokio::spawn(run(
        config(&url, &[("ALLOWED_PORTS", "9090,8080")]),
        TOKEN.to_owned(),
        std::future::pending(),
    ));
    let mut ws = authed(&listener).await;
    let NodeControl::Heartbeat { stats } =
        expect(&mut ws, |c| matches!(c, NodeControl::Heartbeat { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(stats.allowed_ports, Some(vec![8080, 9090]));
    assert_eq!(stats.cpu(), None, "one sample is no CPU figure: {stats:?}");
}

#[tokio::test]
async fn a_refused_agent_waits_before_trying_again() {
    let (listener, url) = bind().await;
    let _agent = tokio::spawn(run(
        config(&url, &[]),
        TOKEN.to_owned(),
        std::future::pending(),
    ));
    let mut ws = accept(&listener).await;
    expect(&mut ws, |c| matches!(c, NodeControl::Auth { .. })).await;
    let refused_at = tokio::time::Instant::now();
    let reason = "a node with this token is already connected".to_owned();
    send(
        &mut ws,
        NodeControl::Refused {
            reason,
            retry_after_secs: 6,
        },
    )
    .await;
    drop(ws);
    // The next attempt comes after the wait the gateway asked for, not a backoff step.
    let _again = accept(&listener).await;
    assert!(
        refused_at.elapsed() >= Duration::from_secs(5),
        "{:?}",
        refused_at.elapsed()
    );
}
