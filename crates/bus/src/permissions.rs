//! Who may do what on NATS: one user per service kind, mapped from its certificate, with
//! least-privilege subject permissions, and the nats-server configuration that enforces it.
//!
//! The table below is derived from every publish, subscribe and request the services make
//! (services/*, crates/tunnel, crates/bus). The agent is not a NATS client. `{p}` is the
//! subject prefix (`pp`), `{inbox}` the kind's own reply inbox ([`inbox_prefix`]) and
//! `{stream}` the JetStream event stream (`PP_EVENTS`).
//!
//! | kind       | publishes                                              | subscribes |
//! |------------|--------------------------------------------------------|------------|
//! | gateway-ws | opens and frames toward nodes, frames toward edges, kicks, logouts, audit events (commands); replies to opens it holds | its agents' node subjects, its edge streams, kicks, logouts, access changes |
//! | ssh-edge   | opens and frames toward nodes, frames toward edges, audit events; replies to opens it holds | `ssh -R` node opens and frames, its edge streams, kicks, access changes |
//! | authz      | audit and access-change events                         | its inbox only |
//! | secrets    | audit events                                           | its inbox only |
//! | registry   | kicks                                                  | its inbox only |
//!
//! Nobody subscribes to `{p}.>` or `>`. Only the writers of the event stream (authz, secrets,
//! ssh-edge, gateway-ws) may ask JetStream anything, and only for that stream's info and creation: nobody
//! can delete, purge or edit it. Reading the audit stream is an operator's job (a separate,
//! hand-made NATS user), not a service's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use phirepass_pki::{ServiceKind, TlsFiles};

use crate::BusError;

/// One rule set: subject patterns with `{p}`, `{inbox}` and `{stream}` placeholders.
struct Rules {
    publish: &'static [&'static str],
    subscribe: &'static [&'static str],
    /// May answer requests it received (one reply to each reply subject it saw).
    allow_responses: bool,
}

// Both edges open streams toward any node and carry the frames of streams they started.
const GATEWAY_WS: Rules = Rules {
    publish: &[
        "{p}.node.*.open",    // edge: open requests toward any node
        "{p}.node.*.s.*",     // edge: frames toward nodes
        "{p}.edge.*.s.*",     // holder of agents' nodes: frames toward the opening edge
        "{p}.control.kick",   // an admin ends a browser session held by another gateway
        "{p}.control.access", // a logout: every gateway re-checks the user's streams
        "{p}.events.audit",   // command runs and its agents' command events (JetStream)
        "$JS.API.STREAM.INFO.{stream}",
        "$JS.API.STREAM.CREATE.{stream}",
        "{inbox}.>", // the flush probe (Bus::flush) into its own inbox
    ],
    subscribe: &[
        "{p}.node.*.>", // holder: one `{p}.node.<id>.>` per connected agent
        "{p}.edge.*.s.*",
        "{p}.control.kick",
        "{p}.control.access",
        "{p}.events.access", // authz's announcements (core subscription, no JetStream)
        "{inbox}.>",
    ],
    allow_responses: true, // answers the opens of the nodes it holds
};

const SSH_EDGE: Rules = Rules {
    publish: &[
        "{p}.node.*.open", // bastion relay and HTTP to tunnels: opens toward any node
        "{p}.node.*.s.*",
        "{p}.edge.*.s.*",   // holder of `ssh -R` nodes
        "{p}.events.audit", // its own audit decisions (JetStream)
        "$JS.API.STREAM.INFO.{stream}",
        "$JS.API.STREAM.CREATE.{stream}",
        "{inbox}.>",
    ],
    subscribe: &[
        "{p}.node.*.open", // holder of `ssh -R` nodes
        "{p}.node.*.s.*",
        "{p}.edge.*.s.*",
        "{p}.control.kick",
        "{p}.events.access",
        "{inbox}.>",
    ],
    allow_responses: true,
};

const AUTHZ: Rules = Rules {
    publish: &[
        "{p}.events.audit",
        "{p}.events.access",
        "$JS.API.STREAM.INFO.{stream}",
        "$JS.API.STREAM.CREATE.{stream}",
        "{inbox}.>",
    ],
    subscribe: &["{inbox}.>"], // JetStream acknowledgements
    allow_responses: false,
};

const SECRETS: Rules = Rules {
    publish: &[
        "{p}.events.audit",
        "$JS.API.STREAM.INFO.{stream}",
        "$JS.API.STREAM.CREATE.{stream}",
        "{inbox}.>",
    ],
    subscribe: &["{inbox}.>"],
    allow_responses: false,
};

const REGISTRY: Rules = Rules {
    publish: &["{p}.control.kick", "{inbox}.>"], // kicks the sessions of a removed tunnel
    subscribe: &["{inbox}.>"],
    allow_responses: false,
};

fn rules(kind: ServiceKind) -> Option<&'static Rules> {
    match kind {
        ServiceKind::GatewayWs => Some(&GATEWAY_WS),
        ServiceKind::SshEdge => Some(&SSH_EDGE),
        ServiceKind::Authz => Some(&AUTHZ),
        ServiceKind::Secrets => Some(&SECRETS),
        ServiceKind::Registry => Some(&REGISTRY),
        // Servers, not NATS clients.
        ServiceKind::Nats | ServiceKind::Redis | ServiceKind::Postgres => None,
    }
}

/// The reply inbox prefix of `kind`'s connections: only that kind may subscribe to it, so
/// one identity cannot read another's replies.
pub fn inbox_prefix(kind: ServiceKind) -> String {
    format!("_INBOX_{}", kind.name())
}

/// The NATS user a certificate of `kind` maps to (`verify_and_map`): the certificate's
/// subject. nats-server maps a certificate with DNS SANs (ours have them) by DNS name or
/// subject, never by URI SAN, and the subject alone is set from the kind.
pub fn nats_user(kind: ServiceKind) -> String {
    format!("CN={},O=phirepass", kind.name())
}

/// What one kind may publish and subscribe to, placeholders filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPermissions {
    pub kind: ServiceKind,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    pub allow_responses: bool,
}

/// `kind`'s permissions under subject prefix `prefix` and event stream `stream`; `None` for
/// the server kinds.
pub fn permissions(kind: ServiceKind, prefix: &str, stream: &str) -> Option<KindPermissions> {
    let rules = rules(kind)?;
    let inbox = inbox_prefix(kind);
    let fill = |patterns: &[&str]| -> Vec<String> {
        patterns
            .iter()
            .map(|p| {
                p.replace("{p}", prefix)
                    .replace("{inbox}", &inbox)
                    .replace("{stream}", stream)
            })
            .collect()
    };
    Some(KindPermissions {
        kind,
        publish: fill(rules.publish),
        subscribe: fill(rules.subscribe),
        allow_responses: rules.allow_responses,
    })
}

/// A deployment's NATS server, as [`render_server_config`] writes it.
#[derive(Debug, Clone)]
pub struct NatsServerConfig {
    /// Subject prefix of the deployment (`pp`).
    pub prefix: String,
    /// JetStream stream holding `<prefix>.events.>` (`PP_EVENTS`).
    pub events_stream: String,
    /// `host:port` clients connect to (`0.0.0.0:4222`).
    pub listen: String,
    /// The server's certificate and key (`nats.crt`, `nats.key` from `phirepass pki init`).
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The trust bundle client certificates must chain to (`trust.crt`).
    pub trust_file: PathBuf,
    /// JetStream's storage directory.
    pub store_dir: PathBuf,
    /// `host:port` of the HTTP monitoring endpoint (health checks), if any.
    pub monitor: Option<String>,
}

impl NatsServerConfig {
    /// The production defaults (prefix `pp`, stream [`crate::EVENTS_STREAM`], monitoring on
    /// 127.0.0.1:8222 for health checks) with the server's files in `pki_dir` as laid out by
    /// `phirepass pki init` (`nats.crt`, `nats.key`, `trust.crt`), as the server sees them.
    pub fn in_pki_dir(pki_dir: &Path, listen: &str, store_dir: &Path) -> Self {
        let files = TlsFiles::in_dir(pki_dir, ServiceKind::Nats);
        Self {
            prefix: "pp".to_owned(),
            events_stream: crate::EVENTS_STREAM.to_owned(),
            listen: listen.to_owned(),
            cert_file: files.cert,
            key_file: files.key,
            trust_file: files.trust,
            store_dir: store_dir.to_owned(),
            monitor: Some("127.0.0.1:8222".to_owned()),
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A double-quoted string in NATS' configuration syntax.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quoted_path(path: &std::path::Path, what: &str) -> Result<String, BusError> {
    let text = path
        .to_str()
        .filter(|s| !s.is_empty() && !s.contains(['\n', '\r']))
        .ok_or_else(|| BusError::Other(format!("{what}: path must be non-empty UTF-8")))?;
    Ok(quoted(text))
}

fn list(patterns: &[String]) -> String {
    let items: Vec<String> = patterns.iter().map(|p| quoted(p)).collect();
    format!("[{}]", items.join(", "))
}

/// The nats-server configuration of a deployment: TLS required with client certificates
/// from the trust bundle mapped to one user per service kind (anonymous and unmapped clients
/// refused), each with the permissions of [`permissions`], and JetStream on.
pub fn render_server_config(config: &NatsServerConfig) -> Result<String, BusError> {
    if !valid_name(&config.prefix) || !valid_name(&config.events_stream) {
        return Err(BusError::Other(
            "subject prefix and stream name must be 1-64 characters of [A-Za-z0-9_-]".into(),
        ));
    }
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        out,
        "# nats-server configuration for phirepass (subject prefix {:?}); generated, do not edit.",
        config.prefix
    );
    let _ = writeln!(out, "listen: {}", quoted(&config.listen));
    if let Some(monitor) = &config.monitor {
        let _ = writeln!(out, "http: {}", quoted(monitor));
    }
    let _ = writeln!(
        out,
        "jetstream {{\n  store_dir: {}\n}}",
        quoted_path(&config.store_dir, "store_dir")?
    );
    // verify_and_map: a client must present a certificate chaining to the trust bundle, and
    // its subject names the user; no user, no connection. TLS 1.3 as everywhere inside.
    let _ = writeln!(
        out,
        "tls {{\n  cert_file: {}\n  key_file: {}\n  ca_file: {}\n  verify_and_map: true\n  min_version: \"1.3\"\n  timeout: 2\n}}",
        quoted_path(&config.cert_file, "cert_file")?,
        quoted_path(&config.key_file, "key_file")?,
        quoted_path(&config.trust_file, "trust_file")?,
    );
    let _ = writeln!(out, "authorization {{\n  users: [");
    for kind in ServiceKind::SERVICES {
        let Some(perms) = permissions(kind, &config.prefix, &config.events_stream) else {
            continue;
        };
        let _ = writeln!(
            out,
            "    {{\n      user: {}\n      permissions: {{\n        publish: {{ allow: {} }}\n        subscribe: {{ allow: {} }}",
            quoted(&nats_user(kind)),
            list(&perms.publish),
            list(&perms.subscribe),
        );
        if perms.allow_responses {
            let _ = writeln!(out, "        allow_responses: true");
        }
        let _ = writeln!(out, "      }}\n    }}");
    }
    let _ = writeln!(out, "  ]\n}}");
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::subject_matches;

    fn can_publish(kind: ServiceKind, subject: &str) -> bool {
        let perms = permissions(kind, "pp", "PP_EVENTS").unwrap();
        perms.publish.iter().any(|p| subject_matches(p, subject))
    }

    #[test]
    fn only_edges_publish_opens_and_only_holders_subscribe_to_them() {
        for kind in ServiceKind::SERVICES {
            let edge = matches!(kind, ServiceKind::GatewayWs | ServiceKind::SshEdge);
            assert_eq!(can_publish(kind, "pp.node.n1.open"), edge, "{kind}");
            let perms = permissions(kind, "pp", "PP_EVENTS").unwrap();
            let holds = perms
                .subscribe
                .iter()
                .any(|p| subject_matches(p, "pp.node.n1.open"));
            assert_eq!(holds, edge, "{kind}");
            assert!(!perms.subscribe.iter().any(|p| p == ">" || p == "pp.>"));
        }
    }

    #[test]
    fn audit_writers_and_js_api() {
        let writers = [
            ServiceKind::Authz,
            ServiceKind::Secrets,
            ServiceKind::SshEdge,
            ServiceKind::GatewayWs,
        ];
        for kind in ServiceKind::SERVICES {
            let writes = writers.contains(&kind);
            assert_eq!(can_publish(kind, "pp.events.audit"), writes, "{kind}");
            assert_eq!(
                can_publish(kind, "$JS.API.STREAM.CREATE.PP_EVENTS"),
                writes,
                "{kind}"
            );
            assert!(!can_publish(kind, "$JS.API.STREAM.DELETE.PP_EVENTS"));
            assert!(!can_publish(kind, "$JS.API.STREAM.PURGE.PP_EVENTS"));
        }
        assert!(permissions(ServiceKind::Nats, "pp", "PP_EVENTS").is_none());
    }

    #[test]
    fn rendered_config_names_every_service_and_no_anonymous_user() {
        let text = render_server_config(&NatsServerConfig {
            prefix: "pp".into(),
            events_stream: "PP_EVENTS".into(),
            listen: "0.0.0.0:4222".into(),
            cert_file: "/pki/nats.crt".into(),
            key_file: "/pki/nats.key".into(),
            trust_file: "/pki/my \"trust\".crt".into(),
            store_dir: "/data/js".into(),
            monitor: None,
        })
        .unwrap();
        for kind in ServiceKind::SERVICES {
            assert!(text.contains(&format!("user: \"CN={},O=phirepass\"", kind.name())));
        }
        assert!(text.contains("verify_and_map: true"));
        assert!(text.contains(r#"ca_file: "/pki/my \"trust\".crt""#));
        assert!(!text.contains("no_auth_user"));
        assert!(!text.contains("http:"));
        let deployed = NatsServerConfig::in_pki_dir(
            Path::new("/run/phirepass/tls"),
            "0.0.0.0:4222",
            Path::new("/data"),
        );
        let text = render_server_config(&deployed).unwrap();
        assert!(text.contains(r#"cert_file: "/run/phirepass/tls/nats.crt""#));
        assert!(text.contains(r#"ca_file: "/run/phirepass/tls/trust.crt""#));
        assert!(text.contains(r#"http: "127.0.0.1:8222""#));
        assert!(text.contains(r#""pp.control.kick""#));
        let bad = NatsServerConfig {
            prefix: "pp.>".into(),
            events_stream: "PP_EVENTS".into(),
            listen: String::new(),
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            trust_file: PathBuf::new(),
            store_dir: PathBuf::new(),
            monitor: None,
        };
        assert!(render_server_config(&bad).is_err());
    }
}
