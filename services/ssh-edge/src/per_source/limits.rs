//! The settings of per-source limits: a cap on one source's unauthenticated connections and
//! penalties in the spirit of OpenSSH's `PerSourceMaxStartups` and `PerSourcePenalties`.

use std::time::Duration;

/// Limits per source before authentication. A source is an IPv4 address or an IPv6 /64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerSourceLimits {
    /// Unauthenticated connections one source may hold
    /// (`SSH_EDGE_PER_SOURCE_MAX_UNAUTHENTICATED`, default 10; 0: no cap).
    pub max_unauthenticated: usize,
    /// `SSH_EDGE_PER_SOURCE_PENALTIES` (`off` turns them off).
    pub penalties: Option<Penalties>,
    /// Sources tracked at once (`SSH_EDGE_PER_SOURCE_MAX_SOURCES`, default 65536); when the
    /// table is full of live entries, new sources are let in untracked (only the global cap
    /// applies to them) until entries expire.
    pub max_sources: usize,
}

impl Default for PerSourceLimits {
    fn default() -> Self {
        Self {
            max_unauthenticated: 10,
            penalties: Some(Penalties::default()),
            max_sources: 65536,
        }
    }
}

impl PerSourceLimits {
    /// No per-source limit: for deployments where every client has one address (loopback
    /// `phirepass dev`), where a per-source limit would be a global one.
    pub fn off() -> Self {
        Self {
            max_unauthenticated: 0,
            penalties: None,
            max_sources: 65536,
        }
    }
}

/// Seconds of penalty each event adds to its source. Penalties add up and run down in real
/// time; once a source's outstanding penalty reaches `min`, its new connections are refused
/// until it runs out, and every refused attempt adds `refused` (up to `max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Penalties {
    /// A connection closed after failed authentication attempts and no login.
    pub authfail: Duration,
    /// A connection closed before any authentication attempt (scanners, banner grabs).
    pub noauth: Duration,
    /// A connection that did not log in before the authentication deadline.
    pub grace_exceeded: Duration,
    /// A connection refused: over the per-source cap, or while penalised.
    pub refused: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Default for Penalties {
    fn default() -> Self {
        Self {
            authfail: Duration::from_secs(5),
            noauth: Duration::from_secs(1),
            grace_exceeded: Duration::from_secs(10),
            refused: Duration::from_secs(1),
            min: Duration::from_secs(15),
            max: Duration::from_secs(600),
        }
    }
}

/// `off`, or `key:seconds` pairs separated by commas or spaces (`authfail:5s,min:15s`);
/// keys not given keep their defaults.
pub fn parse_penalties(raw: &str) -> Result<Option<Penalties>, String> {
    if raw.trim() == "off" {
        return Ok(None);
    }
    let mut p = Penalties::default();
    for item in raw.split([',', ' ']).filter(|s| !s.is_empty()) {
        let (key, value) = item
            .split_once(':')
            .ok_or_else(|| format!("expected key:seconds, got {item:?}"))?;
        let secs: u64 = value
            .strip_suffix('s')
            .unwrap_or(value)
            .parse()
            .map_err(|_| format!("{key}: expected seconds like 5s, got {value:?}"))?;
        let slot = match key {
            "authfail" => &mut p.authfail,
            "noauth" => &mut p.noauth,
            "grace-exceeded" => &mut p.grace_exceeded,
            "refused" => &mut p.refused,
            "min" => &mut p.min,
            "max" => &mut p.max,
            other => {
                return Err(format!(
                    "unknown penalty {other:?} (authfail, noauth, grace-exceeded, refused, min, max)"
                ));
            }
        };
        *slot = Duration::from_secs(secs);
    }
    if p.min > p.max {
        return Err("min must not exceed max".into());
    }
    Ok(Some(p))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn penalties_parse_like_openssh_and_keep_defaults() {
        assert_eq!(parse_penalties("off").unwrap(), None);
        let p = parse_penalties("authfail:30s noauth:2,max:900s")
            .unwrap()
            .unwrap();
        assert_eq!(p.authfail, Duration::from_secs(30));
        assert_eq!(p.noauth, Duration::from_secs(2));
        assert_eq!(p.max, Duration::from_secs(900));
        assert_eq!(p.min, Penalties::default().min);
        assert!(parse_penalties("crash:90s").unwrap_err().contains("crash"));
        assert!(parse_penalties("authfail").is_err());
        assert!(parse_penalties("min:700s").is_err());
    }
}
