//! Commands on nodes (issue #10) end to end on one process: real authz, registry, a gateway
//! run by `serve` with its `Commands` gRPC listener, and a real agent (`phirepass_agent::run`)
//! whose host declares one command. Covers gRPC RunCommand/RunCommandStream, the web UI's
//! NDJSON endpoint, the caller's and the agent's audit events, refusals (read-only token, no
//! grant, unknown node, offline node).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use phirepass_bus::{EventLog, MemoryEventLog};
use phirepass_gateway_ws::{GatewayDeps, serve};
use phirepass_pki::ServiceKind;
use phirepass_proto::authz::{
    CreateApiTokenRequest, CreateNodeTokenRequest, GrantRequest, PrincipalKind, TicketKeysRequest,
};
use phirepass_proto::commands::commands_client::CommandsClient;
use phirepass_proto::commands::{NodeStatusRequest, RunCommandRequest, run_command_event::Event};
use phirepass_runtime::grpc::{AuthedChannel, admin_channel, trust_certs};
use serde_json::Value;
use tokio::net::TcpListener;
use tonic::Code;

use crate::common::{Gateway, HOST};

const AGENT_TOML: &str = r#"
[[command]]
name = "greet"
description = "Says hello"
program = "/bin/echo"
args = ["hello", "{who}", "{secret}"]
timeout = 10
output_limit = 4096

[[command.params]]
name = "who"
type = "string"
pattern = "[a-z]+"
required = true

[[command.params]]
name = "secret"
type = "string"
secret = true
required = true
"#;

struct Setup {
    gw: Gateway,
    events: Arc<MemoryEventLog>,
    commands_url: String,
    node_id: String,
    agent: tokio::task::JoinHandle<Result<(), phirepass_agent::AgentError>>,
    _agent_stop: phirepass_runtime::shutdown::Trigger,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let gw = Gateway::start(|_| {}).await;
    let events = Arc::new(MemoryEventLog::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let commands_url = format!("https://{}", grpc.local_addr().unwrap());
    let deps = GatewayDeps::new(gw.state.bus.clone())
        .with_events(events.clone())
        .with_commands_listener(grpc);
    tokio::spawn(serve(
        gw.state.config.clone(),
        listener,
        deps,
        std::future::pending(),
    ));
    gw.user("alice").await;
    let node = gw
        .admin
        .clone()
        .create_node_token(CreateNodeTokenRequest {
            username: "alice".into(),
            node_name: "web-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The agent pins authz's ticket keys, as `login` would.
    let dir = tempfile::tempdir().unwrap();
    let keys = gw
        .admin
        .clone()
        .ticket_keys(TicketKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys
        .into_iter()
        .map(|k| phirepass_ticket::PublicKey {
            kid: k.kid,
            key: k.key,
        })
        .collect();
    let pins = dir.path().join("pins.json");
    phirepass_agent::pins::store(&pins, &phirepass_ticket::KeySet::new(keys).unwrap()).unwrap();
    let host =
        phirepass_agent::commands::HostConfig::parse(&dir.path().join("agent.toml"), AGENT_TOML)
            .unwrap();
    let url = format!("ws://{addr}/api/nodes/ws");
    let pins_path = pins.to_string_lossy().into_owned();
    let config = phirepass_agent::AgentConfig::from_lookup_and_host(
        |key| match key {
            "SERVER_URL" => Some(url.clone()),
            phirepass_agent::pins::PINS_FILE_VAR => Some(pins_path.clone()),
            _ => None,
        },
        host,
    )
    .unwrap();
    let (stop, stopped) = phirepass_runtime::shutdown::channel();
    let agent = tokio::spawn(phirepass_agent::run(config, node.token, stopped.wait()));
    Setup {
        gw,
        events,
        commands_url,
        node_id: node.node_id,
        agent,
        _agent_stop: stop,
        _dir: dir,
    }
}

impl Setup {
    async fn api_token(&self, user: &str, scope: &str) -> String {
        let request = CreateApiTokenRequest {
            username: user.into(),
            name: format!("{user}-{scope}"),
            scopes: vec![scope.into()],
            expires_in_secs: None,
        };
        let reply = self.gw.admin.clone().create_api_token(request).await;
        reply.unwrap().into_inner().token
    }

    fn client(&self, token: &str) -> CommandsClient<AuthedChannel> {
        let trust = trust_certs(&self.gw.trust_pem).unwrap();
        let channel =
            admin_channel(&self.commands_url, &trust, ServiceKind::GatewayWs, token).unwrap();
        CommandsClient::new(channel)
    }

    /// Waits (bounded) until the agent's self-report reached the registry.
    async fn wait_for_status(&self, client: &CommandsClient<AuthedChannel>) {
        for _ in 0..200 {
            let status = client
                .clone()
                .node_status(NodeStatusRequest {
                    node: "web-1".into(),
                })
                .await
                .unwrap()
                .into_inner();
            if status.online && !status.commands.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the agent's status never reached the registry");
    }

    async fn audit(&self) -> Vec<Value> {
        let subject = format!("{}.events.audit", self.gw.state.config.subject_prefix);
        self.events
            .read(&subject, 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, raw)| serde_json::from_slice(&raw).unwrap())
            .collect()
    }
}

fn greet(correlation_id: &str) -> RunCommandRequest {
    RunCommandRequest {
        node: "web-1".into(),
        command: "greet".into(),
        params: [("who", "world"), ("secret", "s3cr3t")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        correlation_id: correlation_id.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_command_runs_over_grpc_and_is_audited() {
    let s = setup().await;
    let token = s.api_token("alice", "admin").await;
    let client = s.client(&token);
    s.wait_for_status(&client).await;

    let reply = client
        .clone()
        .run_command(greet("corr-unary"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.node_id, s.node_id);
    assert_eq!(reply.correlation_id, "corr-unary");
    assert_eq!(
        String::from_utf8_lossy(&reply.stdout),
        "hello world s3cr3t\n"
    );
    let result = reply.result.unwrap();
    assert_eq!(result.exit_code, Some(0));
    assert!(result.error.is_empty(), "{}", result.error);

    let mut stream = client
        .clone()
        .run_command_stream(greet(""))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await.unwrap() {
        events.push(event.event.unwrap());
    }
    let Some(Event::Started(started)) = events.first() else {
        panic!("first event: {:?}", events.first());
    };
    assert!(!started.correlation_id.is_empty(), "generated");
    let stdout: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            Event::Stdout(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(String::from_utf8_lossy(&stdout), "hello world s3cr3t\n");
    let Some(Event::Finished(done)) = events.last() else {
        panic!("last event: {:?}", events.last());
    };
    assert_eq!(done.exit_code, Some(0));

    // The caller's request and result and the agent's own events share the correlation id;
    // the secret is in none of them; the agent's carry the node id this gateway authenticated.
    let audit = s.audit().await;
    let of_run: Vec<&Value> = audit
        .iter()
        .filter(|e| e["correlation_id"] == "corr-unary")
        .collect();
    let action = |a: &str| of_run.iter().find(|e| e["action"] == a).copied();
    let request = action("command.request").expect("command.request");
    let result = action("command.result").expect("command.result");
    assert_eq!(request["user"], "alice");
    assert_eq!(request["node_id"], s.node_id.as_str());
    assert_eq!(request["params"]["who"], "world");
    assert_eq!(request["params"]["secret"], "<redacted>");
    assert_eq!(result["exit_code"], 0);
    assert!(result["duration_ms"].is_u64());
    let from_agent: Vec<&&Value> = of_run.iter().filter(|e| e["source"] == "agent").collect();
    assert!(!from_agent.is_empty(), "agent events relayed: {of_run:?}");
    for event in &from_agent {
        assert_eq!(event["node_id"], s.node_id.as_str());
        assert_eq!(event["node_name"], "web-1");
    }
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains("s3cr3t"), "a secret reached the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_their_reason() {
    let s = setup().await;
    let admin = s.client(&s.api_token("alice", "admin").await);
    s.wait_for_status(&admin).await;

    // A read-only token reads the status but runs nothing.
    let read = s.client(&s.api_token("alice", "read").await);
    read.clone()
        .node_status(NodeStatusRequest {
            node: "web-1".into(),
        })
        .await
        .unwrap();
    let refused = read.clone().run_command(greet("")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("read-only"),
        "{}",
        refused.message()
    );

    // bob may open a shell on web-1 but no command: denied, with authz's reason.
    s.gw.user("bob").await;
    s.gw.admin
        .clone()
        .grant(GrantRequest {
            principal_kind: PrincipalKind::User as i32,
            principal: "bob".into(),
            target: "web-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let bob = s.client(&s.api_token("bob", "admin").await);
    let denied = bob.clone().run_command(greet("")).await.unwrap_err();
    assert_eq!(
        denied.code(),
        Code::PermissionDenied,
        "{}",
        denied.message()
    );
    // carol sees no web-1 at all: the same answer as for a node that does not exist.
    s.gw.user("carol").await;
    let carol = s.client(&s.api_token("carol", "admin").await);
    let hidden = carol.clone().run_command(greet("")).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let mut nowhere = greet("");
    nowhere.node = "no-such-node".into();
    let missing = admin.clone().run_command(nowhere).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        hidden.message().replace("web-1", "X"),
        missing.message().replace("no-such-node", "X")
    );

    // The agent refuses what its host does not declare.
    let mut undeclared = greet("");
    undeclared.command = "reboot".into();
    let refused = admin.clone().run_command(undeclared).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "{}",
        refused.message()
    );

    // Offline: the agent stops, the next run says so at once.
    let Setup {
        agent, _agent_stop, ..
    } = s;
    drop(_agent_stop);
    let _ = agent.await;
    let offline = admin.clone().run_command(greet("")).await.unwrap_err();
    assert_eq!(offline.code(), Code::Unavailable, "{}", offline.message());
    assert_eq!(offline.message(), "node web-1 is offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_runs_a_command_as_ndjson() {
    let s = setup().await;
    let admin = s.client(&s.api_token("alice", "admin").await);
    s.wait_for_status(&admin).await;
    let cookie = {
        let response =
            s.gw.send(crate::common::login(
                "alice",
                &crate::common::password("alice"),
            ))
            .await;
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    };
    let status =
        s.gw.send(
            Request::get("/api/nodes/web-1/status")
                .header("host", HOST)
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status.status(), StatusCode::OK);
    let status = crate::common::json(status).await;
    assert_eq!(status["online"], true);
    assert_eq!(status["agent"]["commands"][0]["name"], "greet");

    let body = serde_json::json!({"params": {"who": "web", "secret": "x"}});
    let post = |path: &str| {
        Request::post(path)
            .header("host", HOST)
            .header("origin", format!("http://{HOST}"))
            .header("content-type", "application/json")
            .header("cookie", &cookie)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let response = s.gw.send(post("/api/nodes/web-1/commands/greet")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "started");
    assert_eq!(lines[0]["node_id"], s.node_id.as_str());
    let out: String = lines
        .iter()
        .filter(|l| l["type"] == "stdout")
        .map(|l| l["data"].as_str().unwrap())
        .collect();
    assert_eq!(out, "hello web x\n");
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "finished");
    assert_eq!(last["result"]["exit_code"], 0);

    let unknown = s.gw.send(post("/api/nodes/nope/commands/greet")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let undeclared = s.gw.send(post("/api/nodes/web-1/commands/reboot")).await;
    assert_eq!(undeclared.status(), StatusCode::CONFLICT);
    // No JSON body and no x-phirepass header: the CSRF rule refuses it.
    let bare = Request::post("/api/nodes/web-1/commands/greet")
        .header("host", HOST)
        .header("cookie", &cookie)
        .body(Body::empty())
        .unwrap();
    assert_eq!(s.gw.send(bare).await.status(), StatusCode::BAD_REQUEST);
}
