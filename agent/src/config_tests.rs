use std::collections::HashMap;

use super::*;

fn config(vars: &[(&str, &str)]) -> Result<AgentConfig, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    AgentConfig::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn defaults() {
    let c = config(&[]).unwrap();
    assert_eq!(c.mode, AppMode::Development);
    assert_eq!(c.http_addr, None, "the /version server is off by default");
    assert_eq!(c.stats_refresh_interval, Duration::from_secs(15));
    assert_eq!(c.ping_interval, Duration::from_secs(30));
    assert_eq!(c.server_url, "ws://127.0.0.1:8080/api/nodes/ws");
    assert_eq!(c.ssh_host, "127.0.0.1");
    assert_eq!(c.ssh_port, 22);
    assert_eq!(c.ssh_auth_method, SshAuthMethod::CredentialsPrompt);
    assert!(c.allowed_ports.is_empty());
}

#[test]
fn explicit_values() {
    let c = config(&[
        ("APP_MODE", "production"),
        ("AGENT_HTTP_ADDR", "127.0.0.1:9000"),
        ("STATS_REFRESH_INTERVAL", "5"),
        ("PING_INTERVAL", "7"),
        ("SERVER_HOST", "gateway"),
        ("SERVER_PORT", "8443"),
        ("SSH_HOST", "10.0.0.5"),
        ("SSH_PORT", "2222"),
        ("SSH_AUTH_METHOD", "credentials_prompt"),
        ("ALLOWED_PORTS", "3000, 8080,,9090"),
    ])
    .unwrap();
    assert_eq!(c.mode, AppMode::Production);
    assert_eq!(c.http_addr, Some("127.0.0.1:9000".parse().unwrap()));
    assert_eq!(c.stats_refresh_interval, Duration::from_secs(5));
    assert_eq!(c.ping_interval, Duration::from_secs(7));
    // A gateway elsewhere is dialled over TLS.
    assert_eq!(c.server_url, "wss://gateway:8443/api/nodes/ws");
    assert_eq!((c.ssh_host.as_str(), c.ssh_port), ("10.0.0.5", 2222));
    assert_eq!(
        c.allowed_ports.into_iter().collect::<Vec<_>>(),
        vec![3000, 8080, 9090]
    );
}

#[test]
fn generic_host_and_port_no_longer_start_the_http_server() {
    // A `PORT` exported for another program (e.g. `phirepass dev`) must not make the
    // agent bind it.
    let c = config(&[("HOST", "0.0.0.0"), ("PORT", "8081")]).unwrap();
    assert_eq!(c.http_addr, None);
    assert_eq!(c.retired_http_vars, ["HOST", "PORT"]);
    let c = config(&[("PORT", "8081"), ("AGENT_HTTP_ADDR", "127.0.0.1:8082")]).unwrap();
    assert_eq!(c.http_addr, Some("127.0.0.1:8082".parse().unwrap()));
    assert!(c.retired_http_vars.is_empty());
    assert_eq!(config(&[("AGENT_HTTP_ADDR", " ")]).unwrap().http_addr, None);
}

#[test]
fn a_bad_http_addr_names_the_variable_and_an_example() {
    let err = config(&[("AGENT_HTTP_ADDR", "8081")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("AGENT_HTTP_ADDR") && err.contains("127.0.0.1:8081"),
        "{err}"
    );
}

#[test]
fn server_url_overrides_host_and_port() {
    let c = config(&[
        ("SERVER_URL", "wss://gw.example.com"),
        ("SERVER_HOST", "ignored"),
    ])
    .unwrap();
    assert_eq!(c.server_url, "wss://gw.example.com/api/nodes/ws");
    let c = config(&[("SERVER_URL", "wss://gw.example.com/")]).unwrap();
    assert_eq!(c.server_url, "wss://gw.example.com/api/nodes/ws");
    let c = config(&[("SERVER_URL", "ws://127.0.0.1:8080/custom/ws")]).unwrap();
    assert_eq!(c.server_url, "ws://127.0.0.1:8080/custom/ws");
}

#[test]
fn plain_ws_only_to_loopback_unless_allowed_in_development() {
    for url in ["ws://localhost:8080", "ws://127.0.0.1:1", "ws://[::1]:8080"] {
        assert!(config(&[("SERVER_URL", url)]).is_ok(), "{url}");
    }
    for url in [
        "ws://10.1.1.1:8080",
        "ws://gw.example.com",
        "ws://localhost.example.com",
    ] {
        let err = config(&[("SERVER_URL", url)]).unwrap_err().to_string();
        assert!(
            err.contains("SERVER_URL") && err.contains("wss://") && err.contains(tls::INSECURE_VAR),
            "{url}: {err}"
        );
    }
    let c = config(&[
        ("SERVER_URL", "ws://10.1.1.1:8080"),
        (tls::INSECURE_VAR, "true"),
    ])
    .unwrap();
    assert!(c.allow_insecure_gateway);
    assert_eq!(c.server_url, "ws://10.1.1.1:8080/api/nodes/ws");
    let c = config(&[("SERVER_HOST", "gw"), (tls::INSECURE_VAR, "1")]).unwrap();
    assert_eq!(c.server_url, "ws://gw:8080/api/nodes/ws");
    let err = config(&[
        ("APP_MODE", "production"),
        ("SERVER_URL", "ws://10.1.1.1:8080"),
        (tls::INSECURE_VAR, "true"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(tls::INSECURE_VAR) && err.contains("development only"),
        "{err}"
    );
}

#[test]
fn gateway_ca_from_the_environment() {
    assert_eq!(config(&[]).unwrap().gateway_ca, None);
    let c = config(&[(tls::CA_VAR, "/etc/phirepass/ca.pem")]).unwrap();
    assert_eq!(
        c.gateway_ca,
        Some(std::path::PathBuf::from("/etc/phirepass/ca.pem"))
    );
}

#[test]
fn ipv6_server_host_is_bracketed() {
    let c = config(&[("SERVER_HOST", "::1")]).unwrap();
    assert_eq!(c.server_url, "ws://[::1]:8080/api/nodes/ws");
}

#[test]
fn invalid_values_name_the_variable() {
    let cases: &[(&str, &str)] = &[
        ("APP_MODE", "staging"),
        ("AGENT_HTTP_ADDR", "not-an-addr"),
        ("STATS_REFRESH_INTERVAL", "0"),
        ("PING_INTERVAL", "-1"),
        ("SERVER_URL", "http://gw:8080"),
        ("SERVER_PORT", "70000"),
        ("SSH_PORT", "x"),
        ("SSH_AUTH_METHOD", "password"),
        ("ALLOWED_PORTS", "80,abc"),
        ("ALLOWED_PORTS", "0"),
    ];
    for (name, value) in cases {
        let err = config(&[(name, value)]).unwrap_err().to_string();
        assert!(err.contains(name), "{name}={value}: {err}");
    }
}
