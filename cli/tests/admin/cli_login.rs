//! `phirepass login --device`: the real binary waits for a code, a logged-in user approves it
//! over the gateway's API, the API token lands in a 0600 file, and `phirepass admin` uses it.
use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{Backend, Cluster};
use phirepass_proto::authz::SetUserAdminRequest;
use phirepass_testkit::browser::{http, login};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_stores_an_api_token_that_admin_uses() {
    let cluster =
        Cluster::start_with(Backend::Embedded, 1, &[("alice", "alice-password")], |_| {}).await;
    cluster
        .authz()
        .set_user_admin(SetUserAdminRequest {
            username: "alice".into(),
            admin: true,
        })
        .await
        .unwrap();
    let addr = cluster.gateways[0].addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("conf/api.token");

    let mut child = Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .args(["login", "--device", "--gateway", &format!("http://{addr}")])
        .env("PHIREPASS_TOKEN_FILE", &token_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let code = tokio::time::timeout(T, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(code) = line.strip_prefix("and enter the code: ") {
                return code.trim().to_string();
            }
        }
        panic!("login exited without printing a code");
    })
    .await
    .expect("a code within 30 s");

    // Nothing is stored while the code waits.
    assert!(!token_file.exists());
    let session = login(&addr, "alice", "alice-password").await.unwrap();
    let cookie = format!("__Host-pp_session={session}");
    let origin = format!("http://{addr}");
    // As /activate does: look the code up, then approve that request, ticking admin scope
    // (an admin's approval gives none unless chosen, issue #9 finding 5).
    let call = |path: &'static str, body: serde_json::Value| {
        let (cookie, origin, addr) = (cookie.clone(), origin.clone(), addr.clone());
        async move {
            http(
                &addr,
                "POST",
                path,
                &[("cookie", &cookie), ("origin", &origin)],
                &body.to_string(),
            )
            .await
            .unwrap()
        }
    };
    let details = call("/api/device/inspect", json!({ "user_code": code })).await;
    assert_eq!(details.status, 200, "{}", details.body);
    let details: serde_json::Value = serde_json::from_str(&details.body).unwrap();
    assert_eq!(details["kind"], "cli");
    let approve = call(
        "/api/device/approve",
        json!({ "user_code": code, "device_id": details["device_id"], "admin_scope": true }),
    )
    .await;
    assert_eq!(approve.status, 200, "{}", approve.body);
    assert!(approve.body.contains("\"cli\""), "{}", approve.body);

    let status = tokio::time::timeout(T, child.wait())
        .await
        .expect("login returns after approval")
        .unwrap();
    let mut rest = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(status.success(), "login failed: {rest}");
    assert!(rest.contains("Logged in as alice"), "{rest}");
    let stored = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        stored.trim().starts_with("pp_api_"),
        "an API token was stored"
    );
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // `phirepass admin` presents the stored token: no --token, no service token, no dev dir.
    let ca = cluster.write_trust(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .args([
            "admin",
            "--authz-url",
            &cluster.authz_url,
            "--json",
            "users",
            "list",
        ])
        .env("PHIREPASS_CA", &ca)
        .env_remove("PHIREPASS_TOKEN")
        .env("PHIREPASS_DATA_DIR", dir.path().join("no-dev-here"))
        .env("PHIREPASS_TOKEN_FILE", &token_file)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"alice\""), "{stdout}");

    // A forged token in the same place is refused (exit 3: denied), not silently ignored.
    std::fs::write(&token_file, "pp_api_0000_forged\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .args(["admin", "--authz-url", &cluster.authz_url, "users", "list"])
        .env("PHIREPASS_CA", &ca)
        .env_remove("PHIREPASS_TOKEN")
        .env("PHIREPASS_DATA_DIR", dir.path().join("no-dev-here"))
        .env("PHIREPASS_TOKEN_FILE", &token_file)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_reports_an_unreachable_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_phirepass"))
        .args(["login", "--device", "--gateway", "http://127.0.0.1:1"])
        .env("PHIREPASS_TOKEN_FILE", dir.path().join("api.token"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the gateway"), "{err}");
    assert!(!dir.path().join("api.token").exists());
}
