//! What the admin CLI prints: aligned tables or one JSON document on stdout, and errors that
//! carry a meaningful exit code (see [`Exit`]).

use std::fmt;

use serde_json::Value;

/// Exit codes scripts can rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything else.
    Failure = 1,
    /// 2: bad usage: clap's own errors, and arguments the CLI or the server rejects.
    Usage = 2,
    /// 3: the named user, group, host, credential or token does not exist.
    NotFound = 3,
    /// 4: missing/invalid token, or the token's scope does not allow the call.
    Denied = 4,
    /// 5: it already exists, or the state forbids it (e.g. a credential still assigned).
    Conflict = 5,
    /// 6: the service cannot be reached.
    Unavailable = 6,
}

/// An error the user should see as is (`error: <message>`), with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A failure with `exit` and `message`.
pub fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        exit,
        message: message.into(),
    })
}

/// A usage error found by the CLI itself (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    fail(Exit::Usage, message)
}

/// Maps a gRPC status to an exit code; the message is the server's, never transport internals.
pub fn status(service: &str, s: tonic::Status) -> anyhow::Error {
    use tonic::Code;
    let msg = s.message();
    let (exit, message) = match s.code() {
        Code::NotFound => (Exit::NotFound, msg.to_string()),
        Code::Unauthenticated => (
            Exit::Denied,
            format!("not authenticated by {service} ({msg}): check --token/PHIREPASS_TOKEN"),
        ),
        Code::PermissionDenied => (Exit::Denied, format!("permission denied: {msg}")),
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => {
            (Exit::Conflict, msg.to_string())
        }
        Code::Unavailable | Code::DeadlineExceeded => (
            Exit::Unavailable,
            format!("{service} is unreachable; is it running? (check --{service}-url)"),
        ),
        Code::InvalidArgument | Code::OutOfRange => (Exit::Usage, msg.to_string()),
        Code::Unimplemented => (
            Exit::Failure,
            format!("{service} does not support this operation (older server?)"),
        ),
        _ => (Exit::Failure, format!("{service} failed: {msg}")),
    };
    fail(exit, message)
}

/// The exit code for an error returned by `phirepass admin`.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.chain()
        .find_map(|c| c.downcast_ref::<Failure>())
        .map_or(Exit::Failure as u8, |f| f.exit as u8)
}

/// Where results go: a table (or a sentence) for people, JSON for scripts.
#[derive(Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// A list: a table with `headers`, or a JSON array of `items`.
    pub fn list(&self, headers: &[&str], rows: Vec<Vec<String>>, items: Vec<Value>) {
        if self.json {
            print_json(&Value::Array(items));
        } else {
            print!("{}", table(headers, &rows));
        }
    }

    /// A completed action: `sentence` for people, `doc` as JSON.
    pub fn done(&self, sentence: &str, doc: Value) {
        if self.json {
            print_json(&doc);
        } else {
            println!("{sentence}");
        }
    }
}

fn print_json(doc: &Value) {
    match serde_json::to_string_pretty(doc) {
        Ok(s) => println!("{s}"),
        Err(_) => println!("{doc}"),
    }
}

/// Left-aligned columns, two spaces apart, header row first.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Unix milliseconds as an RFC 3339-like UTC time (no extra dependency).
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["NAME", "ID"],
            &[
                vec!["alice".into(), "1".into()],
                vec!["bo".into(), "22".into()],
            ],
        );
        assert_eq!(t, "NAME   ID\nalice  1\nbo     22\n");
    }

    #[test]
    fn time_formats_epoch_ms() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn exit_codes_follow_grpc_codes() {
        let e = status("authz", tonic::Status::not_found("no such user"));
        assert_eq!(exit_code(&e), 3);
        assert_eq!(e.to_string(), "no such user");
        let e = status("authz", tonic::Status::already_exists("taken"));
        assert_eq!(exit_code(&e), 5);
        assert_eq!(exit_code(&anyhow::anyhow!("x")), 1);
    }
}
