//! Harnesses for end-to-end tests against real components.

pub mod browser;
pub mod sshd;

/// A random lowercase-hex suffix for isolating subjects, keys and databases between tests.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Resident memory of process `pid` (`"self"` for this one), from `/proc/<pid>/status`; 0 when
/// unreadable.
pub fn rss_bytes(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}
