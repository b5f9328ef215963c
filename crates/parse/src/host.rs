//! Which site a request is for, from its Host header (or the authority of an absolute-form
//! request line). Parsing is strict: anything that is not one plain host name, IPv4 or IPv6
//! literal with an optional port is refused, so no odd spelling can be read two ways.

use std::net::{Ipv4Addr, Ipv6Addr};

use http::header::HOST;
use http::{HeaderMap, Uri};

/// Longest Host value looked at (a DNS name is at most 253 bytes, plus a port).
const MAX_HOST_LEN: usize = 300;

/// The host is syntactically invalid (answered with 400).
#[derive(Debug, PartialEq, Eq)]
pub struct BadHost;

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Site {
    /// The dashboard and its API (any host that is not under a proxy domain).
    Main,
    /// `<name>.<TUNNEL_DOMAIN>`: the public HTTP tunnel `name`.
    Tunnel(String),
    /// `<port>-<node>.<APPS_DOMAIN>`: a port on an agent's host.
    App { port: u16, node: String },
    /// Under a proxy domain but not a name it serves (deeper labels, the bare domain).
    NotServed,
}

/// The proxy domains this gateway serves (normalised: lower case, no dots at the ends).
#[derive(Clone, Debug, Default)]
pub struct Domains {
    pub tunnel: Option<String>,
    pub apps: Option<String>,
}

/// The request's host, normalised (lower case, no port, no trailing dot), or `None` when the
/// request names none (HTTP/1.0).
pub fn request_host(uri: &Uri, headers: &HeaderMap) -> Result<Option<String>, BadHost> {
    let mut values = headers.get_all(HOST).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(BadHost);
    }
    let header = header
        .map(|v| v.to_str().map_err(|_| BadHost))
        .transpose()?;
    let raw = match (uri.authority(), header) {
        // Absolute-form wins over Host (RFC 9112 3.2.2); a disagreement is refused outright.
        (Some(a), Some(h)) if !a.as_str().eq_ignore_ascii_case(h) => return Err(BadHost),
        (Some(a), _) => a.as_str(),
        (None, Some(h)) => h,
        (None, None) => return Ok(None),
    };
    normalize(raw).map(Some)
}

/// Lower-cases, strips the port and one trailing dot; refuses anything malformed.
pub fn normalize(raw: &str) -> Result<String, BadHost> {
    if raw.is_empty() || raw.len() > MAX_HOST_LEN || raw.contains('@') {
        return Err(BadHost);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or(BadHost)?;
        let ip: Ipv6Addr = inner.parse().map_err(|_| BadHost)?;
        if !after.is_empty() {
            check_port(after.strip_prefix(':').ok_or(BadHost)?)?;
        }
        return Ok(format!("[{ip}]"));
    }
    let name = match raw.rsplit_once(':') {
        Some((name, port)) => {
            check_port(port)?;
            name
        }
        None => raw,
    };
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    if name.is_empty() || name.len() > 253 {
        return Err(BadHost);
    }
    let mut last = "";
    for label in name.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(BadHost);
        }
        last = label;
    }
    // A numeric last label makes the whole name an IPv4 literal (as browsers read it).
    if last.bytes().all(|b| b.is_ascii_digit()) && name.parse::<Ipv4Addr>().is_err() {
        return Err(BadHost);
    }
    Ok(name.to_string())
}

fn check_port(port: &str) -> Result<(), BadHost> {
    let ok = (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    if ok { Ok(()) } else { Err(BadHost) }
}

/// Classifies a normalised host. The longer domain is tried first, so one proxy domain may sit
/// under the other.
pub fn classify(host: &str, domains: &Domains) -> Site {
    let mut candidates = Vec::with_capacity(2);
    if let Some(d) = &domains.tunnel {
        candidates.push((d.as_str(), true));
    }
    if let Some(d) = &domains.apps {
        candidates.push((d.as_str(), false));
    }
    candidates.sort_by_key(|(d, _)| std::cmp::Reverse(d.len()));
    for (domain, tunnel) in candidates {
        if host == domain {
            return Site::NotServed;
        }
        let Some(label) = host.strip_suffix(domain).and_then(|p| p.strip_suffix('.')) else {
            continue;
        };
        if label.contains('.') {
            return Site::NotServed;
        }
        return if tunnel {
            if tunnel_label(label) {
                Site::Tunnel(label.to_string())
            } else {
                Site::NotServed
            }
        } else {
            app_label(label).unwrap_or(Site::NotServed)
        };
    }
    Site::Main
}

/// A tunnel name: 1-63 of a-z, 0-9, '-', not starting or ending with '-' (authz's rule).
pub fn tunnel_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A node name that fits in one DNS label (node names may also hold '.', which cannot).
pub fn node_label(node: &str) -> bool {
    (1..=63).contains(&node.len())
        && node
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && node
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `<port>-<node>`, the port in its one canonical spelling (no leading zero), so each
/// (node, port) has exactly one host and one cookie jar.
fn app_label(label: &str) -> Option<Site> {
    let (port, node) = label.split_once('-')?;
    let canonical = !port.is_empty() && port.len() <= 5 && !port.starts_with('0');
    if !canonical || !port.bytes().all(|b| b.is_ascii_digit()) || !node_label(node) {
        return None;
    }
    let port = port.parse::<u16>().ok()?;
    Some(Site::App {
        port,
        node: node.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "host_tests.rs"]
mod tests;
