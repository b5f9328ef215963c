//! Tunnels published with `ssh -R`: `tunnel:<name>:<port>` records, claimed
//! with `put_if_absent` so two sessions never both hold (name, port), and
//! refreshed with compare-and-set so a holder never overwrites a newer claim.

use bytes::Bytes;
use phirepass_proto::registry as pb;
use phirepass_runtime::clock::now_millis;
use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};
use crate::records::check_id;
use crate::state::RegistryService;

pub(crate) const TUNNEL_PREFIX: &str = "tunnel:";

/// Port 80 is the public HTTP tunnel; any other port a private TCP alias.
pub(crate) const HTTP_PORT: u32 = 80;

// Compare-and-set retries when a heartbeat of the same session rewrote the
// record between our read and our write.
const CAS_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TunnelRecord {
    pub name: String,
    pub port: u32,
    pub kind: String,
    pub node_id: String,
    pub edge_id: String,
    pub session_id: String,
    pub user_id: String,
    pub username: String,
    pub client_ip: String,
    pub started_at: i64,
    pub last_seen: i64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections: u64,
}

/// A DNS label: 1-63 of a-z, 0-9, '-', not starting or ending with '-'.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidArgument(
            "name must be a DNS label: 1-63 of a-z, 0-9, '-', not starting or ending with '-'"
                .into(),
        ))
    }
}

fn check_port(port: u32) -> Result<u16> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| RegistryError::InvalidArgument("port must be 1-65535".into()))
}

pub(crate) fn tunnel_key(name: &str, port: u32) -> String {
    format!("{TUNNEL_PREFIX}{name}:{port}")
}

pub(crate) fn kind_of(port: u32) -> &'static str {
    if port == HTTP_PORT { "http" } else { "tcp" }
}

impl TryFrom<pb::TunnelPresence> for TunnelRecord {
    type Error = RegistryError;

    fn try_from(p: pb::TunnelPresence) -> Result<Self> {
        check_name(&p.name)?;
        check_port(p.port)?;
        check_id("node_id", &p.node_id)?;
        check_id("edge_id", &p.edge_id)?;
        check_id("session_id", &p.session_id)?;
        Ok(Self {
            kind: kind_of(p.port).to_owned(),
            name: p.name,
            port: p.port,
            node_id: p.node_id,
            edge_id: p.edge_id,
            session_id: p.session_id,
            user_id: p.user_id,
            username: p.username,
            client_ip: p.client_ip,
            started_at: p.started_at,
            last_seen: p.last_seen,
            bytes_in: p.bytes_in,
            bytes_out: p.bytes_out,
            connections: p.connections,
        })
    }
}

impl From<TunnelRecord> for pb::TunnelPresence {
    fn from(r: TunnelRecord) -> Self {
        Self {
            name: r.name,
            port: r.port,
            kind: r.kind,
            node_id: r.node_id,
            edge_id: r.edge_id,
            session_id: r.session_id,
            user_id: r.user_id,
            username: r.username,
            client_ip: r.client_ip,
            started_at: r.started_at,
            last_seen: r.last_seen,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            connections: r.connections,
        }
    }
}

/// What a write of the caller's record came to.
pub(crate) enum Upsert {
    /// Created or refreshed.
    Held,
    /// Another session holds (name, port).
    Taken { holder: String },
}

impl RegistryService {
    /// Creates the record, or refreshes it when the same session holds it.
    /// Never touches a record another session holds.
    pub(crate) async fn upsert_tunnel(&self, presence: pb::TunnelPresence) -> Result<Upsert> {
        let mut record = TunnelRecord::try_from(presence)?;
        let key = tunnel_key(&record.name, record.port);
        for _ in 0..CAS_ATTEMPTS {
            let now = now_millis();
            record.last_seen = now;
            match self.get_json::<TunnelRecord>(&key).await? {
                None => {
                    if record.started_at == 0 {
                        record.started_at = now;
                    }
                    let json = serde_json::to_string(&record)?;
                    if self
                        .presence()
                        .put_if_absent(&key, &json, self.tunnel_ttl())
                        .await?
                    {
                        return Ok(Upsert::Held);
                    }
                }
                Some((_, current)) if current.session_id != record.session_id => {
                    return Ok(Upsert::Taken {
                        holder: current.session_id,
                    });
                }
                Some((raw, current)) => {
                    if record.started_at == 0 {
                        record.started_at = current.started_at;
                    }
                    let json = serde_json::to_string(&record)?;
                    if self
                        .presence()
                        .replace_if(&key, &raw, &json, self.tunnel_ttl())
                        .await?
                    {
                        return Ok(Upsert::Held);
                    }
                }
            }
        }
        // Only reachable when the record keeps changing under us: report it
        // as held by someone else rather than guess.
        Ok(Upsert::Taken {
            holder: String::new(),
        })
    }

    /// Removes the record only while `session_id` still holds it.
    pub(crate) async fn close_tunnel(&self, req: &pb::TunnelClosedRequest) -> Result<bool> {
        check_name(&req.name)?;
        check_port(req.port)?;
        check_id("session_id", &req.session_id)?;
        let key = tunnel_key(&req.name, req.port);
        for _ in 0..CAS_ATTEMPTS {
            let Some((raw, current)) = self.get_json::<TunnelRecord>(&key).await? else {
                return Ok(false);
            };
            if current.session_id != req.session_id {
                tracing::info!(name = %req.name, port = req.port, holder = %current.session_id, "close from a non-holder ignored");
                return Ok(false);
            }
            if self.presence().delete_if(&key, &raw).await? {
                tracing::info!(name = %req.name, port = req.port, session_id = %req.session_id, "tunnel closed");
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) async fn get_tunnel(&self, name: &str, port: u32) -> Result<pb::TunnelPresence> {
        check_name(name)?;
        check_port(port)?;
        let (_, record) = self
            .get_json::<TunnelRecord>(&tunnel_key(name, port))
            .await?
            .ok_or(RegistryError::NotFound("tunnel"))?;
        Ok(record.into())
    }

    /// Live tunnels, sorted by name then port (the store lists keys sorted,
    /// but "80" < "8080" < "9" as text).
    pub(crate) async fn list_tunnels(
        &self,
        prefix: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<TunnelRecord>> {
        let mut out = Vec::new();
        for (key, raw) in self.presence().list(prefix).await? {
            match serde_json::from_str::<TunnelRecord>(&raw) {
                Ok(r) if user_id.is_none_or(|u| u == r.user_id) => out.push(r),
                Ok(_) => {}
                Err(error) => tracing::warn!(%key, %error, "skipping unreadable tunnel record"),
            }
        }
        out.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
        Ok(out)
    }

    /// Publishes the id of every session holding a port of `name` on the
    /// kick subject; the ssh-edge holding it ends the session.
    pub(crate) async fn kick_tunnel(&self, name: &str) -> Result<Vec<String>> {
        check_name(name)?;
        let records = self
            .list_tunnels(&format!("{TUNNEL_PREFIX}{name}:"), None)
            .await?;
        if records.is_empty() {
            return Err(RegistryError::NotFound("tunnel"));
        }
        let Some((bus, subject)) = self.kick_bus() else {
            return Err(RegistryError::NoBus);
        };
        let mut session_ids: Vec<String> = records.into_iter().map(|r| r.session_id).collect();
        session_ids.sort();
        session_ids.dedup();
        for session_id in &session_ids {
            bus.publish(subject, Vec::new(), Bytes::from(session_id.clone()))
                .await?;
            tracing::info!(name, %session_id, "tunnel session kicked");
        }
        Ok(session_ids)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for good in ["a", "myapp", "my-app-2", "0abc", &"a".repeat(63)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a.b",
            "a_b",
            "a:b",
            "a*",
            &"a".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kind_follows_port() {
        assert_eq!(kind_of(80), "http");
        assert_eq!(kind_of(5432), "tcp");
        assert!(check_port(0).is_err());
        assert!(check_port(70_000).is_err());
    }
}
