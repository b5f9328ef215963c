//! What `phirepass admin nodes run` reports per node: the outcome of each run (ok, failed,
//! offline, refused, denied), as a block of text or JSON, and the summary line.

use std::io::Write as _;

use phirepass_proto::commands::RunResult;
use serde_json::{Value, json};

use super::output::{Exit, Out, fail};

/// What became of one node's run, whatever path it took.
#[derive(Default)]
pub struct Outcome {
    pub node: String,
    pub status: Status,
    pub correlation_id: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u64,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// Why it did not run (offline, refused, denied) or what the agent reported going wrong.
    pub error: Option<String>,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub enum Status {
    #[default]
    Ok,
    Failed,
    Offline,
    Denied,
    Refused,
    Error,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Offline => "offline",
            Status::Denied => "denied",
            Status::Refused => "refused",
            Status::Error => "error",
        }
    }
}

impl Outcome {
    /// "exit 0, 41 ms", "killed by signal 9, timed out, 30000 ms", "offline: ...".
    pub fn headline(&self) -> String {
        if let Some(e) = self.error.as_deref()
            && self.exit_code.is_none()
            && self.signal.is_none()
        {
            return format!("{}: {e}", self.status.as_str());
        }
        let mut parts = Vec::new();
        if let Some(code) = self.exit_code {
            parts.push(format!("exit {code}"));
        }
        if let Some(signal) = self.signal {
            parts.push(format!("killed by signal {signal}"));
        }
        if self.timed_out {
            parts.push("timed out".to_owned());
        }
        parts.push(format!("{} ms", self.duration_ms));
        if self.stdout_truncated {
            parts.push("stdout truncated".to_owned());
        }
        if self.stderr_truncated {
            parts.push("stderr truncated".to_owned());
        }
        if let Some(e) = &self.error {
            parts.push(e.clone());
        }
        parts.join(", ")
    }

    pub fn to_json(&self) -> Value {
        json!({
            "node": self.node,
            "status": self.status.as_str(),
            "correlation_id": self.correlation_id,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "duration_ms": self.duration_ms,
            "timed_out": self.timed_out,
            "stdout": String::from_utf8_lossy(&self.stdout),
            "stderr": String::from_utf8_lossy(&self.stderr),
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "error": self.error,
        })
    }
}

/// "3 nodes: 2 ok, 0 failed, 1 offline" and whether all were ok.
pub fn summary(outcomes: &[Outcome]) -> (String, Value, bool) {
    let ok = outcomes.iter().filter(|o| o.status == Status::Ok).count();
    let offline = outcomes
        .iter()
        .filter(|o| o.status == Status::Offline)
        .count();
    let failed = outcomes.len() - ok - offline;
    let n = outcomes.len();
    let line = format!(
        "{n} node{}: {ok} ok, {failed} failed, {offline} offline",
        if n == 1 { "" } else { "s" }
    );
    let doc = json!({"nodes": n, "ok": ok, "failed": failed, "offline": offline});
    (line, doc, ok == n)
}

/// What a refusal by the `Commands` service becomes for one node.
pub fn refusal(node: &str, command: &str, s: &tonic::Status) -> (Status, String) {
    use tonic::Code;
    let msg = s.message();
    match s.code() {
        Code::NotFound => (
            Status::Error,
            format!("no node {node} that you can see ({msg})"),
        ),
        Code::PermissionDenied => (
            Status::Denied,
            format!(
                "not allowed to run {command} on {node} ({msg}); an administrator can allow it: \
                 phirepass admin access grant --user <you> --node {node} --command {command}"
            ),
        ),
        Code::Unavailable if msg.contains("offline") => (Status::Offline, msg.to_owned()),
        Code::Unavailable => (
            Status::Error,
            "the gateway's commands endpoint is unreachable; is it running? (check --commands-url)"
                .to_owned(),
        ),
        Code::FailedPrecondition | Code::InvalidArgument => (
            Status::Refused,
            format!("refused by the agent on {node}: {msg}"),
        ),
        Code::ResourceExhausted => (
            Status::Error,
            format!("{node} is busy ({msg}); try again shortly"),
        ),
        Code::Unauthenticated => (
            Status::Error,
            format!("not authenticated by the gateway ({msg}): check --token/PHIREPASS_TOKEN"),
        ),
        _ => (Status::Error, format!("{node}: {msg}")),
    }
}

/// The exit code of a one-node refusal (the CLI's documented codes).
pub fn refusal_exit(s: &tonic::Status, status: Status) -> Exit {
    match (s.code(), status) {
        (tonic::Code::NotFound, _) => Exit::NotFound,
        (_, Status::Denied) => Exit::Denied,
        (_, Status::Refused) => Exit::Conflict,
        (tonic::Code::Unavailable, _) => Exit::Unavailable,
        _ => Exit::Failure,
    }
}

pub fn outcome_of(node: &str, result: Option<&RunResult>) -> Outcome {
    let mut o = Outcome {
        node: node.to_owned(),
        ..Outcome::default()
    };
    let Some(r) = result else {
        o.status = Status::Error;
        o.error = Some("the gateway answered without a result".to_owned());
        return o;
    };
    o.exit_code = r.exit_code;
    o.signal = r.signal;
    o.duration_ms = r.duration_ms;
    o.timed_out = r.timed_out;
    o.stdout_truncated = r.stdout_truncated;
    o.stderr_truncated = r.stderr_truncated;
    o.error = (!r.error.is_empty()).then(|| r.error.clone());
    let ok = r.exit_code == Some(0) && r.error.is_empty() && !r.timed_out;
    o.status = if ok { Status::Ok } else { Status::Failed };
    o
}

/// Every result, then the summary; non-zero when any node was not ok.
pub fn report(out: Out, command: &str, mut outcomes: Vec<Outcome>) -> anyhow::Result<()> {
    outcomes.sort_by(|a, b| a.node.cmp(&b.node));
    let (line, doc, all_ok) = summary(&outcomes);
    if out.json {
        let results: Vec<Value> = outcomes.iter().map(Outcome::to_json).collect();
        out.done(
            "",
            json!({"command": command, "results": results, "summary": doc}),
        );
    } else {
        let mut stdout = std::io::stdout().lock();
        for o in &outcomes {
            writeln!(stdout, "==> {} ({}) <==", o.node, o.headline())?;
            stdout.write_all(&o.stdout)?;
            if !o.stdout.is_empty() && !o.stdout.ends_with(b"\n") {
                writeln!(stdout)?;
            }
            if !o.stderr.is_empty() {
                writeln!(stdout, "--- stderr ---")?;
                stdout.write_all(&o.stderr)?;
                if !o.stderr.ends_with(b"\n") {
                    writeln!(stdout)?;
                }
            }
        }
        stdout.flush()?;
        eprintln!("{line}");
    }
    match all_ok {
        true => Ok(()),
        false => Err(fail(Exit::Failure, line)),
    }
}
