//! Service kinds and the SPIFFE-style URI that names them in certificates.

use std::fmt;
use std::str::FromStr;

use rustls::pki_types::CertificateDer;
use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::PkiError;

/// Prefix of every phirepass identity URI.
pub const SPIFFE_PREFIX: &str = "spiffe://phirepass/";

/// What a certificate is for. Services are clients and servers; `Nats`, `Redis` and
/// `Postgres` name the servers phirepass connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    Authz,
    Secrets,
    Registry,
    GatewayWs,
    SshEdge,
    Nats,
    Redis,
    Postgres,
}

impl ServiceKind {
    /// Every kind, services first.
    pub const ALL: [ServiceKind; 8] = [
        ServiceKind::Authz,
        ServiceKind::Secrets,
        ServiceKind::Registry,
        ServiceKind::GatewayWs,
        ServiceKind::SshEdge,
        ServiceKind::Nats,
        ServiceKind::Redis,
        ServiceKind::Postgres,
    ];

    /// The phirepass services (each a client of the others and of the data stores).
    pub const SERVICES: [ServiceKind; 5] = [
        ServiceKind::Authz,
        ServiceKind::Secrets,
        ServiceKind::Registry,
        ServiceKind::GatewayWs,
        ServiceKind::SshEdge,
    ];

    /// The kind's name: file names, NATS and Redis user names, PostgreSQL role suffixes.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Authz => "authz",
            ServiceKind::Secrets => "secrets",
            ServiceKind::Registry => "registry",
            ServiceKind::GatewayWs => "gateway-ws",
            ServiceKind::SshEdge => "ssh-edge",
            ServiceKind::Nats => "nats",
            ServiceKind::Redis => "redis",
            ServiceKind::Postgres => "postgres",
        }
    }

    /// `spiffe://phirepass/<name>`.
    pub fn uri(self) -> String {
        format!("{SPIFFE_PREFIX}{}", self.name())
    }

    /// The kind a URI names, if it is one of ours.
    pub fn from_uri(uri: &str) -> Option<Self> {
        uri.strip_prefix(SPIFFE_PREFIX)?.parse().ok()
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ServiceKind {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| PkiError::Kind(format!("unknown service kind {s:?}")))
    }
}

/// The kind named by a certificate's URI SAN. Only meaningful once the chain was verified
/// against the deployment's trust bundle (rustls does that before handing the chain out).
/// A certificate with no phirepass URI, or with two different ones, has no kind.
pub fn peer_kind(cert: &CertificateDer<'_>) -> Result<ServiceKind, PkiError> {
    let parsed = Certificate::from_der(cert.as_ref())
        .map_err(|e| PkiError::Kind(format!("unparsable certificate: {e}")))?;
    let mut found = None;
    let extensions = parsed.tbs_certificate.extensions.unwrap_or_default();
    for extension in extensions
        .iter()
        .filter(|e| e.extn_id == SubjectAltName::OID)
    {
        let names = SubjectAltName::from_der(extension.extn_value.as_bytes())
            .map_err(|e| PkiError::Kind(format!("unparsable subject alt names: {e}")))?;
        for name in names.0 {
            let GeneralName::UniformResourceIdentifier(uri) = name else {
                continue;
            };
            let Some(kind) = ServiceKind::from_uri(uri.as_str()) else {
                continue;
            };
            if found.is_some_and(|other| other != kind) {
                return Err(PkiError::Kind("certificate names two service kinds".into()));
            }
            found = Some(kind);
        }
    }
    found.ok_or_else(|| PkiError::Kind("certificate names no phirepass service kind".into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in ServiceKind::ALL {
            assert_eq!(ServiceKind::from_uri(&kind.uri()), Some(kind));
            assert_eq!(kind.name().parse::<ServiceKind>().unwrap(), kind);
        }
        assert_eq!(ServiceKind::from_uri("spiffe://other/authz"), None);
        assert_eq!(ServiceKind::from_uri("spiffe://phirepass/root"), None);
        assert!("authz ".parse::<ServiceKind>().is_err());
    }
}
