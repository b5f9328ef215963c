//! The built-ins through the library's interface (`builtin::manifest`, `builtin::run`), as the
//! command executor calls them. `containers` talks to a stand-in Docker engine: a real HTTP
//! server on a Unix socket this test starts, answering `GET /containers/json?all=1` in the
//! Docker API's JSON shape (there is no Docker engine on the test machine; it is not dockerd).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use phirepass_agent::builtin::{self, BuiltinConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// Two containers as the Docker engine (API 1.4x) lists them, trimmed to common fields.
fn engine_list() -> Value {
    json!([
        {"Id": "8dfafdbc3a40b2c1f0e4d1c2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6",
         "Names": ["/web-1"], "Image": "nginx:1.27", "ImageID": "sha256:abc",
         "Command": "nginx -g 'daemon off;'", "Created": 1733500000, "State": "running",
         "Status": "Up 2 hours", "Ports": [], "Labels": {}, "Mounts": []},
        {"Id": "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988",
         "Names": ["/db"], "Image": "postgres:16", "Created": 1733400000, "State": "exited",
         "Status": "Exited (0) 3 days ago"}
    ])
}

/// How the stand-in engine answers.
#[derive(Clone, Copy)]
enum Answer {
    /// HTTP/1.0 with Content-Length, as dockerd answers an HTTP/1.0 request.
    Sized,
    /// HTTP/1.1 chunked, as a proxy in front of the engine might.
    Chunked,
    /// A body over the 4 MiB limit.
    Huge,
    /// The engine's error shape.
    Error,
}

/// Starts the stand-in engine at `dir/docker.sock`; each request line it received is sent on
/// the returned channel.
fn engine(dir: &Path, answer: Answer) -> (PathBuf, mpsc::UnboundedReceiver<String>) {
    let socket = dir.join("docker.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let (seen, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                if stream.read(&mut byte).await.unwrap() == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            seen.send(head.lines().next().unwrap_or_default().to_owned())
                .unwrap();
            let body = engine_list().to_string();
            let reply = match answer {
                Answer::Sized => format!(
                    "HTTP/1.0 200 OK\r\nApi-Version: 1.45\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
                Answer::Chunked => {
                    let (a, b) = body.split_at(body.len() / 2);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                        a.len(),
                        b.len()
                    )
                }
                Answer::Huge => format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[\"{}\"]",
                    "x".repeat(5 * 1024 * 1024)
                ),
                Answer::Error => {
                    let body = r#"{"message":"client version 1.99 is too new"}"#;
                    format!(
                        "HTTP/1.0 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                }
            };
            // The client may stop reading once it has seen enough (the huge answer).
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (socket, requests)
}

fn config(socket: &Path) -> BuiltinConfig {
    BuiltinConfig {
        docker_socket: socket.to_owned(),
        ..BuiltinConfig::default()
    }
}

fn names(config: &BuiltinConfig) -> Vec<String> {
    builtin::manifest(config)
        .into_iter()
        .map(|c| c.name)
        .collect()
}

async fn run(name: &str, config: &BuiltinConfig) -> Option<Result<Vec<u8>, String>> {
    builtin::run(name, &BTreeMap::new(), config).await
}

#[tokio::test]
async fn containers_are_listed_from_the_engine_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, mut requests) = engine(dir.path(), Answer::Sized);
    let config = config(&socket);
    assert!(names(&config).contains(&"containers".to_owned()));
    let output = run("containers", &config).await.unwrap().unwrap();
    let report: Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(
        report["containers"],
        json!([
            {"id": "8dfafdbc3a40", "names": ["web-1"], "image": "nginx:1.27", "state": "running",
             "status": "Up 2 hours", "created": 1733500000},
            {"id": "1f2e3d4c5b6a", "names": ["db"], "image": "postgres:16", "state": "exited",
             "status": "Exited (0) 3 days ago", "created": 1733400000}
        ])
    );
    assert_eq!(
        requests.recv().await.unwrap(),
        "GET /containers/json?all=1 HTTP/1.0"
    );
}

#[tokio::test]
async fn a_chunked_answer_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _requests) = engine(dir.path(), Answer::Chunked);
    let output = run("containers", &config(&socket)).await.unwrap().unwrap();
    let report: Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(
        report["containers"].as_array().unwrap().len(),
        2,
        "{report}"
    );
}

#[tokio::test]
async fn an_oversized_or_refused_answer_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _requests) = engine(dir.path(), Answer::Huge);
    let error = run("containers", &config(&socket))
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.contains("larger than 4 MiB"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let (socket, _requests) = engine(dir.path(), Answer::Error);
    let error = run("containers", &config(&socket))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        error,
        "the Docker engine answered 400: client version 1.99 is too new"
    );
}

#[tokio::test]
async fn without_a_socket_containers_is_not_offered() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir.path().join("docker.sock"));
    assert_eq!(names(&config), ["health"]);
    let error = run("containers", &config).await.unwrap().unwrap_err();
    assert!(
        error.contains("cannot connect to the Docker engine") && error.contains("docker.sock"),
        "{error}"
    );
    // A plain file where the socket should be is not a socket either.
    std::fs::write(&config.docker_socket, b"").unwrap();
    assert_eq!(names(&config), ["health"]);
}

#[tokio::test]
async fn each_builtin_can_be_turned_off_and_takes_no_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _requests) = engine(dir.path(), Answer::Sized);
    let all = BuiltinConfig {
        services: vec!["nginx.service".to_owned()],
        ..config(&socket)
    };
    let manifest = builtin::manifest(&all);
    assert_eq!(names(&all), ["health", "services", "containers"]);
    for info in &manifest {
        assert!(info.builtin && info.params.is_empty(), "{info:?}");
        assert!(
            info.timeout_secs >= 5 && info.output_limit_bytes >= 64 * 1024,
            "{info:?}"
        );
    }
    let off = BuiltinConfig {
        health: false,
        services: Vec::new(),
        containers: false,
        docker_socket: socket.clone(),
    };
    assert!(builtin::manifest(&off).is_empty());
    for name in ["health", "services", "containers", "shell"] {
        assert!(run(name, &off).await.is_none(), "{name} is off");
    }
    let params = BTreeMap::from([("unit".to_owned(), "sshd.service".to_owned())]);
    let error = builtin::run("services", &params, &all)
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.contains("takes no parameters"), "{error}");
}

#[tokio::test]
async fn health_answers_json_with_every_section() {
    let output = run("health", &BuiltinConfig::default())
        .await
        .unwrap()
        .unwrap();
    let report: Value = serde_json::from_slice(&output).unwrap();
    for section in [
        "cpu",
        "memory",
        "swap",
        "disks",
        "load",
        "uptime_secs",
        "agent",
    ] {
        assert!(!report[section].is_null(), "{section} missing: {report}");
    }
    assert!(
        report["disks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["mount"] == "/")
    );
    assert!(report["agent"]["rss_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn declared_unit_names_are_checked_when_the_config_is_read() {
    let bad = BuiltinConfig {
        services: vec!["nginx.service".to_owned(), "--host=evil".to_owned()],
        ..BuiltinConfig::default()
    };
    let error = bad.validate().unwrap_err();
    assert!(
        error.contains("--host=evil") && error.contains("not a systemd unit name"),
        "{error}"
    );
    assert_eq!(BuiltinConfig::default().validate(), Ok(()));
}
