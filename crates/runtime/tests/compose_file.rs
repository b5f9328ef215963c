//! deploy/compose.yml stays in step with the code: every phirepass service
//! runs a binary the workspace builds, and every variable it sets is one
//! that binary's source (or phirepass-runtime) actually reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Quoted strings of the root manifest's `members = [...]`.
fn members() -> Vec<String> {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let start = manifest.find("members = [").expect("workspace members");
    let list = &manifest[start..];
    let list = &list[..list.find(']').unwrap()];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Binary name -> workspace member directory that builds it: `[[bin]]`
/// entries, plus the package name when `src/main.rs` is its implicit binary.
fn binaries() -> BTreeMap<String, String> {
    let mut bins = BTreeMap::new();
    for member in members() {
        let Ok(manifest) = fs::read_to_string(root().join(&member).join("Cargo.toml")) else {
            continue;
        };
        let mut section = String::new();
        let mut package = None;
        let mut explicit_main = false;
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_owned();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"').to_owned();
            match (section.as_str(), key.trim()) {
                ("[package]", "name") => package = Some(value),
                ("[[bin]]", "name") => {
                    bins.insert(value, member.clone());
                }
                ("[[bin]]", "path") if value == "src/main.rs" => explicit_main = true,
                _ => {}
            }
        }
        if let Some(package) = package
            && !explicit_main
            && root().join(&member).join("src/main.rs").exists()
        {
            bins.insert(package, member.clone());
        }
    }
    bins
}

fn compose() -> Value {
    let text = fs::read_to_string(root().join("deploy/compose.yml")).unwrap();
    let mut value: Value = serde_yaml::from_str(&text).unwrap();
    value.apply_merge().unwrap();
    // Merge keys nest (environment: <<: *gateway-env), so merge again inside.
    if let Some(services) = value.get_mut("services").and_then(Value::as_mapping_mut) {
        for (_, service) in services.iter_mut() {
            service.apply_merge().unwrap();
        }
    }
    value
}

fn services(compose: &Value) -> Vec<(String, Value)> {
    compose["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

fn is_phirepass(service: &Value) -> bool {
    service["image"]
        .as_str()
        .is_some_and(|i| i.starts_with("phirepass"))
}

fn command_text(service: &Value) -> String {
    match &service["command"] {
        Value::String(s) => s.clone(),
        Value::Sequence(parts) => parts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn command_binaries(service: &Value) -> Vec<String> {
    command_text(service)
        .split(|c: char| c.is_whitespace() || "\"';&|()".contains(c))
        .filter(|t| t.starts_with("phirepass"))
        .map(str::to_owned)
        .collect()
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    };
    match &service["environment"] {
        Value::Mapping(m) => m.iter().map(|(k, v)| (text(k), text(v))).collect(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (item.to_owned(), String::new()),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn rust_sources(dir: &Path, out: &mut String) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

#[test]
fn compose_has_every_service() {
    let compose = compose();
    let names: BTreeSet<String> = services(&compose).into_iter().map(|(n, _)| n).collect();
    for infra in ["nats", "redis", "postgres", "otel-collector", "jaeger"] {
        assert!(names.contains(infra), "{infra} missing");
    }
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for (_, service) in services(&compose).iter().filter(|(_, s)| is_phirepass(s)) {
        for bin in command_binaries(service) {
            *runs.entry(bin).or_default() += 1;
        }
    }
    for bin in [
        "phirepass-authz",
        "phirepass-registry",
        "phirepass-secrets",
        "phirepass-ssh-edge",
        "phirepass-agent",
    ] {
        assert!(runs.contains_key(bin), "no service runs {bin}");
    }
    assert!(
        runs.get("phirepass-gateway-ws").copied().unwrap_or(0) >= 2,
        "two gateway replicas"
    );
    // Merge keys resolved: a gateway has the shared, gateway and own vars.
    let gateway = environment(&compose["services"]["gateway-ws-2"]);
    for var in [
        "PHIREPASS_TLS_DIR",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "NATS_URL",
        "AUTHZ_URL",
        "GATEWAY_ID",
    ] {
        assert!(
            gateway.contains_key(var),
            "gateway-ws-2 lacks {var}: {gateway:?}"
        );
    }
    assert_eq!(gateway["GATEWAY_ID"], "gw-2");
    // NATS runs the configuration `phirepass pki init` renders (JetStream, TLS, users).
    let nats = command_text(&compose["services"]["nats"]);
    assert!(
        nats.contains("-c /etc/nats/nats-server.conf"),
        "nats runs the generated configuration: {nats}"
    );
}

#[test]
fn commands_name_workspace_binaries() {
    let bins = binaries();
    for (name, service) in services(&compose()).iter().filter(|(_, s)| is_phirepass(s)) {
        let used = command_binaries(service);
        assert!(
            !used.is_empty(),
            "{name}: command names no phirepass binary"
        );
        for bin in used {
            assert!(
                bins.contains_key(&bin),
                "{name}: {bin} is not a workspace binary (have {bins:?})"
            );
        }
    }
}

#[test]
fn every_variable_set_is_read_by_the_service() {
    let bins = binaries();
    let mut runtime = String::new();
    rust_sources(&root().join("crates/runtime/src"), &mut runtime);
    // Service identities load through crates/pki (PHIREPASS_TLS_DIR and friends); the data
    // stores' settings through the crates that connect them.
    for shared in [
        "crates/pki/src",
        "crates/store/src",
        "crates/presence/src",
        "crates/bus/src",
    ] {
        rust_sources(&root().join(shared), &mut runtime);
    }
    for (name, service) in services(&compose()).iter().filter(|(_, s)| is_phirepass(s)) {
        let command = command_text(service);
        let mut sources = runtime.clone();
        for bin in command_binaries(service) {
            if let Some(member) = bins.get(&bin) {
                rust_sources(&root().join(member).join("src"), &mut sources);
            }
        }
        for var in environment(service).keys() {
            // Read by the service's shell command (e.g. the agent's token).
            let by_shell =
                command.contains(&format!("${var}")) || command.contains(&format!("${{{var}"));
            let by_code = sources.contains(&format!("\"{var}\""));
            assert!(
                by_shell || by_code,
                "{name}: sets {var}, which nothing in the service reads"
            );
        }
    }
}

#[test]
fn urls_point_at_services_in_the_file() {
    let compose = compose();
    let names: BTreeSet<String> = services(&compose).into_iter().map(|(n, _)| n).collect();
    for (name, service) in services(&compose) {
        for (var, value) in environment(&service) {
            let Some((_, rest)) = value.split_once("://") else {
                continue;
            };
            // Credentials first: a required password (`${VAR:?message}`) holds `?` and `/`.
            let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let host = rest.split(['/', '?']).next().unwrap_or_default();
            let host = host.split(':').next().unwrap_or_default();
            if host == "localhost" || host.ends_with(".localhost") || host.starts_with("127.") {
                continue; // browser-facing values such as allowed origins and tunnel URLs
            }
            assert!(
                names.contains(host),
                "{name}: {var} points at unknown host {host}"
            );
        }
    }
}

#[test]
fn agent_uses_the_container_login_recipe() {
    let compose = compose();
    let agent = &compose["services"]["agent"];
    let command = command_text(agent);
    assert!(
        command.contains("phirepass-agent login --from-stdin"),
        "{command}"
    );
    assert!(command.contains("phirepass-agent start"), "{command}");
    let env = environment(agent);
    assert!(env.contains_key("AGENT_TOKEN"));
    assert!(
        !env.contains_key("PHIREPASS_TLS_DIR"),
        "agents run on customer hosts: no service certificate"
    );
}

fn networks(service: &Value) -> BTreeSet<String> {
    match &service["networks"] {
        Value::Sequence(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::Mapping(m) => m
            .keys()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        // Compose puts a service without `networks` on `default`.
        _ => BTreeSet::from(["default".to_owned()]),
    }
}

fn volumes(service: &Value) -> Vec<String> {
    service["volumes"]
        .as_sequence()
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn agents_share_no_network_with_the_data_stores() {
    let compose = compose();
    let mut data = BTreeSet::new();
    for store in ["nats", "redis", "postgres"] {
        data.extend(networks(&compose["services"][store]));
    }
    for host in ["agent", "demo-sshd"] {
        let shared: Vec<_> = networks(&compose["services"][host])
            .intersection(&data)
            .cloned()
            .collect();
        assert!(
            shared.is_empty(),
            "{host} shares {shared:?} with NATS/Redis/PostgreSQL"
        );
    }
    // The data stores' network has no way out, and nothing but Phirepass's services join it.
    let backend = compose["networks"]["backend"]["internal"].as_bool();
    assert_eq!(backend, Some(true), "the backend network is internal");
    for (name, service) in services(&compose) {
        let joins = networks(&service).intersection(&data).count() > 0;
        let allowed = is_phirepass(&service)
            || ["nats", "redis", "postgres", "otel-collector", "jaeger"].contains(&name.as_str());
        assert!(!joins || allowed, "{name} joins the data stores' network");
    }
}

#[test]
fn no_secret_has_a_default() {
    let text = fs::read_to_string(root().join("deploy/compose.yml")).unwrap();
    let secretish = |var: &str| {
        ["PASSWORD", "SECRET", "TOKEN", "KEY"]
            .iter()
            .any(|w| var.contains(w))
    };
    for (at, _) in text.match_indices("${") {
        let inner = &text[at + 2..];
        let inner = &inner[..inner.find('}').unwrap()];
        let var = inner.split([':', '-', '?']).next().unwrap();
        if !secretish(var) {
            continue;
        }
        // `:?` (required) or an empty default (the agent's token, given on its command line).
        let required = inner.starts_with(&format!("{var}:?"));
        let empty = inner == format!("{var}:-");
        assert!(required || empty, "${{{inner}}} gives a secret a default");
    }
    assert!(
        !text.contains("PHIREPASS_SERVICE_TOKEN"),
        "the shared service token is gone"
    );
    // Users in URLs carry no password but the owner's, which is required.
    for line in text
        .lines()
        .filter(|l| l.contains("://") && l.contains('@'))
    {
        let creds = line.split("://").nth(1).unwrap().split('@').next().unwrap();
        if let Some((_, password)) = creds.split_once(':') {
            assert!(
                password.starts_with("${") && password.contains(":?"),
                "{line}"
            );
        }
    }
}

#[test]
fn every_service_holds_its_own_identity_only() {
    let compose = compose();
    let kinds = ["authz", "secrets", "registry", "gateway-ws", "ssh-edge"];
    for (name, service) in services(&compose).iter().filter(|(_, s)| is_phirepass(s)) {
        let mounted = volumes(service);
        let keys: Vec<&String> = mounted.iter().filter(|v| v.contains(".key:")).collect();
        let bin = command_binaries(service)
            .into_iter()
            .next()
            .unwrap_or_default();
        let Some(kind) = kinds.iter().find(|k| bin == format!("phirepass-{k}")) else {
            // The agent and the migrate step hold no service key.
            assert!(keys.is_empty(), "{name} mounts a service key: {keys:?}");
            continue;
        };
        for file in ["trust.crt", &format!("{kind}.crt"), &format!("{kind}.key")] {
            assert!(
                mounted
                    .iter()
                    .any(|v| v.starts_with(&format!("./pki/{file}:"))),
                "{name} lacks {file}: {mounted:?}"
            );
        }
        assert_eq!(keys.len(), 1, "{name} mounts another kind's key: {keys:?}");
        assert!(
            !mounted.iter().any(|v| v.contains("ca.key")),
            "{name} holds the CA key"
        );
    }
    // Each data store holds its own server certificate.
    for (store, files) in [
        ("nats", ["nats.crt", "nats.key", "nats-server.conf"]),
        ("redis", ["redis.crt", "redis.key", "redis.acl"]),
        (
            "postgres",
            ["postgres.crt", "postgres.key", "postgres-roles.sql"],
        ),
    ] {
        let mounted = volumes(&compose["services"][store]);
        for file in files {
            assert!(
                mounted
                    .iter()
                    .any(|v| v.starts_with(&format!("./pki/{file}:"))),
                "{store} lacks {file}"
            );
        }
    }
}
