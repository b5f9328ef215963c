//! Injection attempts in parameters: each is refused, or reaches the program as ONE literal
//! argument (the recorder script writes its exact argv). No shell ever sees a value.

use crate::commands::{Host, accepted, open, request, run_command};

const TOML: &str = r#"
[[command]]
name = "echo_args"
program = "{dir}/record-argv"
args = ["--text", "{text}", "--count", "{count}", "--file", "{file}"]
rate = "100/s"

[[command.params]]
name = "text"
type = "string"
max_len = 64

[[command.params]]
name = "count"
type = "integer"
min = -5
max = 5
default = 1

[[command.params]]
name = "file"
type = "path"
root = "{dir}/logs"
default = "app.log"
"#;

#[tokio::test]
async fn injection_attempts_are_refused_or_reach_the_program_as_one_literal_argument() {
    let host = Host::new();
    host.recorder();
    std::fs::create_dir(host.path("logs")).unwrap();
    std::os::unix::fs::symlink("/etc", host.path("logs/etc")).unwrap();
    let (mut link, pinned) = host.agent(TOML).await;
    let logs = host.path("logs").canonicalize().unwrap();
    let app_log = logs.join("app.log").display().to_string();
    let pwned = host.path("pwned");
    let touch = format!("$(touch {})", pwned.display());
    let backticks = format!("`touch {}`", pwned.display());
    let mut stream = 0;

    // Shell syntax is just text: one argument each, exactly as sent.
    for text in [
        "; rm -rf /",
        "$(id)",
        "`id`",
        touch.as_str(),
        backticks.as_str(),
        "a b\tc",
        "x && y || z > /tmp/out",
    ] {
        if text.contains('\t') {
            continue; // control characters are refused below
        }
        stream += 1;
        let ran = run_command(
            &mut link,
            open(&pinned, stream, request("echo_args", &[("text", text)])),
        )
        .await
        .unwrap_or_else(|e| panic!("{text:?} refused: {e}"));
        assert_eq!(ran.result.exit_code, Some(3));
        assert_eq!(
            host.argv(),
            ["--text", text, "--count", "1", "--file", app_log.as_str()],
            "{text:?}"
        );
    }
    assert!(!pwned.exists(), "a value was run by a shell");
    // A negative integer is a number, not an option; it is passed in canonical form.
    stream += 1;
    run_command(
        &mut link,
        open(
            &pinned,
            stream,
            request("echo_args", &[("text", "n"), ("count", "-05")]),
        ),
    )
    .await
    .unwrap();
    assert_eq!(host.argv()[3], "-5");

    let long = "y".repeat(65);
    let huge = "z".repeat(5000);
    let refused: [(&[(&str, &str)], &str); 13] = [
        (&[("text", "a\nb")], "control character"),
        (&[("text", "line\r\n--admin")], "control character"),
        (&[("text", "a\tb")], "control character"),
        (&[("text", "--flag")], "could be read as an option"),
        (&[("text", "-rf")], "could be read as an option"),
        (&[("text", long.as_str())], "longer than 64 bytes"),
        (&[("text", huge.as_str())], "longer than 4096 bytes"),
        (&[("text", "a\0b")], "NUL byte"),
        (&[("file", "../../../etc/passwd")], "must stay under"),
        (&[("file", "/etc/passwd")], "must stay under"),
        (&[("file", "etc/passwd")], "through a symlink"),
        (&[("count", "1; id")], "not an integer"),
        (&[("shell", "sh")], "unknown parameter \"shell\""),
    ];
    std::fs::remove_file(host.path("argv")).unwrap();
    for (params, why) in refused {
        stream += 1;
        let error = accepted(
            &mut link,
            open(&pinned, stream, request("echo_args", params)),
        )
        .await
        .unwrap_err();
        assert!(error.contains(why), "{params:?}: {error}");
        // The reason never echoes the value (it may be a secret or a terminal escape).
        assert!(
            !error.contains(params[0].1) || params[0].1.len() < 3,
            "{error}"
        );
    }
    assert!(
        !host.path("argv").exists(),
        "a refused request ran the program"
    );
}
