//! Declared commands run by a real agent against the stand-in gateway, opens sent straight
//! down the link with valid tickets (so no authz or holder checks anything first): the agent
//! alone decides what runs. Programs are small scripts the tests write, exec'd directly.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command as Process;
use std::sync::Arc;

use phirepass_agent::commands::HostConfig;
use phirepass_agent::run;
use phirepass_tunnel::command::{AgentAudit, CommandRequest, Record, RecordDecoder, RunResult};
use phirepass_tunnel::{NodeControl, OpenRequest, StreamId, Target};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::TOKEN;
use crate::gateway::{authed, bind};
use crate::link::Link;
use crate::session::config;
use crate::tickets::{Pinned, signed};

/// A host: a temp dir with scripts and an agent.toml.
pub struct Host {
    pub dir: tempfile::TempDir,
}

impl Host {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes an executable `#!/bin/sh` script; `{dir}` in `body` is this host's dir.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path(name);
        let body = body.replace("{dir}", self.dir.path().to_str().unwrap());
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// The argv the recorder script saw (one element per NUL-terminated entry).
    pub fn argv(&self) -> Vec<String> {
        let raw = std::fs::read(self.path("argv")).unwrap();
        raw.split(|b| *b == 0)
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, rest)| rest.to_vec())
            .unwrap()
    }

    /// A script that records its exact argv, then says hello on both outputs and exits 3.
    pub fn recorder(&self) -> PathBuf {
        self.script(
            "record-argv",
            "printf '%s\\0' \"$@\" > {dir}/argv\necho \"hello $#\"\necho warn >&2\nexit 3",
        )
    }

    /// Starts an agent with `toml` (`{dir}` replaced) as its agent.toml.
    pub async fn agent(&self, toml: &str) -> (Link, Pinned) {
        let pinned = Pinned::new();
        let (listener, url) = bind().await;
        let mut config = config(&url, &[pinned.var()]);
        let text = toml.replace("{dir}", self.dir.path().to_str().unwrap());
        config.host = Arc::new(HostConfig::parse(&self.path("agent.toml"), &text).unwrap());
        tokio::spawn(run(config, TOKEN.to_owned(), std::future::pending()));
        (Link::new(authed(&listener).await), pinned)
    }
}

pub fn request(name: &str, params: &[(&str, &str)]) -> CommandRequest {
    CommandRequest {
        name: name.into(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        correlation_id: format!("corr-{name}"),
    }
}

/// An open of `command` with a valid ticket.
pub fn open(pinned: &Pinned, stream: u64, command: CommandRequest) -> OpenRequest {
    signed(&pinned.signer, stream, Target::Command(command))
}

/// What a run sent back.
#[derive(Debug)]
pub struct Ran {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub result: RunResult,
}

/// Sends the open; `Err` is the agent's refusal.
pub async fn accepted(link: &mut Link, open: OpenRequest) -> Result<StreamId, String> {
    let id = open.stream_id;
    link.send(NodeControl::Open { request: open });
    match link
        .expect(|c| matches!(c, NodeControl::OpenResult { stream_id, .. } if *stream_id == id))
        .await
    {
        NodeControl::OpenResult { error: None, .. } => Ok(id),
        NodeControl::OpenResult { error: Some(e), .. } => Err(e),
        _ => unreachable!(),
    }
}

/// Opens, reads every record to the end, then finishes the stream.
pub async fn run_command(link: &mut Link, open: OpenRequest) -> Result<Ran, String> {
    let id = accepted(link, open).await?;
    let mut stream = link.stream(id);
    let mut decoder = RecordDecoder::new();
    let mut ran = Ran {
        stdout: Vec::new(),
        stderr: Vec::new(),
        result: RunResult::default(),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            decoder.push(&buf[..n]);
            while let Some(record) = decoder.next_record().unwrap() {
                match record {
                    Record::Stdout(b) => ran.stdout.extend_from_slice(&b),
                    Record::Stderr(b) => ran.stderr.extend_from_slice(&b),
                    Record::Done(r) => ran.result = r,
                }
            }
        }
        decoder.finish().unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read_all)
        .await
        .expect("the run did not end");
    stream.shutdown().await.unwrap();
    Ok(ran)
}

pub async fn audit(link: &mut Link, action: &str, correlation_id: &str) -> AgentAudit {
    let action = action.to_owned();
    let id = correlation_id.to_owned();
    match link
        .expect(|c| matches!(c, NodeControl::Audit { event } if event.action == action && event.correlation_id == id))
        .await
    {
        NodeControl::Audit { event } => event,
        _ => unreachable!(),
    }
}

fn declared(host: &Host) -> String {
    host.recorder();
    r#"
[[command]]
name = "greet"
description = "Says hello"
program = "{dir}/record-argv"
args = ["--name", "{name}", "--", "{token}"]

[[command.params]]
name = "name"
type = "string"
pattern = "[a-z ]+"
required = true

[[command.params]]
name = "token"
type = "string"
secret = true
default = "s3cr3t"
"#
    .to_owned()
}

#[tokio::test]
async fn a_declared_command_runs_with_its_parameters_and_is_audited() {
    let host = Host::new();
    let (mut link, pinned) = host.agent(&declared(&host)).await;
    // The self-report follows auth_ok: the declared command, never its program.
    let NodeControl::Status { status } = link
        .expect(|c| matches!(c, NodeControl::Status { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(status.version, phirepass_agent::VERSION);
    assert!(status.started_at > 0);
    assert!(status.config_path.ends_with("agent.toml"), "{status:?}");
    let greet = status.commands.iter().find(|c| c.name == "greet").unwrap();
    assert_eq!(greet.params.len(), 2);
    assert!(greet.params[1].secret);
    assert!(
        !serde_json::to_string(&status)
            .unwrap()
            .contains("record-argv")
    );

    let ran = run_command(
        &mut link,
        open(&pinned, 1, request("greet", &[("name", "ada lovelace")])),
    )
    .await
    .unwrap();
    assert_eq!(ran.result.exit_code, Some(3));
    assert!(!ran.result.success());
    assert_eq!(ran.stdout, b"hello 4\n");
    assert_eq!(ran.stderr, b"warn\n");
    assert_eq!((ran.result.stdout_bytes, ran.result.stderr_bytes), (8, 5));
    assert!(!ran.result.timed_out && ran.result.error.is_none());
    assert_eq!(host.argv(), ["--name", "ada lovelace", "--", "s3cr3t"]);

    let started = audit(&mut link, "command.started", "corr-greet").await;
    assert_eq!(started.user, "u-1");
    assert_eq!(started.params.get("name").unwrap(), "ada lovelace");
    let finished = audit(&mut link, "command.finished", "corr-greet").await;
    assert_eq!(finished.exit_code, Some(3));
    assert_eq!(finished.duration_ms, Some(ran.result.duration_ms));
    // A secret given by the caller is never in an audit event.
    let secret = request("greet", &[("name", "bob"), ("token", "hunter2")]);
    run_command(&mut link, open(&pinned, 2, secret))
        .await
        .unwrap();
    assert_eq!(host.argv(), ["--name", "bob", "--", "hunter2"]);
    let finished = audit(&mut link, "command.finished", "corr-greet").await;
    assert_eq!(finished.params.get("token").unwrap(), "<redacted>");
    assert!(
        !serde_json::to_string(&finished)
            .unwrap()
            .contains("hunter2")
    );
}

#[tokio::test]
async fn an_undeclared_command_is_refused_by_the_agent_even_with_a_valid_ticket() {
    let host = Host::new();
    let (mut link, pinned) = host.agent(&declared(&host)).await;
    let error = accepted(
        &mut link,
        open(&pinned, 1, request("rm_everything", &[("path", "/")])),
    )
    .await
    .unwrap_err();
    assert!(
        error.contains("\"rm_everything\" is not declared on this host"),
        "{error}"
    );
    let refused = audit(&mut link, "command.refused", "corr-rm_everything").await;
    assert_eq!(refused.command, "rm_everything");
    assert_eq!(refused.user, "u-1");
    assert_eq!(refused.reason.as_deref(), Some(error.as_str()));
    assert_eq!(
        refused.params.get("path").unwrap(),
        "<redacted>",
        "unknown commands' values are not recorded"
    );

    // A ticket signed for other parameters does not carry this request.
    let mut changed = open(&pinned, 2, request("greet", &[("name", "ada")]));
    changed.target = Target::Command(request("greet", &[("name", "eve")]));
    let error = accepted(&mut link, changed).await.unwrap_err();
    assert!(error.contains("ticket is for another target"), "{error}");
    let refused = audit(&mut link, "command.refused", "corr-greet").await;
    assert!(refused.reason.unwrap().contains("ticket"));
    assert!(!host.path("argv").exists(), "nothing ran");
}

#[test]
fn start_refuses_a_config_file_it_cannot_use_and_names_the_fix() {
    let host = Host::new();
    std::fs::write(
        host.path("agent.toml"),
        "[[command]]\nname = \"x\"\nprogram = \"/no/such/program\"\n",
    )
    .unwrap();
    for (path, why) in [
        (host.path("agent.toml"), "install it or fix the path"),
        (host.path("absent.toml"), "cannot read the agent config"),
    ] {
        let out = Process::new(env!("CARGO_BIN_EXE_phirepass-agent"))
            .env_clear()
            .env("PAT_TOKEN", TOKEN)
            .env("PHIREPASS_AGENT_TICKET_KEYS_FILE", host.path("pins.json"))
            .arg("start")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(path.to_str().unwrap()) && stderr.contains(why),
            "{stderr}"
        );
    }
}
