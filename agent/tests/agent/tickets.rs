//! Signed opens (issue #8), sent straight down the agent's link by a stand-in gateway (so no
//! holder checks anything first): every open without a valid ticket is refused and the target
//! sees no connection; a rotated key joins only with an endorsement by a pinned key.

use std::path::PathBuf;
use std::time::Duration;

use phirepass_agent::pins::PINS_FILE_VAR;
use phirepass_agent::run;
use phirepass_ticket::{Claims, KeySet, Scope, TicketSigner, TicketTarget};
use phirepass_tunnel::{NodeControl, OpenRequest, StreamId, Target};
use tokio::net::TcpListener;

use crate::TOKEN;
use crate::gateway::{authed, bind, expect, send};
use crate::session::config;

/// authz's key as the agent pinned it, in a pins file.
pub struct Pinned {
    pub signer: TicketSigner,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pinned {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.ticket-keys.json");
        let signer = TicketSigner::generate().unwrap();
        phirepass_agent::pins::store(
            &path,
            &KeySet::new(vec![signer.public_key().clone()]).unwrap(),
        )
        .unwrap();
        Self {
            signer,
            path,
            _dir: dir,
        }
    }

    pub fn var(&self) -> (&'static str, &str) {
        (PINS_FILE_VAR, self.path.to_str().unwrap())
    }
}

fn now() -> u64 {
    u64::try_from(phirepass_runtime::clock::now_millis()).unwrap()
}

/// An open for node `n1` (the stand-in gateway's) from edge gw-1, signed by `signer`.
pub fn signed(signer: &TicketSigner, stream: u64, target: Target) -> OpenRequest {
    let scope = Scope {
        node: "n1".into(),
        target: TicketTarget::from(&target),
        edge: "gw-1".into(),
        stream,
    };
    OpenRequest {
        stream_id: StreamId(stream),
        edge_id: "gw-1".into(),
        target,
        window: 65536,
        ticket: Some(signer.sign("u-1", &scope, now(), 30_000).unwrap()),
    }
}

/// An open whose ticket carries `claims` changed by `change`, signed by `signer`.
fn forged(
    signer: &TicketSigner,
    stream: u64,
    port: u16,
    change: impl Fn(&mut Claims),
) -> OpenRequest {
    let mut request = signed(signer, stream, Target::Port { port });
    let mut claims = phirepass_ticket::peek(request.ticket.as_deref().unwrap()).unwrap();
    change(&mut claims);
    request.ticket = Some(signer.sign_claims(&claims));
    request
}

async fn open_result(ws: &mut crate::gateway::Ws, request: OpenRequest) -> Option<String> {
    let id = request.stream_id;
    send(ws, NodeControl::Open { request }).await;
    match expect(
        ws,
        |c| matches!(c, NodeControl::OpenResult { stream_id, .. } if *stream_id == id),
    )
    .await
    {
        NodeControl::OpenResult { error, .. } => error,
        _ => unreachable!(),
    }
}

/// Accepts on `target` for a moment: how many connections arrived.
async fn accepted(target: &TcpListener) -> usize {
    let mut n = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), target.accept()).await {
        n += 1;
    }
    n
}

#[tokio::test]
async fn forged_opens_down_the_link_are_refused_and_dial_nothing() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let pinned = Pinned::new();
    let (listener, url) = bind().await;
    let allowed = format!("{port},5432");
    let _agent = tokio::spawn(run(
        config(&url, &[("ALLOWED_PORTS", allowed.as_str()), pinned.var()]),
        TOKEN.to_owned(),
        std::future::pending(),
    ));
    let mut ws = authed(&listener).await;
    let key = &pinned.signer;
    let stranger = TicketSigner::generate().unwrap();

    let mut bare = signed(key, 1, Target::Port { port });
    bare.ticket = None;
    let mut other_stream = signed(key, 7, Target::Port { port });
    other_stream.stream_id = StreamId(8);
    let mut other_port = signed(key, 9, Target::Port { port: 5432 });
    other_port.target = Target::Port { port };
    let mut ssh_for_port = signed(key, 10, Target::Port { port });
    ssh_for_port.target = Target::Ssh;
    let cases = [
        (bare, "open without a ticket"),
        (
            forged(key, 2, port, |c| c.exp = c.iat.saturating_sub(60_000)),
            "ticket expired",
        ),
        (
            forged(key, 3, port, |c| c.exp = c.iat + 600_000),
            "ticket lives too long",
        ),
        (
            forged(key, 4, port, |c| c.node = "n2".into()),
            "ticket is for another node",
        ),
        (
            forged(key, 5, port, |c| c.edge = "gw-2".into()),
            "ticket is for another edge",
        ),
        (
            signed(&stranger, 6, Target::Port { port }),
            "signed by unknown key",
        ),
        (other_stream, "ticket is for another stream"),
        (other_port, "ticket is for another target"),
        (ssh_for_port, "ticket is for another target"),
        (
            forged(key, 11, port, |c| c.user.clear()),
            "ticket without a user",
        ),
    ];
    for (request, why) in cases {
        let error = open_result(&mut ws, request).await.expect("refused");
        assert!(error.contains(why), "{why}: {error}");
    }
    assert_eq!(
        accepted(&target).await,
        0,
        "a forged open reached the target"
    );

    // A valid ticket goes through once; the same ticket again is a replay.
    let valid = signed(key, 20, Target::Port { port });
    let mut replay = valid.clone();
    assert_eq!(open_result(&mut ws, valid).await, None);
    assert_eq!(accepted(&target).await, 1);
    replay.stream_id = StreamId(20);
    let error = open_result(&mut ws, replay).await.expect("replay refused");
    assert!(error.contains("ticket already used"), "{error}");
    assert_eq!(accepted(&target).await, 0);
}

#[tokio::test]
async fn an_agent_without_pins_refuses_opens_until_its_gateway_sends_the_first_keys() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let authz = TicketSigner::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("agent.ticket-keys.json");
    let (listener, url) = bind().await;
    let allowed = port.to_string();
    let _agent = tokio::spawn(run(
        config(
            &url,
            &[
                ("ALLOWED_PORTS", allowed.as_str()),
                (PINS_FILE_VAR, absent.to_str().unwrap()),
            ],
        ),
        TOKEN.to_owned(),
        std::future::pending(),
    ));
    let mut ws = authed(&listener).await;
    let error = open_result(&mut ws, signed(&authz, 1, Target::Port { port })).await;
    assert!(error.unwrap().contains("no ticket keys pinned"));
    // Endorsements alone pin nothing: nothing pinned endorses them.
    send(
        &mut ws,
        NodeControl::TicketKeys {
            endorsements: vec![authz.endorse(authz.public_key())],
            keys: Vec::new(),
        },
    )
    .await;
    let error = open_result(&mut ws, signed(&authz, 2, Target::Port { port })).await;
    assert!(error.unwrap().contains("no ticket keys pinned"));
    assert_eq!(accepted(&target).await, 0);
    assert!(!absent.exists(), "nothing was pinned");

    // The link's first keys are pinned (trust on first use) and saved...
    send(
        &mut ws,
        NodeControl::TicketKeys {
            endorsements: Vec::new(),
            keys: vec![authz.public_key().clone()],
        },
    )
    .await;
    assert_eq!(
        open_result(&mut ws, signed(&authz, 3, Target::Port { port })).await,
        None
    );
    assert_eq!(accepted(&target).await, 1);
    assert!(absent.exists(), "the first keys are saved");
    // ...and never replaced by keys offered later.
    let stranger = TicketSigner::generate().unwrap();
    send(
        &mut ws,
        NodeControl::TicketKeys {
            endorsements: Vec::new(),
            keys: vec![stranger.public_key().clone()],
        },
    )
    .await;
    let error = open_result(&mut ws, signed(&stranger, 4, Target::Port { port })).await;
    assert!(error.unwrap().contains("unknown key"));
    assert_eq!(accepted(&target).await, 0);
}

#[tokio::test]
async fn a_rotated_key_joins_with_its_endorsement_while_connected() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let pinned = Pinned::new();
    let (listener, url) = bind().await;
    let allowed = port.to_string();
    let _agent = tokio::spawn(run(
        config(&url, &[("ALLOWED_PORTS", allowed.as_str()), pinned.var()]),
        TOKEN.to_owned(),
        std::future::pending(),
    ));
    let mut ws = authed(&listener).await;
    let old = &pinned.signer;
    let new = TicketSigner::generate().unwrap();
    let stranger = TicketSigner::generate().unwrap();

    // Before the endorsement the new key is unknown.
    let error = open_result(&mut ws, signed(&new, 1, Target::Port { port })).await;
    assert!(error.unwrap().contains("unknown key"));
    // A stranger's endorsement of itself, or of the new key, is not taken.
    send(
        &mut ws,
        NodeControl::TicketKeys {
            endorsements: vec![stranger.endorse(stranger.public_key())],
            keys: vec![stranger.public_key().clone()],
        },
    )
    .await;
    let error = open_result(&mut ws, signed(&stranger, 2, Target::Port { port })).await;
    assert!(error.unwrap().contains("unknown key"));

    send(
        &mut ws,
        NodeControl::TicketKeys {
            endorsements: vec![old.endorse(new.public_key())],
            keys: Vec::new(),
        },
    )
    .await;
    // New tickets pass, and so do old-key tickets during the overlap.
    assert_eq!(
        open_result(&mut ws, signed(&new, 3, Target::Port { port })).await,
        None
    );
    assert_eq!(
        open_result(&mut ws, signed(old, 4, Target::Port { port })).await,
        None
    );
    assert_eq!(accepted(&target).await, 2);

    // Persisted beside the token: a restarted agent keeps the new key.
    let saved = phirepass_agent::pins::load(&pinned.path).unwrap().unwrap();
    assert!(saved.get(new.kid()).is_some());
    assert!(saved.get(old.kid()).is_some());
    assert!(saved.get(stranger.kid()).is_none());
}
