//! Where `phirepass admin` takes an API token from: PHIREPASS_TOKEN or `--token-file` keep it
//! out of the process's arguments; `--token` still works but warns that every local user can
//! read it.

use super::*;

const ARGV_WARNING: &str = "every local user can read";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_from_environment_or_file_and_a_warning_for_argv() {
    let d = Deployment::start().await;
    d.ok(
        // An admin: API token scopes are capped by the role.
        &["users", "add", "alice", "--admin", "--password-stdin"],
        "alice-pass-1",
    )
    .await;
    let read = d
        .ok(
            &[
                "tokens", "api", "create", "--user", "alice", "--name", "ci", "--scope", "read",
            ],
            "",
        )
        .await;
    let read = read.trim().to_string();

    let out = d
        .run_env(&["users", "list"], "", &[("PHIREPASS_TOKEN", &read)])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains(ARGV_WARNING), "{}", stderr(&out));

    let file = d.dir.path().join("api.token");
    std::fs::write(&file, format!("{read}\n")).unwrap();
    let path = file.to_str().unwrap();
    let out = d
        .run_env(&["--token-file", path, "users", "list"], "", &[])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("alice"), "{}", stdout(&out));
    assert!(!stderr(&out).contains(ARGV_WARNING), "{}", stderr(&out));

    // A file that is not there is an error naming it, not a silent fallback.
    let missing = d.dir.path().join("missing.token");
    let missing = missing.to_str().unwrap();
    let out = d
        .run_env(
            &["--token-file", missing, "users", "list"],
            "",
            &[("PHIREPASS_TOKEN", &read)],
        )
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains(missing), "{}", stderr(&out));

    let out = d
        .run_env(&["--token", &read, "users", "list"], "", &[])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches(ARGV_WARNING).count(), 1, "{err}");
    assert!(
        err.contains("PHIREPASS_TOKEN") && err.contains("--token-file"),
        "{err}"
    );
    assert!(
        !err.contains(&read),
        "the warning does not repeat the token: {err}"
    );
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
