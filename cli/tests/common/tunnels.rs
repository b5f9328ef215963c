//! `ssh -R` tunnel fixtures: a deployment with two users (alice, bob) holding keys, one
//! ssh-edge, real OpenSSH clients publishing tunnels, tiny local HTTP and echo servers, and
//! TunnelStreams opened from the test the way a gateway opens them.

use std::process::Stdio;
use std::time::Duration;

use phirepass_proto::authz::{AddUserKeyRequest, IssueOpenTicketRequest};
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_proto::registry::{
    GetTunnelRequest, KickTunnelRequest, ListTunnelsRequest, TunnelPresence,
};
use phirepass_runtime::grpc::AuthedChannel;
use phirepass_tunnel::{OpenError, StreamConfig, StreamId, Subjects, Target, TunnelStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout};

use super::{Backend, Cluster, SshClient, SshEdge, new_user_key};

pub const BOB: &str = "bob";
pub const TUNNEL_URL: &str = "http://{name}.tunnel.test";

pub struct TunnelFixture {
    pub cluster: Cluster,
    pub edge: SshEdge,
    pub keys: tempfile::TempDir,
}

impl TunnelFixture {
    pub async fn start() -> Self {
        let cluster = Cluster::start_with(
            Backend::Real,
            0,
            &[
                (super::ALICE, super::ALICE_PASSWORD),
                (BOB, "bob-Password-1"),
            ],
            |_| {},
        )
        .await;
        let keys = tempfile::tempdir().expect("tempdir");
        for user in [super::ALICE, BOB] {
            let (_, public) = new_user_key(keys.path(), user);
            cluster
                .authz()
                .add_user_key(AddUserKeyRequest {
                    username: user.into(),
                    public_key: public,
                })
                .await
                .expect("add key");
        }
        let host_key = keys.path().join("edge_host_key");
        let edge = cluster
            .start_ssh_edge(&host_key, |c| {
                c.tunnel_url = TUNNEL_URL.into();
                c.public_host = Some("edge.test".into());
            })
            .await;
        Self {
            cluster,
            edge,
            keys,
        }
    }

    pub fn client(&self, user: &str) -> SshClient {
        SshClient::with_key(self.edge.addr.port(), &self.keys.path().join(user))
    }

    pub fn registry(&self) -> RegistryClient<AuthedChannel> {
        self.cluster.registry()
    }

    pub async fn get(&self, name: &str, port: u32) -> Option<TunnelPresence> {
        self.registry()
            .get_tunnel(GetTunnelRequest {
                name: name.into(),
                port,
            })
            .await
            .ok()
            .map(|r| r.into_inner())
    }

    /// Live tunnels of `username`.
    pub async fn tunnels_of(&self, username: &str) -> Vec<TunnelPresence> {
        self.registry()
            .list_tunnels(ListTunnelsRequest { user_id: None })
            .await
            .expect("list tunnels")
            .into_inner()
            .tunnels
            .into_iter()
            .filter(|t| t.username == username)
            .collect()
    }

    /// Waits until `username` has `count` live tunnels; returns them.
    pub async fn wait_tunnels(&self, username: &str, count: usize) -> Vec<TunnelPresence> {
        for _ in 0..200 {
            let list = self.tunnels_of(username).await;
            if list.len() == count {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{username} does not have {count} tunnels: {:?}",
            self.tunnels_of(username).await
        );
    }

    /// Waits until (name, port) is gone from the registry; false on timeout.
    pub async fn wait_gone(&self, name: &str, port: u32, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.get(name, port).await.is_none() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub async fn kick(&self, name: &str) -> Vec<String> {
        self.registry()
            .kick_tunnel(KickTunnelRequest { name: name.into() })
            .await
            .expect("kick tunnel")
            .into_inner()
            .session_ids
    }

    /// Opens a TunnelStream to the tunnel's node over a bus connection of the test's own.
    pub async fn open(&self, tunnel: &TunnelPresence) -> TunnelStream {
        self.open_port(tunnel, tunnel.port as u16)
            .await
            .expect("open tunnel stream")
    }

    /// Opens a TunnelStream to `port` on the tunnel's node as a test edge, with authz's
    /// ticket as a gateway gets it: public for port 80, the publisher's otherwise.
    pub async fn open_port(
        &self,
        tunnel: &TunnelPresence,
        port: u16,
    ) -> Result<TunnelStream, OpenError> {
        let bus = self.cluster.bus();
        let subjects = Subjects::new(self.cluster.prefix.clone());
        let edge_id = format!("test-{:08x}", rand_u32());
        let authz = self.cluster.authz();
        let public = port == 80;
        let request = |id: StreamId| IssueOpenTicketRequest {
            user_id: if public {
                String::new()
            } else {
                tunnel.user_id.clone()
            },
            target: tunnel.name.clone(),
            node_id: tunnel.node_id.clone(),
            port: u32::from(port),
            edge_id: edge_id.clone(),
            stream_id: id.0,
            public_tunnel: public,
            tunnel_owner: !public,
            ..Default::default()
        };
        phirepass_tunnel::open_ticketed(
            &bus,
            &subjects,
            &edge_id,
            &tunnel.node_id,
            Target::Port { port },
            Vec::new(),
            &StreamConfig::default(),
            |id| async move {
                let reply = authz
                    .clone()
                    .issue_open_ticket(request(id))
                    .await
                    .map_err(|s| OpenError::NoTicket(s.message().to_string()))?;
                Ok(Some(reply.into_inner().ticket))
            },
        )
        .await
    }

    /// `GET /` through the tunnel; returns the whole response.
    pub async fn http_get(&self, tunnel: &TunnelPresence) -> String {
        let mut stream = self.open(tunnel).await;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {}.tunnel.test\r\nConnection: close\r\n\r\n",
            tunnel.name
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
            .await
            .expect("response in time")
            .expect("read response");
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id()
}

/// An HTTP/1.1 server on 127.0.0.1:0 answering every request with `200` and body `tag`.
pub async fn http_server(tag: &str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let tag = tag.to_string();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let tag = tag.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(socket);
                let mut line = String::new();
                // Read the request head; the body (if any) is not needed.
                loop {
                    line.clear();
                    match reader.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" || line == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    tag.len(),
                    tag
                );
                let mut socket = reader.into_inner();
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

/// A TCP echo server on 127.0.0.1:0.
pub async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// A running `ssh -R` client.
pub struct Publisher {
    /// Owns the key and known_hosts the client reads.
    pub client: SshClient,
    pub child: Child,
    /// The client's stderr goes here (read at any time, also while it runs).
    pub stderr_file: tempfile::NamedTempFile,
    pub stdout: Option<BufReader<ChildStdout>>,
    /// Lines read from stdout so far.
    pub seen: Vec<String>,
}

impl Publisher {
    /// Starts `ssh [-N] -R spec... login@edge`; with `hold` false the client runs `-N`.
    pub fn start(
        client: SshClient,
        login: &str,
        specs: &[&str],
        extra: &[&str],
        hold: bool,
    ) -> Self {
        let mut args: Vec<String> = vec!["-o".into(), "ExitOnForwardFailure=yes".into()];
        if !hold {
            args.push("-N".into());
        }
        for spec in specs {
            args.push("-R".into());
            args.push(spec.to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = client.ssh_command(login, &refs, &[]);
        command.stdin(Stdio::null());
        let stderr_file = tempfile::NamedTempFile::new().expect("stderr file");
        command.stderr(Stdio::from(stderr_file.reopen().expect("stderr file")));
        let mut child = command.spawn().expect("spawn ssh");
        let stdout = child.stdout.take().map(BufReader::new);
        Self {
            client,
            child,
            stderr_file,
            stdout,
            seen: Vec::new(),
        }
    }

    /// Reads stdout until a line contains `needle`; returns that line.
    pub async fn expect_line(&mut self, needle: &str) -> String {
        let stdout = self.stdout.as_mut().expect("stdout");
        let read = async {
            loop {
                let mut line = String::new();
                match stdout.read_line(&mut line).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {
                        let line = line.trim_end().to_string();
                        self.seen.push(line.clone());
                        if line.contains(needle) {
                            return Some(line);
                        }
                    }
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), read).await {
            Ok(Some(line)) => line,
            _ => panic!(
                "no line with {needle:?}; saw {:?}; stderr: {}",
                self.seen,
                self.stderr()
            ),
        }
    }

    /// Waits for the client to exit; returns its status and stderr.
    pub async fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> Option<(std::process::ExitStatus, String)> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?
            .ok()?;
        Some((status, self.stderr()))
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_file.path()).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
