//! The bench's HTTP side: a small local server (a short body, or `DOWNLOAD` bytes), curl for
//! the 1 GiB download and wrk for requests per second, with their outputs parsed.

use super::*;

pub(crate) fn start_server() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::spawn(serve_http(socket));
            }
        })
    });
    Ok(addr)
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// HTTP/1.1 keep-alive: `/1g` streams 1 GiB of zeros from one static buffer, anything else
/// answers a small body. Request bodies are read and dropped.
pub(crate) async fn serve_http(mut s: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 {
                return Ok(());
            }
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let big = head.split_whitespace().nth(1) == Some("/1g");
        let close = head.contains("\r\nconnection: close");
        let mut body: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        buf.drain(..end);
        let buffered = body.min(buf.len());
        buf.drain(..buffered);
        body -= buffered;
        while body > 0 {
            let n = s.read(&mut chunk[..body.min(16 * 1024)]).await?;
            if n == 0 {
                return Ok(());
            }
            body -= n;
        }
        let length = if big {
            DOWNLOAD
        } else {
            SMALL_BODY.len() as u64
        };
        let connection = if close { "Connection: close\r\n" } else { "" };
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n{connection}\r\n"
        );
        if big {
            s.write_all(header.as_bytes()).await?;
            for _ in 0..(DOWNLOAD >> 20) {
                s.write_all(&ZEROS).await?;
            }
        } else {
            s.write_all(&[header.as_bytes(), SMALL_BODY].concat())
                .await?;
        }
        if close {
            return Ok(());
        }
    }
}

// ---- measuring one path ----

/// Where a path is reached: a URL base (`http://127.0.0.1:port`) and the Host header to send.
pub(crate) struct Endpoint {
    pub(crate) base: String,
    pub(crate) host: String,
}

pub(crate) struct Figures {
    pub(crate) rps: f64,
    pub(crate) p99_ms: f64,
    /// wrk's non-2xx/3xx responses and socket errors (should be 0).
    pub(crate) errors: u64,
    pub(crate) mib_s: f64,
}

/// `curl` GET; returns (status, bytes, bytes per second).
pub(crate) async fn curl(
    ep: &Endpoint,
    path: &str,
    limit: Duration,
) -> anyhow::Result<(u16, u64, f64)> {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time"])
        .arg(limit.as_secs().to_string())
        .args([
            "-w",
            "%{http_code} %{size_download} %{speed_download}",
            "-H",
        ])
        .arg(format!("Host: {}", ep.host))
        .arg(format!("{}{path}", ep.base))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running curl")?;
    let text = text(&out.stdout);
    let mut parts = text.split_whitespace();
    let mut next = || parts.next().unwrap_or("0");
    let status = next().parse().unwrap_or(0);
    let size = next().parse().unwrap_or(0);
    let speed = next().parse().unwrap_or(0.0);
    Ok((status, size, speed))
}

/// Polls `GET /` until it answers 200 (the warm-up request); `child` must stay alive meanwhile.
pub(crate) async fn wait_ready(ep: &Endpoint, mut child: Option<&mut Child>) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY;
    let mut last = 0;
    while Instant::now() < deadline {
        if let Some(c) = child.as_deref_mut()
            && let Some(status) = c.try_wait()?
        {
            bail!("the tunnel client exited early ({status})");
        }
        let (status, _, _) = curl(ep, "/", Duration::from_secs(5)).await?;
        if status == 200 {
            return Ok(());
        }
        last = status;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "{}/ with Host {} never answered 200 (last status {last})",
        ep.base,
        ep.host
    )
}

/// Parses wrk's `99%  1.23ms` into milliseconds.
pub(crate) fn wrk_time_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

pub(crate) fn parse_wrk(out: &str) -> anyhow::Result<(f64, f64, u64)> {
    let mut rps = None;
    let mut p99 = None;
    let mut errors = 0u64;
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = wrk_time_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            errors += v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    match (rps, p99) {
        (Some(rps), Some(p99)) => Ok((rps, p99, errors)),
        _ => bail!("could not parse wrk output:\n{out}"),
    }
}

pub(crate) async fn measure(label: &str, ep: &Endpoint) -> anyhow::Result<Figures> {
    let out = within("wrk", STEP, async {
        Ok(Command::new("wrk")
            .args([
                "-t2",
                &format!("-c{CONNECTIONS}"),
                &format!("-d{WRK_SECS}s"),
            ])
            .args(["--latency", "-H", &format!("Host: {}", ep.host)])
            .arg(format!("{}/", ep.base))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await?)
    })
    .await?;
    anyhow::ensure!(out.status.success(), "wrk failed: {}", text(&out.stderr));
    let (rps, p99_ms, errors) = parse_wrk(&text(&out.stdout))?;
    let started = Instant::now();
    let (status, size, speed) = within("download", STEP, curl(ep, "/1g", STEP)).await?;
    let wall = started.elapsed();
    anyhow::ensure!(
        status == 200 && size == DOWNLOAD,
        "{label}: 1 GiB download got status {status}, {size} bytes after {wall:?}"
    );
    let mib_s = speed / f64::from(1u32 << 20);
    println!(
        "  {label:<22} {rps:>10.0} req/s   p99 {p99_ms:>8.2} ms   {mib_s:>8.1} MiB/s   errors {errors}"
    );
    Ok(Figures {
        rps,
        p99_ms,
        errors,
        mib_s,
    })
}

// ---- the tunnels ----
