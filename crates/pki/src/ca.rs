//! The deployment's certificate authority: creates itself, and issues service certificates.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::der::Decode;

use crate::{PkiError, ServiceKind};

/// How long a new CA is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a service certificate is valid unless told otherwise: short, renewed by `pki issue`.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

/// A CA certificate and its private key.
pub struct Ca {
    cert_pem: String,
    key: KeyPair,
    params: CertificateParams,
}

/// What a service certificate is issued for besides its kind.
#[derive(Debug, Clone, Default)]
pub struct IssueOptions {
    /// Host names the service is reached by (its kind's name, `localhost` and 127.0.0.1 are
    /// always included).
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// Validity window; `None` means from now for [`LEAF_VALIDITY`].
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
}

/// A freshly issued certificate (PEM) and its private key (PKCS#8 PEM).
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

fn ca_names(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "phirepass");
    name.push(DnType::CommonName, common_name);
    name
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = ca_names(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

impl Ca {
    /// A new CA (ECDSA P-256) named `common_name`, valid for [`CA_VALIDITY`].
    pub fn generate(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = ca_params(common_name);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key,
            params,
        })
    }

    /// A CA from its certificate and key (PEM), as `generate` wrote them.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let invalid = |reason: String| PkiError::Invalid {
            path: "ca certificate".into(),
            reason,
        };
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| invalid(format!("no certificate: {e}")))?;
        let parsed =
            Certificate::from_der(der.as_ref()).map_err(|e| invalid(format!("unparsable: {e}")))?;
        let common_name = parsed
            .tbs_certificate
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == x509_cert::der::oid::db::rfc4519::CN)
            .and_then(|atv| {
                std::str::from_utf8(atv.value.value())
                    .ok()
                    .map(str::to_owned)
            })
            .ok_or_else(|| invalid("no common name".into()))?;
        let key = KeyPair::from_pem(key_pem)?;
        // Issuing needs the CA's name and key only; both come back exactly as generated.
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key,
            params: ca_params(&common_name),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key (PKCS#8 PEM). Keep it off the service hosts.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// SHA-256 of the CA certificate (hex), to tell CAs apart in a trust bundle.
    pub fn fingerprint(&self) -> Result<String, PkiError> {
        let der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).map_err(|e| {
            PkiError::Invalid {
                path: "ca certificate".into(),
                reason: e.to_string(),
            }
        })?;
        Ok(crate::files::fingerprint(&der))
    }

    /// A certificate for one instance of `kind`, usable as TLS client and server.
    pub fn issue(&self, kind: ServiceKind, options: &IssueOptions) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "phirepass");
        name.push(DnType::CommonName, kind.name());
        params.distinguished_name = name;
        let mut sans = vec![
            SanType::URI(kind.uri().try_into()?),
            SanType::DnsName(kind.name().try_into()?),
            SanType::DnsName("localhost".try_into()?),
        ];
        for dns in &options.dns_names {
            if dns != kind.name() && dns != "localhost" {
                sans.push(SanType::DnsName(dns.clone().try_into()?));
            }
        }
        let loopback = IpAddr::from([127, 0, 0, 1]);
        sans.push(SanType::IpAddress(loopback));
        sans.extend(
            options
                .ip_addresses
                .iter()
                .filter(|ip| **ip != loopback)
                .map(|ip| SanType::IpAddress(*ip)),
        );
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        let now = OffsetDateTime::now_utc();
        params.not_before = options
            .not_before
            .unwrap_or(now - time::Duration::minutes(5));
        params.not_after = options.not_after.unwrap_or(now + LEAF_VALIDITY);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
