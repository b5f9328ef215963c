//! Writes the seed corpus (fuzz/corpus/<target>/) from the encoders: a few valid inputs per
//! target, so every run starts from well-formed messages. Run from fuzz/:
//! `cargo run --example seeds` (scripts/fuzz --seeds).

use std::fs;
use std::path::Path;

use bytes::Bytes;
use phirepass_tunnel::browser_protocol::{ErrorKind, WebControl, WebFrame};
use phirepass_tunnel::command::{
    AgentAudit, AgentStatus, CommandInfo, CommandRequest, ParamInfo, ParamKind, Record, RunResult,
};
use phirepass_tunnel::frame::{encode_data, reset_frame};
use phirepass_tunnel::{
    Frame, HostStats, LinkMessage, NodeControl, OpenReply, OpenRequest, StreamId, Subjects, Target,
};

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut seeds: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();

    let controls = [
        WebControl::Heartbeat,
        WebControl::Auth {
            token: "0123abcd".into(),
        },
        WebControl::OpenTunnel {
            node: "web-1".into(),
            username: "root".into(),
            password: Some("pw".into()),
            cols: 120,
            rows: 40,
        },
        WebControl::Resize { cols: 80, rows: 24 },
        WebControl::TunnelClosed {
            reason: Some("exit".into()),
            exit_status: Some(0),
        },
        WebControl::Error {
            kind: ErrorKind::RequiresPassword,
            message: "password".into(),
        },
        WebControl::Ok {
            message: None,
            session_id: Some("s1".into()),
        },
    ];
    let mut browser: Vec<Vec<u8>> = controls
        .into_iter()
        .map(|c| WebFrame::Control(c).encode().to_vec())
        .collect();
    browser.push(
        WebFrame::Ssh(Bytes::from_static(b"ls -la\r"))
            .encode()
            .to_vec(),
    );
    seeds.push(("browser_frame", browser));

    let request = OpenRequest {
        stream_id: StreamId(0x0123_4567_89ab_cdef),
        edge_id: "gw-1".into(),
        target: Target::Port { port: 8080 },
        window: 65536,
        ticket: None,
    };
    let stats = HostStats {
        hostname: "web-1".into(),
        cpu_percent: 12.5,
        cpu_measured: true,
        mem_total_bytes: 8 << 30,
        mem_used_bytes: 1 << 30,
        load1: 0.25,
        load5: 0.5,
        load15: 1.0,
        uptime_secs: 3600,
        allowed_ports: Some(vec![22, 8080]),
        ssh_reachable: Some(true),
    };
    let link = [
        NodeControl::Auth {
            token: "node-token".into(),
            version: "0.1.0".into(),
            instance: "i1".into(),
        },
        NodeControl::Heartbeat { stats },
        NodeControl::Ping { nonce: 7 },
        NodeControl::Open {
            request: request.clone(),
        },
        NodeControl::OpenResult {
            stream_id: StreamId(9),
            error: Some("refused".into()),
        },
        NodeControl::Disconnect {
            reason: "revoked".into(),
            fatal: true,
        },
        NodeControl::Open {
            request: OpenRequest {
                target: Target::Command(command_request()),
                ..request.clone()
            },
        },
        NodeControl::Status {
            status: agent_status(),
        },
        NodeControl::Audit {
            event: AgentAudit {
                action: "command.refused".into(),
                correlation_id: "c-1".into(),
                command: "reboot".into(),
                params: Default::default(),
                user: "u1".into(),
                reason: Some("command not declared".into()),
                exit_code: None,
                duration_ms: None,
                ts: 1_700_000_000_000,
            },
        },
    ];
    let mut link: Vec<Vec<u8>> = link
        .into_iter()
        .map(|c| LinkMessage::Control(c).encode().to_vec())
        .collect();
    link.push(
        LinkMessage::Frame {
            stream_id: StreamId(9),
            frame: encode_data(1, b"hello"),
        }
        .encode()
        .to_vec(),
    );
    seeds.push(("node_link", link));
    seeds.push(("command_records", command_seeds()));

    let frames = [
        Frame::Data {
            seq: 1,
            payload: Bytes::from_static(b"payload"),
        },
        Frame::Fin { seq: 2 },
        Frame::Ack {
            next: 3,
            limit: 65536,
        },
        Frame::Nack { next: 3, limit: 4 },
        Frame::Ping { nonce: 5 },
        Frame::Pong { nonce: 5 },
    ];
    let mut frames: Vec<Vec<u8>> = frames.iter().map(|f| f.encode().to_vec()).collect();
    frames.push(reset_frame("peer gone").to_vec());
    seeds.push(("tunnel_frame", frames));

    let json = |v: serde_json::Result<Vec<u8>>| v.unwrap_or_default();
    let subjects = Subjects::default();
    seeds.push((
        "open_request",
        vec![
            json(serde_json::to_vec(&request)),
            json(serde_json::to_vec(&OpenRequest {
                target: Target::Ssh,
                ..request.clone()
            })),
            json(serde_json::to_vec(&OpenRequest {
                target: Target::Command(command_request()),
                ..request
            })),
            json(serde_json::to_vec(&OpenReply { error: None })),
            json(serde_json::to_vec(&OpenReply {
                error: Some("port not allowed".into()),
            })),
            StreamId(0xab).to_string().into_bytes(),
            subjects.node_stream("n1", StreamId(0xab)).into_bytes(),
            subjects.node_open("n1").into_bytes(),
        ],
    ));

    let text = |list: &[&str]| list.iter().map(|s| s.as_bytes().to_vec()).collect();
    seeds.push((
        "ssh_login",
        text(&["alice", "alice+strict", "alice:web-1", "alice:web-1:root"]),
    ));
    seeds.push((
        "host",
        text(&[
            "myapp.tunnel.example.com",
            "8080-web-1.apps.example.com:443",
            "[::1]:8080",
            "127.0.0.1",
            "http://a.tunnel.example.com/\na.tunnel.example.com",
            "/\nGw_1.Local.",
        ]),
    ));
    // The first byte picks the cookie name (cookie.rs NAMES).
    seeds.push((
        "cookie",
        text(&[
            "\x00a=1; __Host-pp_session=0123abcd; b=2",
            "\x01pp_session=t\npp_session=u",
            "\x02__Host-phirepass_app=tok",
            "\x03x=1\n__phirepass_app= tok ",
        ]),
    ));
    seeds.push((
        "forwarded",
        text(&[
            "203.0.113.9, 10.0.0.5",
            "1.2.3.4\n[2001:db8::1]:4711",
            "for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8:cafe::17]:4711\"",
            "for=unknown, for=_hidden",
        ]),
    ));

    for (target, inputs) in seeds {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir)?;
        for (i, input) in inputs.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i:02}")), input)?;
        }
    }
    Ok(())
}

fn command_request() -> CommandRequest {
    CommandRequest {
        name: "disk_usage".into(),
        params: [("mount".to_owned(), "/".to_owned())].into(),
        correlation_id: "c-1".into(),
    }
}

fn agent_status() -> AgentStatus {
    AgentStatus {
        version: "0.1.0".into(),
        started_at: 1_700_000_000_000,
        commands: vec![CommandInfo {
            name: "disk_usage".into(),
            description: "df for one mount".into(),
            builtin: false,
            params: vec![ParamInfo {
                name: "mount".into(),
                kind: ParamKind::Path { root: "/".into() },
                required: true,
                secret: false,
                default: None,
                description: String::new(),
            }],
            timeout_secs: 30,
            output_limit_bytes: 1 << 20,
        }],
        config_path: "/etc/phirepass/agent.toml".into(),
    }
}

/// A run's output records, the agent's self-report and a request, as the edge reads them.
fn command_seeds() -> Vec<Vec<u8>> {
    let mut wire = bytes::BytesMut::new();
    for r in [
        Record::Stdout(Bytes::from_static(b"Filesystem  Size\n")),
        Record::Stderr(Bytes::from_static(b"warning\n")),
        Record::Done(RunResult {
            exit_code: Some(0),
            duration_ms: 12,
            stdout_bytes: 17,
            stderr_bytes: 8,
            ..Default::default()
        }),
    ] {
        r.encode(&mut wire);
    }
    let json = |v: serde_json::Result<Vec<u8>>| v.unwrap_or_default();
    vec![
        wire.to_vec(),
        json(serde_json::to_vec(&agent_status())),
        json(serde_json::to_vec(&command_request())),
    ]
}
