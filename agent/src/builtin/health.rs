//! `health`: CPU, memory, swap, disk per mount, load, uptime and the agent's own figures,
//! read from `/proc` and `statvfs(2)`.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::stats;

/// The span between the two CPU samples (a fresh figure for this call, not the heartbeat's).
pub const CPU_WINDOW: Duration = Duration::from_millis(250);

/// Mounts reported at most (a host with thousands of bind mounts stays readable).
pub const MAX_MOUNTS: usize = 64;

/// Kernel-provided and in-memory filesystems: they hold no data worth a disk figure.
const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// One line of `/proc/self/mounts` that names a real filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub path: String,
    pub fs_type: String,
}

/// The mounts of `/proc/self/mounts` worth a disk figure, in order, one per mount point
/// (the last mount on a path hides the ones under it).
pub fn parse_mounts(mounts: &str) -> Vec<Mount> {
    let mut found: Vec<Mount> = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(path), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if PSEUDO_FILESYSTEMS.contains(&fs_type) {
            continue;
        }
        let mount = Mount {
            source: unescape(source),
            path: unescape(path),
            fs_type: fs_type.to_owned(),
        };
        found.retain(|m| m.path != mount.path);
        found.push(mount);
    }
    found
}

/// Undoes the kernel's octal escapes in mount fields (`\040` is a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Size, use and inodes of the filesystem mounted at `mount.path`; `None` when it cannot be
/// read (a stale network mount, a file bind-mounted over a file) or has no blocks.
fn disk(mount: &Mount) -> Option<Value> {
    let path = Path::new(&mount.path);
    if !path.is_dir() {
        return None;
    }
    let vfs = rustix::fs::statvfs(path).ok()?;
    if vfs.f_blocks == 0 {
        return None;
    }
    let block = vfs.f_frsize.max(1);
    let size = vfs.f_blocks.saturating_mul(block);
    let free = vfs.f_bfree.saturating_mul(block);
    Some(json!({
        "mount": mount.path,
        "source": mount.source,
        "type": mount.fs_type,
        "size_bytes": size,
        "used_bytes": size.saturating_sub(free),
        "available_bytes": vfs.f_bavail.saturating_mul(block),
        "inodes_total": vfs.f_files,
        "inodes_used": vfs.f_files.saturating_sub(vfs.f_ffree),
        "inodes_available": vfs.f_favail,
        "read_only": vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
    }))
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    stats::kib_field(status, "VmRSS")
}

/// This process's resident set, in bytes (0 when `/proc` cannot be read).
pub fn own_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(parse_vm_rss)
        .unwrap_or(0)
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// CPU use over [`CPU_WINDOW`], in percent; `None` when `/proc/stat` cannot be read.
async fn cpu_percent() -> Option<f32> {
    let first = stats::parse_cpu(&read("/proc/stat")?)?;
    tokio::time::sleep(CPU_WINDOW).await;
    let second = stats::parse_cpu(&read("/proc/stat")?)?;
    Some(stats::cpu_percent(first, second))
}

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`): 100 on every architecture the
/// agent is built for (x86_64, aarch64).
const USER_HZ: u64 = 100;

/// When this process started, in Unix milliseconds: the kernel's boot time (`btime` of
/// `/proc/stat`) plus the process's `starttime` ticks (field 22 of `/proc/self/stat`).
pub fn process_started_at_ms(proc_stat: &str, self_stat: &str) -> Option<u64> {
    let btime: u64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let after_comm = &self_stat[self_stat.rfind(')')? + 1..];
    let ticks: u64 = after_comm.split_whitespace().nth(19)?.parse().ok()?;
    Some(
        btime
            .saturating_mul(1000)
            .saturating_add(ticks.saturating_mul(1000) / USER_HZ),
    )
}

/// This process's start time (Unix milliseconds), 0 when `/proc` cannot tell.
pub fn own_started_at_ms() -> u64 {
    match (read("/proc/stat"), read("/proc/self/stat")) {
        (Some(proc_stat), Some(self_stat)) => {
            process_started_at_ms(&proc_stat, &self_stat).unwrap_or(0)
        }
        _ => 0,
    }
}

fn now_ms() -> u64 {
    u64::try_from(phirepass_runtime::clock::now_millis()).unwrap_or(0)
}

/// The agent's own figures, as `health` and `/status` report them; `started_at_ms` 0 means
/// "ask /proc".
pub fn agent_figures(started_at_ms: u64) -> Value {
    let started_at_ms = match started_at_ms {
        0 => own_started_at_ms(),
        known => known,
    };
    json!({
        "version": crate::VERSION,
        "pid": std::process::id(),
        "rss_bytes": own_rss_bytes(),
        "started_at": started_at_ms,
        "uptime_secs": now_ms().saturating_sub(started_at_ms) / 1000,
    })
}

/// The whole report.
pub async fn report() -> Value {
    let cpu = cpu_percent().await;
    let meminfo = read("/proc/meminfo").unwrap_or_default();
    let kib = |name| stats::kib_field(&meminfo, name);
    let (mem_total, mem_used) = stats::parse_meminfo(&meminfo).unwrap_or_default();
    let swap_total = kib("SwapTotal").unwrap_or(0);
    let swap_free = kib("SwapFree").unwrap_or(0);
    let load = read("/proc/loadavg")
        .as_deref()
        .and_then(stats::parse_loadavg);
    let mounts = read("/proc/self/mounts")
        .as_deref()
        .map(parse_mounts)
        .unwrap_or_default();
    let disks: Vec<Value> = mounts.iter().filter_map(disk).take(MAX_MOUNTS).collect();
    json!({
        "cpu": { "percent": cpu, "window_ms": CPU_WINDOW.as_millis() as u64 },
        "memory": {
            "total_bytes": mem_total,
            "used_bytes": mem_used,
            "available_bytes": mem_total.saturating_sub(mem_used),
        },
        "swap": {
            "total_bytes": swap_total,
            "used_bytes": swap_total.saturating_sub(swap_free),
            "free_bytes": swap_free,
        },
        "disks": disks,
        "load": load.map(|(one, five, fifteen)| json!({ "1m": one, "5m": five, "15m": fifteen })),
        "uptime_secs": read("/proc/uptime").as_deref().and_then(stats::parse_uptime),
        "agent": agent_figures(0),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mounts_skip_pseudo_filesystems_and_unescape_paths() {
        let mounts = "proc /proc proc rw 0 0\n\
            /dev/vda / ext4 rw,relatime 0 0\n\
            tmpfs /dev/shm tmpfs rw 0 0\n\
            cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n\
            /dev/vdb /srv/my\\040data xfs rw 0 0\n\
            overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n\
            /dev/vdc /srv/my\\040data ext4 rw 0 0\n\
            short line\n";
        let found = parse_mounts(mounts);
        let paths: Vec<(&str, &str)> = found
            .iter()
            .map(|m| (m.path.as_str(), m.fs_type.as_str()))
            .collect();
        // The later mount on "/srv/my data" hides the earlier one.
        assert_eq!(
            paths,
            [
                ("/", "ext4"),
                ("/var/lib/docker/overlay2/x/merged", "overlay"),
                ("/srv/my data", "ext4"),
            ]
        );
        assert_eq!(unescape("a\\011b\\134c\\0"), "a\tb\\c\\0");
    }

    #[test]
    fn start_time_from_boot_time_and_ticks() {
        let proc_stat = "cpu  1 2 3 4\nbtime 1700000000\nprocesses 5\n";
        // A command name with a space and a parenthesis; starttime (field 22) = 12345 ticks.
        let self_stat = "4242 (my (agent) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 12345 1000 200 18446744073709551615";
        assert_eq!(
            process_started_at_ms(proc_stat, self_stat),
            Some(1_700_000_000_000 + 123_450)
        );
        assert_eq!(process_started_at_ms("cpu 1\n", self_stat), None);
        assert_eq!(process_started_at_ms(proc_stat, "garbage"), None);
    }

    #[test]
    fn rss_from_status() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t    2108 kB\n"),
            Some(2108 * 1024)
        );
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn live_report_has_every_figure() {
        let report = report().await;
        let cpu = report["cpu"]["percent"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&cpu), "{report}");
        let total = report["memory"]["total_bytes"].as_u64().unwrap();
        let used = report["memory"]["used_bytes"].as_u64().unwrap();
        let available = report["memory"]["available_bytes"].as_u64().unwrap();
        assert!(
            total > 0 && used <= total && used + available == total,
            "{report}"
        );
        assert!(report["swap"]["total_bytes"].is_u64(), "{report}");
        assert!(report["load"]["1m"].as_f64().unwrap() >= 0.0, "{report}");
        assert!(report["uptime_secs"].as_u64().unwrap() > 0, "{report}");
        let disks = report["disks"].as_array().unwrap();
        let root = disks
            .iter()
            .find(|d| d["mount"] == "/")
            .expect("/ is reported");
        let size = root["size_bytes"].as_u64().unwrap();
        assert!(
            size > 0 && root["used_bytes"].as_u64().unwrap() <= size,
            "{root}"
        );
        assert!(root["available_bytes"].as_u64().unwrap() <= size, "{root}");
        assert!(root["inodes_total"].as_u64().unwrap() > 0, "{root}");
        assert!(
            root["type"].as_str().is_some_and(|t| !t.is_empty()),
            "{root}"
        );
        assert!(
            disks
                .iter()
                .all(|d| d["type"] != "proc" && d["type"] != "tmpfs")
        );
        let agent = &report["agent"];
        assert_eq!(agent["version"], crate::VERSION);
        assert_eq!(
            agent["pid"].as_u64().unwrap(),
            u64::from(std::process::id())
        );
        assert!(agent["rss_bytes"].as_u64().unwrap() > 0, "{agent}");
        // This test process started before now, and not before the machine booted.
        let started = agent["started_at"].as_u64().unwrap();
        let now = u64::try_from(phirepass_runtime::clock::now_millis()).unwrap();
        assert!(
            started <= now + 1000 && started > now - 86_400_000 * 365,
            "{agent}"
        );
    }
}
