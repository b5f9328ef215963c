//! Host statistics from `/proc` (Linux); zeros elsewhere.

use std::fs;
use std::time::{Duration, Instant};

use phirepass_tunnel::HostStats;

/// Cumulative CPU jiffies from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

/// Parses the aggregate `cpu` line of `/proc/stat`.
pub fn parse_cpu(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map_while(|f| f.parse().ok())
        .collect();
    if fields.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal; guest time is already
    // counted in user, so stop at steal.
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: total.saturating_sub(idle),
        total,
    })
}

/// CPU use between two samples, in percent.
pub fn cpu_percent(prev: CpuTimes, now: CpuTimes) -> f32 {
    let total = now.total.saturating_sub(prev.total);
    if total == 0 {
        return 0.0;
    }
    let busy = now.busy.saturating_sub(prev.busy).min(total);
    (busy as f64 * 100.0 / total as f64) as f32
}

/// A `Name:   123 kB` field of `/proc/meminfo` or `/proc/<pid>/status`, in bytes.
pub fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
            .map(|kib| kib.saturating_mul(1024))
    })
}

/// `(total, used)` bytes from `/proc/meminfo`; used = total - available.
pub fn parse_meminfo(meminfo: &str) -> Option<(u64, u64)> {
    let field = |name: &str| kib_field(meminfo, name);
    let total = field("MemTotal")?;
    // Old kernels lack MemAvailable; approximate it.
    let available = field("MemAvailable").or_else(|| {
        let free = field("MemFree")?;
        Some(free + field("Buffers").unwrap_or(0) + field("Cached").unwrap_or(0))
    })?;
    Some((total, total.saturating_sub(available)))
}

/// The three load averages from `/proc/loadavg`.
pub fn parse_loadavg(loadavg: &str) -> Option<(f64, f64, f64)> {
    let mut it = loadavg.split_whitespace().map(str::parse::<f64>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some((a, b, c)),
        _ => None,
    }
}

/// Whole seconds since boot from `/proc/uptime`.
pub fn parse_uptime(uptime: &str) -> Option<u64> {
    let secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some(secs as u64)
}

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn hostname() -> String {
    read("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The shortest span a CPU figure covers: closer samples differ by a jiffy or two, so
/// their "0 %" or "100 %" would mean nothing.
pub const MIN_CPU_WINDOW: Duration = Duration::from_secs(1);

/// Samples host statistics; CPU use is measured between samples at least
/// [`MIN_CPU_WINDOW`] apart, and is reported unmeasured until there are two.
#[derive(Debug, Default)]
pub struct StatsSampler {
    prev_cpu: Option<(CpuTimes, Instant)>,
    last_percent: Option<f32>,
}

impl StatsSampler {
    /// Takes a first CPU sample as the baseline of the first figure.
    pub fn new() -> Self {
        Self {
            prev_cpu: read("/proc/stat")
                .as_deref()
                .and_then(parse_cpu)
                .map(|cpu| (cpu, Instant::now())),
            last_percent: None,
        }
    }

    /// Reads `/proc`; fields that cannot be read are zero. A sample taken too soon after
    /// the previous one repeats the last CPU figure (none yet: unmeasured).
    pub fn sample(&mut self) -> HostStats {
        let now = Instant::now();
        match (
            self.prev_cpu,
            read("/proc/stat").as_deref().and_then(parse_cpu),
        ) {
            (Some((prev, at)), Some(cpu)) if now.duration_since(at) >= MIN_CPU_WINDOW => {
                self.last_percent = Some(cpu_percent(prev, cpu));
                self.prev_cpu = Some((cpu, now));
            }
            (None, Some(cpu)) => self.prev_cpu = Some((cpu, now)),
            _ => {}
        }
        let (mem_total_bytes, mem_used_bytes) = read("/proc/meminfo")
            .as_deref()
            .and_then(parse_meminfo)
            .unwrap_or_default();
        let (load1, load5, load15) = read("/proc/loadavg")
            .as_deref()
            .and_then(parse_loadavg)
            .unwrap_or_default();
        HostStats {
            hostname: hostname(),
            cpu_percent: self.last_percent.unwrap_or(0.0),
            cpu_measured: self.last_percent.is_some(),
            mem_total_bytes,
            mem_used_bytes,
            load1,
            load5,
            load15,
            uptime_secs: read("/proc/uptime")
                .as_deref()
                .and_then(parse_uptime)
                .unwrap_or(0),
            // Filled in by the session, which knows the configuration.
            allowed_ports: None,
            ssh_reachable: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const STAT: &str =
        "cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 50 2 25 400 10 1 1 0 0 0\nintr 1 2 3\n";

    #[test]
    fn cpu_line_and_delta() {
        let a = parse_cpu(STAT).unwrap();
        assert_eq!(
            a,
            CpuTimes {
                busy: 160,
                total: 980
            }
        );
        let b = CpuTimes {
            busy: 160 + 30,
            total: 980 + 100,
        };
        assert!((cpu_percent(a, b) - 30.0).abs() < 1e-4);
        assert_eq!(cpu_percent(a, a), 0.0);
        assert!(parse_cpu("intr 1 2\n").is_none());
    }

    #[test]
    fn meminfo_uses_available() {
        let info = "MemTotal:       16000 kB\nMemFree:         1000 kB\nMemAvailable:    6000 kB\nBuffers: 10 kB\n";
        assert_eq!(parse_meminfo(info), Some((16000 * 1024, 10000 * 1024)));
        let old = "MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 25 kB\n";
        assert_eq!(parse_meminfo(old), Some((100 * 1024, 60 * 1024)));
        assert_eq!(parse_meminfo("Nothing: 1 kB"), None);
    }

    #[test]
    fn loadavg_and_uptime() {
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 1/389 12345\n"),
            Some((0.52, 0.58, 0.59))
        );
        assert_eq!(parse_loadavg("x"), None);
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350735));
        assert_eq!(parse_uptime(""), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn live_sample_is_plausible() {
        let mut sampler = StatsSampler::new();
        let stats = sampler.sample();
        assert!(!stats.hostname.is_empty());
        assert!(stats.mem_total_bytes > 0);
        assert!(stats.mem_used_bytes <= stats.mem_total_bytes);
        assert!((0.0..=100.0).contains(&stats.cpu_percent));
        assert!(stats.uptime_secs > 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn no_cpu_figure_until_two_samples_a_second_apart() {
        let mut sampler = StatsSampler::new();
        // The first heartbeat follows the start closely: no figure, not "0 %".
        assert_eq!(sampler.sample().cpu(), None);
        std::thread::sleep(MIN_CPU_WINDOW + Duration::from_millis(100));
        let measured = sampler.sample().cpu();
        assert!(
            measured.is_some_and(|p| (0.0..=100.0).contains(&p)),
            "{measured:?}"
        );
        // Too soon after: the last figure again, never back to unmeasured.
        assert_eq!(sampler.sample().cpu(), measured);
    }
}
