//! NATS with TLS and one user per service kind, against a real nats-server 2.10+ started with
//! the generated configuration (`TestNatsServer`): who is refused, what each kind may not
//! touch, and that the real work of each kind still goes through.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use phirepass_bus::test_server::TestNatsServer;
use phirepass_bus::{
    Bus, BusError, EventLog, Identity, JetStreamEventLog, NatsBus, ServiceKind, Subscription,
};
use phirepass_pki::{LocalPki, anonymous_client_config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use ServiceKind::{Authz, GatewayWs, Registry, Secrets, SshEdge};

/// How long a message that must not arrive is waited for.
const QUIET: Duration = Duration::from_millis(400);

async fn server() -> TestNatsServer {
    let prefix = format!("t{:012x}", rand::random::<u64>() >> 16);
    TestNatsServer::start(&prefix).await.unwrap()
}

async fn bus_as(server: &TestNatsServer, kind: ServiceKind) -> Arc<dyn Bus> {
    let identity = server.identity(kind);
    let bus = NatsBus::connect_as(&server.url(), kind, Some(&identity))
        .await
        .unwrap_or_else(|e| panic!("{kind} connects: {e}\n{}", server.log()));
    Arc::new(bus)
}

async fn subscribe(bus: &Arc<dyn Bus>, subject: &str) -> Subscription {
    let sub = bus.subscribe(subject).await.unwrap();
    bus.flush().await.unwrap();
    sub
}

async fn receives(sub: &mut Subscription) -> bool {
    tokio::time::timeout(QUIET, sub.next()).await.is_ok()
}

async fn publish(bus: &Arc<dyn Bus>, subject: &str) {
    bus.publish(subject, Vec::new(), Bytes::from_static(b"x"))
        .await
        .unwrap();
    bus.flush().await.unwrap();
}

#[tokio::test]
async fn anonymous_and_plaintext_clients_are_refused() {
    let server = server().await;
    // A plaintext client that goes on without TLS is told TLS is required, and dropped
    // (the server reads its CONNECT as a broken TLS handshake).
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    raw.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut seen)).await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("\"tls_required\":true"), "{seen}");
    assert!(closed.is_ok(), "plaintext connection kept open");
    assert!(!seen.contains("PONG"), "{seen}");
    // async-nats upgrades by itself, but without an identity it has no certificate (and
    // trusts only the system's roots): refused either way.
    assert!(NatsBus::connect(&server.url()).await.is_err());
    assert!(
        NatsBus::connect_as(&server.url(), Authz, None)
            .await
            .is_err()
    );
    // TLS that trusts the server but presents no certificate: no user, refused.
    let trust =
        phirepass_pki::read_certs(&phirepass_pki::trust_file(server.pki().dir().unwrap())).unwrap();
    let tls = anonymous_client_config(&trust, Some(ServiceKind::Nats)).unwrap();
    let anonymous = async_nats::ConnectOptions::new()
        .require_tls(true)
        .tls_client_config(tls)
        .connect(server.url())
        .await;
    assert!(anonymous.is_err(), "anonymous tls client was accepted");
    // A valid certificate of this CA that names no NATS user (the redis server's): refused.
    let redis = server.identity(ServiceKind::Redis);
    let tls = redis.client_config(Some(ServiceKind::Nats)).unwrap();
    let unmapped = async_nats::ConnectOptions::new()
        .require_tls(true)
        .tls_client_config(tls)
        .connect(server.url())
        .await;
    let error = unmapped.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("authorization"), "{error}");
    // The same client with a certificate is accepted: the refusals above are not a setup fault.
    bus_as(&server, Authz).await.flush().await.unwrap();
}

#[tokio::test]
async fn certificates_of_another_ca_are_refused() {
    let server = server().await;
    let other = LocalPki::generate().unwrap();
    let issued = other
        .ca()
        .issue(GatewayWs, &phirepass_pki::IssueOptions::default())
        .unwrap();
    // Trusts the real server, presents a gateway-ws certificate from a foreign CA.
    let foreign = Identity::from_pem(
        GatewayWs,
        &issued.cert_pem,
        &issued.key_pem,
        server.pki().trust_pem(),
    )
    .unwrap();
    let refused = NatsBus::connect_as(&server.url(), GatewayWs, Some(&foreign)).await;
    assert!(refused.is_err(), "foreign certificate accepted");
    // A client of a foreign deployment does not accept this server either.
    let theirs = other.identity(GatewayWs).unwrap();
    assert!(
        NatsBus::connect_as(&server.url(), GatewayWs, Some(&theirs))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_identity_requires_tls() {
    // The shared development server (NATS_URL) speaks plaintext only: an identity never
    // falls back to it.
    let pki = LocalPki::generate().unwrap();
    let identity = pki.identity(SshEdge).unwrap();
    let res = NatsBus::connect_as(&crate::nats_url(), SshEdge, Some(&identity)).await;
    assert!(res.is_err(), "identity connected without tls");
    let wrong_kind = NatsBus::connect_as(&crate::nats_url(), Authz, Some(&identity)).await;
    assert!(matches!(wrong_kind, Err(BusError::Other(_))));
}

#[tokio::test]
async fn registry_and_authz_cannot_open_nor_read_streams() {
    let server = server().await;
    let p = server.prefix().to_owned();
    let open = format!("{p}.node.n1.open");
    // Subscriptions are tried on another node, so the holder of n1 only sees attempts.
    let read_open = format!("{p}.node.n2.open");
    let to_node = format!("{p}.node.n2.s.00000000000000ab");
    let to_edge = format!("{p}.edge.e1.s.00000000000000ab");
    let gateway = bus_as(&server, GatewayWs).await;
    let mut holder = subscribe(&bus_as(&server, SshEdge).await, &open).await;
    for kind in [Registry, Authz, Secrets] {
        let bus = bus_as(&server, kind).await;
        publish(&bus, &open).await;
        assert!(!receives(&mut holder).await, "{kind} published an open");
        let asked = bus
            .request(&open, Vec::new(), Bytes::new(), Duration::from_millis(300))
            .await;
        assert!(asked.is_err(), "{kind} got an answer to an open");
        assert!(!receives(&mut holder).await, "{kind} requested an open");
        for subject in [&read_open, &to_node, &to_edge] {
            let mut sub = subscribe(&bus, subject).await;
            publish(&gateway, subject).await;
            assert!(!receives(&mut sub).await, "{kind} read {subject}");
        }
    }
    // The control: the edge's open does reach the holder.
    publish(&gateway, &open).await;
    assert!(receives(&mut holder).await);
}

#[tokio::test]
async fn nobody_subscribes_to_everything() {
    let server = server().await;
    let p = server.prefix().to_owned();
    let everything = [">".to_owned(), format!("{p}.>"), format!("{p}.node.>")];
    let mut subs = Vec::new();
    for kind in ServiceKind::SERVICES {
        let bus = bus_as(&server, kind).await;
        for pattern in &everything {
            subs.push((
                kind,
                pattern.clone(),
                subscribe(&bus, pattern).await,
                bus.clone(),
            ));
        }
    }
    let gateway = bus_as(&server, GatewayWs).await;
    let mut control = subscribe(&gateway, &format!("{p}.node.n1.>")).await;
    publish(&gateway, &format!("{p}.node.n1.open")).await;
    publish(&gateway, &format!("{p}.control.kick")).await;
    assert!(
        receives(&mut control).await,
        "the holder's own subscription works"
    );
    for (kind, pattern, mut sub, _bus) in subs {
        assert!(!receives(&mut sub).await, "{kind} subscribed to {pattern}");
    }
}

#[tokio::test]
async fn inboxes_are_private() {
    let server = server().await;
    let open = format!("{}.node.n1.open", server.prefix());
    let gateway = bus_as(&server, GatewayWs).await;
    let holder = bus_as(&server, SshEdge).await;
    let mut spies = Vec::new();
    for kind in [Authz, SshEdge, Registry] {
        let bus = bus_as(&server, kind).await;
        spies.push((kind, subscribe(&bus, "_INBOX_gateway-ws.>").await, bus));
    }
    let mut opens = subscribe(&holder, &open).await;
    let answer = tokio::spawn({
        let holder = holder.clone();
        async move {
            let msg = opens.next().await.unwrap();
            let reply = msg.reply.unwrap();
            assert!(reply.starts_with("_INBOX_gateway-ws."), "{reply}");
            holder
                .publish(&reply, Vec::new(), Bytes::from_static(b"ok"))
                .await
                .unwrap();
        }
    });
    let reply = gateway
        .request(&open, Vec::new(), Bytes::new(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(&reply.payload[..], b"ok");
    answer.await.unwrap();
    for (kind, mut spy, _bus) in spies {
        assert!(
            !receives(&mut spy).await,
            "{kind} read gateway-ws's replies"
        );
    }
}

#[tokio::test]
async fn event_writers_write_and_others_cannot() {
    let server = server().await;
    let p = server.prefix().to_owned();
    let audit = format!("{p}.events.audit");
    // gateway-ws writes the audit of commands it runs (issue #10).
    for kind in [Authz, Secrets, SshEdge, GatewayWs] {
        let bus = NatsBus::connect_as(&server.url(), kind, Some(&server.identity(kind)))
            .await
            .unwrap();
        let log = JetStreamEventLog::with_stream(&bus, &p, server.stream())
            .await
            .unwrap_or_else(|e| panic!("{kind} opens the event stream: {e}\n{}", server.log()));
        log.append(&audit, Bytes::from_static(b"{}"))
            .await
            .unwrap_or_else(|e| panic!("{kind} appends: {e}"));
    }
    let authz = NatsBus::connect_as(&server.url(), Authz, Some(&server.identity(Authz)))
        .await
        .unwrap();
    let log = JetStreamEventLog::with_stream(&authz, &p, server.stream())
        .await
        .unwrap();
    log.append(&format!("{p}.events.access"), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    // Each refusal is a JetStream request timing out (the server drops what a user may not
    // publish): all at once.
    let refused = |kind: ServiceKind| {
        let (url, identity, p) = (server.url(), server.identity(kind), p.clone());
        let stream = server.stream().to_owned();
        async move {
            let bus = NatsBus::connect_as(&url, kind, Some(&identity))
                .await
                .unwrap();
            let res = JetStreamEventLog::with_stream(&bus, &p, &stream).await;
            assert!(res.is_err(), "{kind} reached the JetStream API");
        }
    };
    // Readers are operators, not services: nobody reads the log back.
    let read = async {
        assert!(log.read(&format!("{p}.events.>"), 0, 10).await.is_err());
    };
    tokio::join!(refused(Registry), read);
}

#[tokio::test]
async fn edges_holders_and_registry_do_their_work() {
    let server = server().await;
    let p = server.prefix().to_owned();
    let gateway = bus_as(&server, GatewayWs).await;
    let ssh_edge = bus_as(&server, SshEdge).await;
    // Opens both ways, answered by the holder (allow_responses).
    for (edge, holder, node_sub) in [
        (&gateway, &ssh_edge, format!("{p}.node.n1.open")),
        (&ssh_edge, &gateway, format!("{p}.node.n1.>")),
    ] {
        let mut sub = subscribe(holder, &node_sub).await;
        let answer = tokio::spawn({
            let holder = holder.clone();
            async move {
                let msg = sub.next().await.unwrap();
                holder
                    .publish(&msg.reply.unwrap(), Vec::new(), Bytes::from_static(b"ok"))
                    .await
                    .unwrap();
            }
        });
        let reply = edge
            .request(
                &format!("{p}.node.n1.open"),
                Vec::new(),
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await
            .unwrap_or_else(|e| panic!("open answered: {e}\n{}", server.log()));
        assert_eq!(&reply.payload[..], b"ok");
        answer.await.unwrap();
    }
    // Kicks from the registry and gateways reach both edges; logouts reach gateways.
    let mut kicks = subscribe(&ssh_edge, &format!("{p}.control.kick")).await;
    publish(
        &bus_as(&server, Registry).await,
        &format!("{p}.control.kick"),
    )
    .await;
    assert!(receives(&mut kicks).await);
    let mut logouts = subscribe(&gateway, &format!("{p}.control.access")).await;
    publish(
        &bus_as(&server, GatewayWs).await,
        &format!("{p}.control.access"),
    )
    .await;
    assert!(receives(&mut logouts).await);
}
