//! `node token create` on an existing node (refused unless --rotate), and the password
//! prompts' messages: checked before the second entry, grammatical, naming the user.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_token_for_an_existing_node_needs_rotate() {
    let d = Deployment::start().await;
    d.ok(
        &["users", "add", "alice", "--password-stdin"],
        "alice-pass-1",
    )
    .await;
    let create = [
        "node", "token", "create", "--user", "alice", "--name", "web-1",
    ];
    let first = d.ok(&create, "").await;

    // Again, without asking: refused (exit 5), and the token in use keeps working.
    let err = d.fails(&create, "", 5).await;
    for needle in ["node web-1 already exists", "--rotate", "disconnected"] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let listed = d.json(&["tokens", "list", "--kind", "node"], "").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["revoked"] == false),
        "{listed}"
    );

    // Asked for: a new token, and the operator is told what happens to the running agent.
    let mut rotate = create.to_vec();
    rotate.push("--rotate");
    let out = d.run(&rotate, "").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let second = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        second.starts_with("pp_node_") && second != first.trim(),
        "{second}"
    );
    let said = stderr(&out);
    assert!(
        said.contains("rotated") && said.contains("disconnected") && said.contains("login"),
        "{said}"
    );
    let listed = d.json(&["tokens", "list", "--kind", "node"], "").await;
    let revoked = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["revoked"] == true)
        .count();
    assert_eq!(revoked, 1, "{listed}");

    // Rotating a node that does not exist says how to create it.
    let err = d
        .fails(
            &[
                "node", "token", "create", "--user", "alice", "--name", "web-9", "--rotate",
            ],
            "",
            3,
        )
        .await;
    assert!(
        err.contains("web-9") && err.contains("without --rotate"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_prompts_say_what_is_wrong_at_once() {
    let d = Deployment::start().await;
    // Too short: refused after the first entry, before "(again)" is asked.
    let err = d.fails(&["users", "add", "bob"], "short\n", 2).await;
    assert!(err.contains("8-1024 characters"), "{err}");
    assert!(
        !err.contains("(again)"),
        "asked twice for a password already refused: {err}"
    );

    let err = d
        .fails(&["users", "add", "bob"], "bob-pass-12\nbob-pass-13\n", 2)
        .await;
    assert!(
        err.contains("the two entries of the password for bob do not match"),
        "{err}"
    );

    // A user that does not exist is named.
    let err = d
        .fails(
            &["users", "passwd", "ghost", "--password-stdin"],
            "ghost-pass-1",
            3,
        )
        .await;
    assert!(err.contains("user ghost not found"), "{err}");
    let err = d.fails(&["users", "disable", "ghost"], "", 3).await;
    assert!(err.contains("user ghost not found"), "{err}");
    let err = d
        .fails(
            &[
                "node", "token", "create", "--user", "ghost", "--name", "web-1",
            ],
            "",
            3,
        )
        .await;
    assert!(err.contains("user ghost not found"), "{err}");
}
