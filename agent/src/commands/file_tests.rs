use super::*;

/// A config file in a temp dir whose `{dir}` is replaced by that dir.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let script = dir.path().join("tool");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("plain"), "").unwrap();
        Self { dir }
    }

    fn parse(&self, text: &str) -> Result<HostConfig, String> {
        let text = text.replace("{dir}", self.dir.path().to_str().unwrap());
        HostConfig::parse(&self.dir.path().join("agent.toml"), &text).map_err(|e| e.to_string())
    }
}

const FULL: &str = r#"
[agent]
server_url = "wss://gw.example.com"
allowed_ports = [3000, 8080]

[limits]
max_concurrent = 2

[[command]]
name = "tail_log"
description = "Last lines of a log"
program = "{dir}/tool"
args = ["-n", "{lines}", "--", "{file}"]
timeout = 5
output_limit = 4096
rate = "10/min"

[[command.params]]
name = "lines"
type = "integer"
min = 1
max = 1000
default = 100

[[command.params]]
name = "file"
type = "path"
root = "{dir}/logs"
required = true
"#;

#[test]
fn a_full_file_loads() {
    let f = Fixture::new();
    let host = f.parse(FULL).unwrap();
    assert_eq!(host.max_concurrent, 2);
    assert_eq!(
        host.settings.get("ALLOWED_PORTS").map(String::as_str),
        Some("3000,8080")
    );
    assert_eq!(
        host.settings.get("SERVER_URL").map(String::as_str),
        Some("wss://gw.example.com")
    );
    let cmd = &host.commands[0];
    assert_eq!(cmd.name, "tail_log");
    assert_eq!(cmd.timeout, Duration::from_secs(5));
    assert_eq!(cmd.output_limit, 4096);
    assert_eq!(cmd.rate, Some(Rate::parse("10/min").unwrap()));
    assert_eq!(cmd.params[0].default.as_deref(), Some("100"));
    assert_eq!(cmd.args.len(), 4);
}

#[test]
fn an_absent_default_file_is_no_commands_but_a_named_one_must_exist() {
    let f = Fixture::new();
    let missing = f.dir.path().join("absent.toml");
    let err = HostConfig::load(Some(&missing)).unwrap_err().to_string();
    assert!(
        err.contains("absent.toml") && err.contains(CONFIG_VAR),
        "{err}"
    );
    assert!(HostConfig::default().commands.is_empty());
}

#[test]
fn load_errors_name_the_file_the_entry_and_the_fix() {
    let f = Fixture::new();
    let cmd =
        |body: &str| format!("[[command]]\nname = \"x\"\nprogram = \"{{dir}}/tool\"\n{body}\n");
    let cases: Vec<(String, &str)> = vec![
        ("[limits]\nbogus = 1\n".into(), "unknown field `bogus`"),
        ("[limits]\nmax_concurrent = 0\n".into(), "use at least 1"),
        (
            "[[command]]\nname = \"x\"\nprogram = \"tool\"\n".into(),
            "must be an absolute path",
        ),
        (
            "[[command]]\nname = \"x\"\nprogram = \"{dir}/nope\"\n".into(),
            "install it or fix the path",
        ),
        (
            "[[command]]\nname = \"x\"\nprogram = \"{dir}/plain\"\n".into(),
            "not executable",
        ),
        (
            "[[command]]\nname = \"x\"\nprogram = \"{dir}\"\n".into(),
            "not a regular file",
        ),
        (
            "[[command]]\nname = \"Bad Name\"\nprogram = \"{dir}/tool\"\n".into(),
            "lowercase letters",
        ),
        (format!("{}{}", cmd(""), cmd("")), "declared twice"),
        (cmd("shell = true"), "unknown field `shell`"),
        (cmd("timeout = 0"), "use 1 to 3600"),
        (cmd("timeout = 7200"), "use 1 to 3600"),
        (
            cmd("user = \"no-such-user-here\""),
            "does not exist in /etc/passwd",
        ),
        (cmd("rate = \"lots\""), "e.g. \"10/min\""),
        (cmd("args = [\"--n={n}\"]"), "must be a whole argument"),
        (cmd("args = [\"{n}\"]"), "no parameter \"n\" is declared"),
        (
            cmd("[[command.params]]\nname = \"n\"\ntype = \"integer\""),
            "args has no \"{n}\"",
        ),
        (
            cmd("args = [\"{n}\"]\n[[command.params]]\nname = \"n\"\ntype = \"float\""),
            "unknown variant `float`",
        ),
        (
            cmd(
                "args = [\"{n}\"]\n[[command.params]]\nname = \"n\"\ntype = \"integer\"\nroot = \"/\"",
            ),
            "`root` does not apply",
        ),
        (
            cmd(
                "args = [\"{n}\"]\n[[command.params]]\nname = \"n\"\ntype = \"integer\"\nmin = 5\nmax = 1",
            ),
            "min 5 is above max 1",
        ),
        (
            cmd(
                "args = [\"{n}\"]\n[[command.params]]\nname = \"n\"\ntype = \"integer\"\nmax = 3\ndefault = 9",
            ),
            "default must be at most 3",
        ),
        (
            cmd("args = [\"{n}\"]\n[[command.params]]\nname = \"n\"\ntype = \"enum\""),
            "needs `values",
        ),
        (
            cmd("args = [\"{n}\"]\n[[command.params]]\nname = \"n\"\ntype = \"path\""),
            "needs `root",
        ),
        (
            cmd(
                "args = [\"{n}\"]\n[[command.params]]\nname = \"n\"\ntype = \"path\"\nroot = \"{dir}/none\"",
            ),
            "create it or fix the path",
        ),
        (
            cmd(
                "args = [\"{n}\"]\n[[command.params]]\nname = \"n\"\ntype = \"string\"\npattern = \"(\"",
            ),
            "not a valid regular expression",
        ),
        (
            cmd(
                "args = [\"{n}\"]\n[[command.params]]\nname = \"n\"\ntype = \"string\"\nrequired = true\ndefault = \"a\"",
            ),
            "remove one of them",
        ),
    ];
    for (text, why) in cases {
        let err = f.parse(&text).unwrap_err();
        assert!(err.contains("agent.toml"), "no file named: {err}");
        assert!(err.contains(why), "{text}\n=> {err}");
    }
    let err = f.parse(&cmd("timeout = 0")).unwrap_err();
    assert!(err.contains("[[command]] \"x\""), "no entry named: {err}");
}

#[test]
fn built_in_names_are_reserved() {
    let f = Fixture::new();
    let builtin = crate::builtin::manifest(&crate::builtin::BuiltinConfig::default());
    let Some(first) = builtin.first() else { return };
    let text = format!(
        "[[command]]\nname = \"{}\"\nprogram = \"{{dir}}/tool\"\n",
        first.name
    );
    assert!(f.parse(&text).unwrap_err().contains("built-in"));
}
