//! Reading secrets and confirmations: without echo on a terminal, one line per answer from
//! stdin otherwise (so scripts and tests can pipe them in). Prompts go to stderr, never stdout,
//! so `--json` output stays one clean document.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::Context;

use super::output::usage;

/// Reads one secret: no echo on a terminal, one line from stdin otherwise.
pub fn secret(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).context("reading from the terminal");
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let line = read_line()?;
    eprintln!();
    Ok(line)
}

/// A new secret, asked twice; it must match and must not be empty.
pub fn new_secret(what: &str) -> anyhow::Result<String> {
    new_secret_checked(what, |_| Ok(()))
}

/// [`new_secret`] with a rule (e.g. a length) checked on the first entry, before asking
/// again: nobody should type a password twice to learn it is too short.
pub fn new_secret_checked(
    what: &str,
    rule: impl Fn(&str) -> Result<(), String>,
) -> anyhow::Result<String> {
    let first = secret(&format!("{what}: "))?;
    if first.is_empty() {
        return Err(usage(format!("the {what} must not be empty")));
    }
    rule(&first).map_err(usage)?;
    let second = secret(&format!("{what} (again): "))?;
    if first != second {
        return Err(usage(format!(
            "the two entries of the {what} do not match: type it the same way twice"
        )));
    }
    Ok(first)
}

/// `question [y/N]`; true only for y/yes. `assume_yes` (from `--yes`) skips the question.
pub fn confirm(question: &str, assume_yes: bool) -> anyhow::Result<bool> {
    if assume_yes {
        return Ok(true);
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let answer = read_line()?;
    if !std::io::stdin().is_terminal() {
        // A terminal echoes the answer's newline; piped input does not.
        eprintln!();
    }
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// The whole of stdin, without its trailing newline (`--password-stdin`).
pub fn stdin_secret() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading stdin")?;
    let s = s.trim_end_matches(['\r', '\n']).to_string();
    if s.is_empty() {
        return Err(usage("nothing on stdin"));
    }
    Ok(s)
}

/// A file's contents, e.g. a private key or a password file (`--from-file`).
pub fn file(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading stdin")?;
    if n == 0 {
        return Err(usage("stdin closed before an answer was given"));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
