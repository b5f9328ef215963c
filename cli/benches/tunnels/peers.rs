//! The ways to reach the server: a Phirepass `ssh -R` tunnel, OpenSSH's `ssh -R`, and
//! sandhole, each started and stopped by the bench.

use super::*;

/// A free loopback port for programs that bind their own listeners (sshd's remote forward,
/// sandhole): bound, read and released, so a tiny race is possible.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// sandhole offers no aes128-gcm, so every tunnel client uses this cipher.
pub(crate) const CIPHER: &str = "aes256-gcm@openssh.com";

/// `ssh -N -R spec login@127.0.0.1 -p port`, stderr to `log` (kept for failure reports).
pub(crate) fn ssh_forward(
    client: &SshClient,
    login: &str,
    spec: &str,
    log: &Path,
) -> anyhow::Result<Child> {
    let options = client.options().into_iter().map(|o| {
        if o.starts_with("Ciphers=") {
            format!("Ciphers={CIPHER}")
        } else {
            o
        }
    });
    let mut c = client.command("ssh");
    c.args(options)
        .args(["-p", &client.port.to_string(), "-N"])
        .args([
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "ServerAliveInterval=15",
        ])
        .args(["-R", spec])
        .arg(format!("{login}@127.0.0.1"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    Ok(c.spawn()?)
}

pub(crate) async fn stop(mut child: Child) {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

/// Measures `ep` once `child` (the tunnel client) serves it; the client's log on failure.
pub(crate) async fn through(
    label: &str,
    ep: &Endpoint,
    mut child: Child,
    log: &Path,
) -> anyhow::Result<Figures> {
    let result = match wait_ready(ep, Some(&mut child)).await {
        Ok(()) => measure(label, ep).await,
        Err(e) => Err(e),
    };
    stop(child).await;
    result.map_err(|e| {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        e.context(format!("ssh client log: {}", log.trim()))
    })
}

pub(crate) async fn through_phirepass(
    server: SocketAddr,
    key: &Path,
    public: &str,
    dir: &Path,
) -> anyhow::Result<Figures> {
    use phirepass_proto::authz::AddUserKeyRequest;
    let cluster = Cluster::start_with(Backend::Real, 1, &[(ALICE, ALICE_PASSWORD)], |_| {}).await;
    cluster
        .authz()
        .add_user_key(AddUserKeyRequest {
            username: ALICE.into(),
            public_key: public.into(),
        })
        .await?;
    let edge = cluster
        .start_ssh_edge(&dir.join("edge_host_key"), |_| {})
        .await;
    let client = SshClient::with_key(edge.addr.port(), key);
    let log = dir.join("phirepass-ssh.log");
    let spec = format!("{TUNNEL_NAME}:80:127.0.0.1:{}", server.port());
    let child = ssh_forward(&client, ALICE, &spec, &log)?;
    let ep = Endpoint {
        base: format!("http://{}", cluster.gateways[0].addr),
        host: format!("{TUNNEL_NAME}.tunnel.localhost"),
    };
    through("phirepass ssh -R", &ep, child, &log).await
}

pub(crate) async fn openssh(
    server: SocketAddr,
    key: &Path,
    public: &str,
    dir: &Path,
) -> anyhow::Result<Figures> {
    let sshd = TestSshd::start().await?;
    let home = format!("/home/{TEST_USER}/.ssh");
    std::fs::create_dir_all(&home)?;
    let keys = format!("{home}/authorized_keys");
    if !std::fs::read_to_string(&keys)
        .unwrap_or_default()
        .contains(public)
    {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&keys)
            .await?
            .write_all(format!("{public}\n").as_bytes())
            .await?;
    }
    let port = free_port()?;
    let client = SshClient::with_key(sshd.addr.port(), key);
    let log = dir.join("openssh-ssh.log");
    let spec = format!("127.0.0.1:{port}:127.0.0.1:{}", server.port());
    let child = ssh_forward(&client, TEST_USER, &spec, &log)?;
    let ep = Endpoint {
        base: format!("http://127.0.0.1:{port}"),
        host: format!("127.0.0.1:{port}"),
    };
    through("openssh ssh -R", &ep, child, &log).await
}

pub(crate) fn sandhole_bin() -> PathBuf {
    std::env::var_os("SANDHOLE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/sandhole/bin/sandhole"))
}

pub(crate) async fn sandhole(
    server: SocketAddr,
    key: &Path,
    public: &str,
    dir: &Path,
) -> anyhow::Result<Figures> {
    let bin = sandhole_bin();
    anyhow::ensure!(bin.exists(), "{} is not installed", bin.display());
    let root = dir.join("sandhole");
    std::fs::create_dir_all(root.join("user_keys"))?;
    std::fs::create_dir_all(root.join("admin_keys"))?;
    std::fs::create_dir_all(root.join("certificates"))?;
    std::fs::write(root.join("user_keys/bench.pub"), format!("{public}\n"))?;
    let (ssh_port, http_port, https_port) = (free_port()?, free_port()?, free_port()?);
    let domain = "sandhole.localhost";
    let d = |p: &str| root.join(p).display().to_string();
    let mut server_cmd = Command::new(&bin);
    server_cmd
        .args(["--domain", domain, "--listen-address", "127.0.0.1"])
        .args(["--user-keys-directory", &d("user_keys")])
        .args(["--admin-keys-directory", &d("admin_keys")])
        .args(["--certificates-directory", &d("certificates")])
        .args(["--private-key-file", &d("server_key")])
        .args(["--ssh-port", &ssh_port.to_string()])
        .args(["--http-port", &http_port.to_string()])
        .args(["--https-port", &https_port.to_string()])
        .args([
            "--disable-https",
            "--disable-http-logs",
            "--allow-requested-subdomains",
        ])
        // Its default (64) would equal wrk's connections exactly; do not let it cap the run.
        .args(["--max-simultaneous-connections-per-ip", "4096"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(root.join("sandhole.log"))?)
        .stderr(std::fs::File::create(root.join("sandhole.err"))?)
        .kill_on_drop(true);
    let mut proc = server_cmd.spawn().context("starting sandhole")?;
    let up = within("sandhole start", READY, async {
        loop {
            if let Some(status) = proc.try_wait()? {
                let err = std::fs::read_to_string(root.join("sandhole.err")).unwrap_or_default();
                bail!("sandhole exited ({status}): {}", err.trim());
            }
            if TcpStream::connect(("127.0.0.1", ssh_port)).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let result = match up {
        Ok(()) => {
            let client = SshClient::with_key(ssh_port, key);
            let log = dir.join("sandhole-ssh.log");
            let spec = format!("{TUNNEL_NAME}:80:127.0.0.1:{}", server.port());
            let child = ssh_forward(&client, "bench", &spec, &log)?;
            let ep = Endpoint {
                base: format!("http://127.0.0.1:{http_port}"),
                host: format!("{TUNNEL_NAME}.{domain}"),
            };
            through("sandhole", &ep, child, &log).await
        }
        Err(e) => Err(e),
    };
    stop(proc).await;
    result
}
