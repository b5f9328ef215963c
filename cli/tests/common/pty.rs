//! Drives `ssh -tt` inside a real pseudo-terminal (python3's `pty`, script in
//! `pty_driver.py`), for the menu and the prompts a person would see.

use super::{SshClient, run};

/// Drives a command inside a real PTY (python3's `pty`): `steps` are `["send", text]`,
/// `["expect", text]`, `["resize", rows, cols]`; the driver exits with the command's status
/// (90/91 when an expectation times out or the PTY closes first).
pub const PTY_DRIVER: &str = include_str!("pty_driver.py");

/// Runs `ssh -tt login@edge` in a PTY through `steps`; returns the driver's output.
pub async fn drive_pty(
    client: &SshClient,
    login: &str,
    steps: serde_json::Value,
) -> std::process::Output {
    let ssh = client.ssh_command(login, &["-tt"], &[]);
    let std = ssh.as_std();
    let mut c = client.command("python3");
    c.arg("-c")
        .arg(PTY_DRIVER)
        .arg(steps.to_string())
        .arg("ssh");
    c.args(std.get_args());
    run(c).await
}
