//! `services`: the state of the systemd units the host's config declares, read with
//! `systemctl show` run directly (no shell, scrubbed environment, 5 s timeout). A caller
//! cannot name another unit: the built-in has no parameter.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

/// Where systemd installs `systemctl` on every distribution that ships it.
pub const SYSTEMCTL: &str = "/usr/bin/systemctl";

/// How long one `systemctl show` (all units at once) may take.
pub const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(5);

/// Units a host may declare (each one is a line of output, and all share one `systemctl` run).
pub const MAX_UNITS: usize = 64;

/// The properties read, in the order the output names them.
const PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,MainPID,StateChangeTimestamp";

/// systemd's unit name rules (systemd.unit(5)): at most 255 characters of ASCII letters,
/// digits and `:-_.\@`. A leading `-` is refused too, although `--` already ends the options.
pub fn valid_unit_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('-')
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// The program and its time limit; tests point `program` at a stand-in.
#[derive(Debug, Clone)]
pub struct Systemctl {
    pub program: PathBuf,
    pub timeout: Duration,
}

impl Default for Systemctl {
    fn default() -> Self {
        Self {
            program: PathBuf::from(SYSTEMCTL),
            timeout: SYSTEMCTL_TIMEOUT,
        }
    }
}

impl Systemctl {
    /// `{"services": [{"unit", "load_state", "active_state", "sub_state", "main_pid",
    /// "since"} | {"unit", "error"}]}`, one entry per declared unit, in order. A failure
    /// (no systemd, a timeout) is each unit's error, never the whole answer's.
    pub async fn report(&self, units: &[String]) -> Value {
        let mut entries: Vec<Option<Value>> = units
            .iter()
            .map(|unit| {
                (!valid_unit_name(unit))
                    .then(|| unit_error(unit, "not a valid systemd unit name".to_owned()))
            })
            .collect();
        let valid: Vec<&str> = units
            .iter()
            .filter(|u| valid_unit_name(u))
            .map(String::as_str)
            .collect();
        let shown = match valid.is_empty() {
            true => Ok(Vec::new()),
            false => self.show(&valid).await,
        };
        let mut shown = match shown {
            Ok(blocks) => blocks.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(reason) => valid.iter().map(|_| Err(reason.clone())).collect(),
        }
        .into_iter();
        for (slot, unit) in entries.iter_mut().zip(units) {
            if slot.is_none() {
                *slot = Some(match shown.next() {
                    Some(Ok(properties)) => unit_state(unit, &properties),
                    Some(Err(reason)) => unit_error(unit, reason),
                    None => unit_error(unit, "systemctl said nothing about this unit".to_owned()),
                });
            }
        }
        json!({ "services": entries.into_iter().flatten().collect::<Vec<_>>() })
    }

    /// One `systemctl show` for every unit: its blocks of `Key=Value` lines, in order.
    async fn show(&self, units: &[&str]) -> Result<Vec<Vec<(String, String)>>, String> {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(["show", "--no-pager", "--property", PROPERTIES, "--"])
            .args(units)
            .env_clear()
            .env("LC_ALL", "C")
            .env("SYSTEMD_COLORS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(|error| spawn_error(&self.program, &error))?;
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(error)) => return Err(format!("systemctl failed: {error}")),
            Err(_) => {
                // Whatever it started goes too (dropping the child killed only systemctl).
                if let Some(group) = group {
                    let _ =
                        rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                }
                return Err(format!(
                    "systemctl did not answer within {:?}",
                    self.timeout
                ));
            }
        };
        if !output.status.success() {
            return Err(failure(&String::from_utf8_lossy(&output.stderr)));
        }
        let blocks = parse_show(&String::from_utf8_lossy(&output.stdout));
        if blocks.len() != units.len() {
            return Err(format!(
                "systemctl answered for {} units instead of {}",
                blocks.len(),
                units.len()
            ));
        }
        Ok(blocks)
    }
}

/// Splits `systemctl show` output into one block per unit (blank lines separate them).
pub fn parse_show(stdout: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut current = Vec::new();
    for line in stdout.lines() {
        match line.split_once('=') {
            Some((key, value)) => current.push((key.to_owned(), value.to_owned())),
            None if line.trim().is_empty() && !current.is_empty() => {
                blocks.push(std::mem::take(&mut current));
            }
            None => {}
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

fn unit_state(unit: &str, properties: &[(String, String)]) -> Value {
    let get = |key: &str| {
        properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let main_pid = get("MainPID")
        .and_then(|pid| pid.parse::<u32>().ok())
        .filter(|&pid| pid != 0);
    json!({
        "unit": unit,
        "id": get("Id"),
        "load_state": get("LoadState"),
        "active_state": get("ActiveState"),
        "sub_state": get("SubState"),
        "main_pid": main_pid,
        "since": get("StateChangeTimestamp"),
    })
}

fn unit_error(unit: &str, error: String) -> Value {
    json!({ "unit": unit, "error": error })
}

fn spawn_error(program: &Path, error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{} does not exist: this host has no systemd (turn the services built-in off with \
             `services = []`)",
            program.display()
        ),
        _ => format!("cannot run {}: {error}", program.display()),
    }
}

/// systemctl's own words, with the likely cause first.
fn failure(stderr: &str) -> String {
    let said = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if said.contains("not been booted with systemd") || said.contains("Failed to connect to bus") {
        format!("systemd is not running on this host (systemctl: {said})")
    } else {
        format!("systemctl show failed: {said}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The shape of systemd 252's `systemctl show --property=... -- a b` (two units, a blank
    /// line between them; an unknown unit still answers, as `not-found`).
    const SHOW: &str = "Id=nginx.service\nLoadState=loaded\nActiveState=active\nSubState=running\nMainPID=812\nStateChangeTimestamp=Mon 2026-12-07 09:12:03 UTC\n\nId=nope.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nStateChangeTimestamp=\n";

    #[test]
    fn unit_names() {
        for good in [
            "nginx.service",
            "getty@tty1.service",
            "a-b_c:d.timer",
            "x\\x2dy.mount",
            "sshd",
        ] {
            assert!(valid_unit_name(good), "{good}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "-H",
            "--host=x",
            ".hidden",
            "a b",
            "a;b",
            "a/b",
            "$(id)",
            long.as_str(),
            "ü.service",
        ] {
            assert!(!valid_unit_name(bad), "{bad}");
        }
    }

    #[test]
    fn show_output_parses_per_unit() {
        let blocks = parse_show(SHOW);
        assert_eq!(blocks.len(), 2);
        let nginx = unit_state("nginx", &blocks[0]);
        assert_eq!(nginx["id"], "nginx.service");
        assert_eq!(nginx["active_state"], "active");
        assert_eq!(nginx["sub_state"], "running");
        assert_eq!(nginx["load_state"], "loaded");
        assert_eq!(nginx["main_pid"], 812);
        assert_eq!(nginx["since"], "Mon 2026-12-07 09:12:03 UTC");
        let nope = unit_state("nope.service", &blocks[1]);
        assert_eq!(nope["load_state"], "not-found");
        assert!(
            nope["main_pid"].is_null() && nope["since"].is_null(),
            "{nope}"
        );
    }

    /// A stand-in `systemctl` (a script) that prints `stdout` and exits with `code`.
    fn stand_in(dir: &Path, body: &str) -> Systemctl {
        use std::os::unix::fs::PermissionsExt as _;
        let program = dir.join("systemctl");
        std::fs::write(&program, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        Systemctl {
            program,
            timeout: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn each_declared_unit_gets_its_state_and_bad_names_never_reach_systemctl() {
        let dir = tempfile::tempdir().unwrap();
        // The stand-in records its argv, then answers like systemctl for two units.
        let argv = dir.path().join("argv");
        let body = format!(
            "printf '%s\\n' \"$@\" > {}\ncat <<'END'\n{SHOW}END",
            argv.display()
        );
        let systemctl = stand_in(dir.path(), &body);
        let units = [
            "nginx".to_owned(),
            "a;b".to_owned(),
            "nope.service".to_owned(),
        ];
        let report = systemctl.report(&units).await;
        let services = report["services"].as_array().unwrap();
        assert_eq!(services.len(), 3, "{report}");
        assert_eq!(services[0]["unit"], "nginx");
        assert_eq!(services[0]["active_state"], "active");
        assert!(
            services[1]["error"]
                .as_str()
                .unwrap()
                .contains("not a valid"),
            "{report}"
        );
        assert_eq!(services[2]["load_state"], "not-found");
        let argv = std::fs::read_to_string(argv).unwrap();
        assert_eq!(
            argv.lines().collect::<Vec<_>>(),
            [
                "show",
                "--no-pager",
                "--property",
                PROPERTIES,
                "--",
                "nginx",
                "nope.service"
            ]
        );
    }

    #[tokio::test]
    async fn a_hung_systemctl_is_each_units_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut systemctl = stand_in(dir.path(), "sleep 30");
        systemctl.timeout = Duration::from_millis(300);
        let report = systemctl
            .report(&["a.service".to_owned(), "b.service".to_owned()])
            .await;
        let services = report["services"].as_array().unwrap();
        assert_eq!(services.len(), 2);
        for entry in services {
            assert!(
                entry["error"].as_str().unwrap().contains("did not answer"),
                "{report}"
            );
        }
    }

    #[tokio::test]
    async fn a_host_without_systemctl_says_so() {
        let systemctl = Systemctl {
            program: PathBuf::from("/nonexistent/systemctl"),
            timeout: SYSTEMCTL_TIMEOUT,
        };
        let report = systemctl.report(&["nginx.service".to_owned()]).await;
        let error = report["services"][0]["error"].as_str().unwrap();
        assert!(
            error.contains("no systemd") && error.contains("services = []"),
            "{error}"
        );
    }

    /// This machine has `/usr/bin/systemctl` but no systemd as PID 1 (a container): the real
    /// program's refusal becomes each unit's error. Where systemd runs, the unit's state.
    #[tokio::test]
    async fn the_real_systemctl_on_this_host() {
        if !Path::new(SYSTEMCTL).exists() {
            return;
        }
        let report = Systemctl::default()
            .report(&["phirepass-test-none.service".to_owned()])
            .await;
        let entry = &report["services"][0];
        if Path::new("/run/systemd/system").exists() {
            assert_eq!(entry["load_state"], "not-found", "{report}");
        } else {
            let error = entry["error"].as_str().unwrap();
            assert!(
                error.contains("systemd is not running on this host"),
                "{error}"
            );
        }
    }
}
