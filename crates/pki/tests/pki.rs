//! Real TLS handshakes between identities from real CAs: who is accepted, who is refused, and
//! rotation without restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use phirepass_pki::{
    Ca, ClientAuth, Identity, IssueOptions, ServiceKind, TlsFiles, anonymous_client_config,
    peer_kind,
};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn identity(ca: &Ca, kind: ServiceKind, trust: &str) -> Identity {
    let issued = ca.issue(kind, &IssueOptions::default()).unwrap();
    Identity::from_pem(kind, &issued.cert_pem, &issued.key_pem, trust).unwrap()
}

/// Runs one handshake plus a byte each way. Ok(kind the server saw, if any).
async fn handshake(
    server: ServerConfig,
    client: ClientConfig,
    name: &str,
) -> Result<Option<ServiceKind>, String> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let connector = TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let server = tokio::spawn(async move {
        let mut tls = acceptor.accept(a).await.map_err(|e| e.to_string())?;
        let kind = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|leaf| peer_kind(leaf).unwrap());
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        tls.write_all(&byte).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(kind)
    });
    let client = async {
        let mut tls = connector
            .connect(name, b)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"x").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let client = client.await;
    let server = server.await.unwrap();
    client?;
    server
}

#[tokio::test]
async fn same_ca_mutual_tls_names_the_client_kind() {
    let ca = Ca::generate("test ca").unwrap();
    let authz = identity(&ca, ServiceKind::Authz, ca.cert_pem());
    let gateway = identity(&ca, ServiceKind::GatewayWs, ca.cert_pem());
    let seen = handshake(
        authz.server_config(ClientAuth::Required).unwrap(),
        gateway.client_config(Some(ServiceKind::Authz)).unwrap(),
        "authz",
    )
    .await
    .unwrap();
    assert_eq!(seen, Some(ServiceKind::GatewayWs));
    // By loopback address too (tests and `phirepass dev` dial 127.0.0.1).
    let seen = handshake(
        authz.server_config(ClientAuth::Required).unwrap(),
        gateway.client_config(Some(ServiceKind::Authz)).unwrap(),
        "127.0.0.1",
    )
    .await
    .unwrap();
    assert_eq!(seen, Some(ServiceKind::GatewayWs));
}

#[tokio::test]
async fn a_client_from_another_ca_is_refused() {
    let ca = Ca::generate("ours").unwrap();
    let other = Ca::generate("theirs").unwrap();
    let authz = identity(&ca, ServiceKind::Authz, ca.cert_pem());
    // The stranger trusts our CA (so it would accept our server) but holds a foreign cert.
    let stranger = identity(&other, ServiceKind::GatewayWs, ca.cert_pem());
    for auth in [ClientAuth::Required, ClientAuth::Optional] {
        let refused = handshake(
            authz.server_config(auth).unwrap(),
            stranger.client_config(None).unwrap(),
            "authz",
        )
        .await;
        assert!(refused.is_err(), "{auth:?}: {refused:?}");
    }
}

#[tokio::test]
async fn a_server_from_another_ca_is_refused() {
    let ca = Ca::generate("ours").unwrap();
    let other = Ca::generate("theirs").unwrap();
    let impostor = identity(&other, ServiceKind::Authz, other.cert_pem());
    let gateway = identity(&ca, ServiceKind::GatewayWs, ca.cert_pem());
    let refused = handshake(
        impostor.server_config(ClientAuth::Optional).unwrap(),
        gateway.client_config(Some(ServiceKind::Authz)).unwrap(),
        "authz",
    )
    .await
    .unwrap_err();
    assert!(refused.to_lowercase().contains("unknown"), "{refused}");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let ca = Ca::generate("ca").unwrap();
    let authz = identity(&ca, ServiceKind::Authz, ca.cert_pem());
    let now = time::OffsetDateTime::now_utc();
    let options = IssueOptions {
        not_before: Some(now - time::Duration::days(10)),
        not_after: Some(now - time::Duration::days(1)),
        ..IssueOptions::default()
    };
    let issued = ca.issue(ServiceKind::GatewayWs, &options).unwrap();
    let expired = Identity::from_pem(
        ServiceKind::GatewayWs,
        &issued.cert_pem,
        &issued.key_pem,
        ca.cert_pem(),
    )
    .unwrap();
    let refused = handshake(
        authz.server_config(ClientAuth::Required).unwrap(),
        expired.client_config(None).unwrap(),
        "authz",
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn the_client_checks_the_server_kind() {
    let ca = Ca::generate("ca").unwrap();
    let registry = identity(&ca, ServiceKind::Registry, ca.cert_pem());
    let gateway = identity(&ca, ServiceKind::GatewayWs, ca.cert_pem());
    // Registry's certificate is valid for "localhost" too, but it is not authz.
    let refused = handshake(
        registry.server_config(ClientAuth::Required).unwrap(),
        gateway.client_config(Some(ServiceKind::Authz)).unwrap(),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(refused.contains("expected the authz service"), "{refused}");
}

#[tokio::test]
async fn optional_client_auth_admits_a_client_without_certificate() {
    let ca = Ca::generate("ca").unwrap();
    let authz = identity(&ca, ServiceKind::Authz, ca.cert_pem());
    let trust = read_pem_certs(ca.cert_pem());
    let anonymous = anonymous_client_config(&trust, Some(ServiceKind::Authz)).unwrap();
    let seen = handshake(
        authz.server_config(ClientAuth::Optional).unwrap(),
        anonymous.clone(),
        "authz",
    )
    .await
    .unwrap();
    assert_eq!(seen, None);
    let refused = handshake(
        authz.server_config(ClientAuth::Required).unwrap(),
        anonymous,
        "authz",
    )
    .await;
    assert!(refused.is_err());
}

#[test]
fn a_certificate_for_another_kind_does_not_load() {
    let ca = Ca::generate("ca").unwrap();
    let issued = ca
        .issue(ServiceKind::Registry, &IssueOptions::default())
        .unwrap();
    let error = Identity::from_pem(
        ServiceKind::Authz,
        &issued.cert_pem,
        &issued.key_pem,
        ca.cert_pem(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("for registry"), "{error}");
}

fn read_pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn write_identity(dir: &std::path::Path, ca: &Ca, kind: ServiceKind, trust: &str) -> TlsFiles {
    let files = TlsFiles::in_dir(dir, kind);
    let issued = ca.issue(kind, &IssueOptions::default()).unwrap();
    phirepass_pki::write(&files.cert, &issued.cert_pem, false).unwrap();
    phirepass_pki::write(&files.key, &issued.key_pem, true).unwrap();
    phirepass_pki::write(&files.trust, trust, false).unwrap();
    files
}

#[tokio::test]
async fn rotation_trusts_the_new_ca_alongside_the_old_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = Ca::generate("old").unwrap();
    let new = Ca::generate("new").unwrap();
    let files = write_identity(dir.path(), &old, ServiceKind::Authz, old.cert_pem());
    let server = Identity::load(ServiceKind::Authz, files.clone()).unwrap();
    let config = server.server_config(ClientAuth::Required).unwrap();
    let both = format!("{}{}", old.cert_pem(), new.cert_pem());
    let old_client = identity(&old, ServiceKind::GatewayWs, &both);
    let new_client = identity(&new, ServiceKind::GatewayWs, &both);
    assert!(
        handshake(
            config.clone(),
            new_client.client_config(None).unwrap(),
            "authz"
        )
        .await
        .is_err()
    );

    // Step 1: trust both CAs. The same config (no restart) admits both clients.
    std::thread::sleep(std::time::Duration::from_millis(20));
    phirepass_pki::write(&files.trust, &both, false).unwrap();
    assert!(server.reload().unwrap());
    assert!(!server.reload().unwrap(), "nothing changed since");
    for client in [&old_client, &new_client] {
        let seen = handshake(config.clone(), client.client_config(None).unwrap(), "authz").await;
        assert_eq!(seen.unwrap(), Some(ServiceKind::GatewayWs));
    }

    // Step 2: the server's own certificate renewed by the new CA; old clients still trust it.
    let before = server.fingerprint();
    let issued = new
        .issue(ServiceKind::Authz, &IssueOptions::default())
        .unwrap();
    phirepass_pki::write(&files.cert, &issued.cert_pem, false).unwrap();
    phirepass_pki::write(&files.key, &issued.key_pem, true).unwrap();
    assert!(server.reload().unwrap());
    assert_ne!(server.fingerprint(), before);
    let seen = handshake(
        config.clone(),
        old_client.client_config(Some(ServiceKind::Authz)).unwrap(),
        "authz",
    )
    .await;
    assert_eq!(seen.unwrap(), Some(ServiceKind::GatewayWs));

    // Step 3: the old CA retired: its clients are refused from now on.
    phirepass_pki::write(&files.trust, new.cert_pem(), false).unwrap();
    assert!(server.reload().unwrap());
    assert!(
        handshake(
            config.clone(),
            old_client.client_config(None).unwrap(),
            "authz"
        )
        .await
        .is_err()
    );
    assert!(
        handshake(config, new_client.client_config(None).unwrap(), "authz")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_broken_renewal_keeps_the_current_identity() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("ca").unwrap();
    let files = write_identity(dir.path(), &ca, ServiceKind::Authz, ca.cert_pem());
    let server = Identity::load(ServiceKind::Authz, files.clone()).unwrap();
    let before = server.fingerprint();
    std::thread::sleep(std::time::Duration::from_millis(20));
    phirepass_pki::write(
        &files.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
        false,
    )
    .unwrap();
    assert!(server.reload().is_err());
    assert_eq!(server.fingerprint(), before);
    let client = identity(&ca, ServiceKind::SshEdge, ca.cert_pem());
    let config = server.server_config(ClientAuth::Required).unwrap();
    assert!(
        handshake(config, client.client_config(None).unwrap(), "authz")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_ca_read_back_from_pem_issues_certificates_its_own_trust_accepts() {
    let ca = Ca::generate("persisted").unwrap();
    let again = Ca::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
    assert_eq!(again.fingerprint().unwrap(), ca.fingerprint().unwrap());
    let authz = identity(&again, ServiceKind::Authz, ca.cert_pem());
    let edge = identity(&ca, ServiceKind::SshEdge, again.cert_pem());
    let seen = handshake(
        authz.server_config(ClientAuth::Required).unwrap(),
        edge.client_config(Some(ServiceKind::Authz)).unwrap(),
        "authz",
    )
    .await;
    assert_eq!(seen.unwrap(), Some(ServiceKind::SshEdge));
}

#[tokio::test]
async fn a_pki_directory_is_created_once_and_reloaded_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let first =
        phirepass_pki::LocalPki::load_or_init(dir.path(), &IssueOptions::default()).unwrap();
    let authz = first.identity(ServiceKind::Authz).unwrap();
    let again =
        phirepass_pki::LocalPki::load_or_init(dir.path(), &IssueOptions::default()).unwrap();
    assert_eq!(
        again.ca().fingerprint().unwrap(),
        first.ca().fingerprint().unwrap()
    );
    assert_eq!(
        again.identity(ServiceKind::Authz).unwrap().fingerprint(),
        authz.fingerprint()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "ca.key readable by others: {mode:o}");
    }
    let edge = again.identity(ServiceKind::SshEdge).unwrap();
    let seen = handshake(
        authz.server_config(ClientAuth::Required).unwrap(),
        edge.client_config(Some(ServiceKind::Authz)).unwrap(),
        "authz",
    )
    .await;
    assert_eq!(seen.unwrap(), Some(ServiceKind::SshEdge));
    // Renewal in place: the loaded identity picks it up on reload.
    std::thread::sleep(std::time::Duration::from_millis(20));
    again
        .issue_to_dir(ServiceKind::Authz, &IssueOptions::default())
        .unwrap();
    assert!(authz.reload().unwrap());
}

#[tokio::test]
async fn the_three_rotation_steps_never_refuse_a_peer_that_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut pki =
        phirepass_pki::LocalPki::load_or_init(dir.path(), &IssueOptions::default()).unwrap();
    let authz = pki.identity(ServiceKind::Authz).unwrap();
    let edge = pki.identity(ServiceKind::SshEdge).unwrap();
    let server = authz.server_config(ClientAuth::Required).unwrap();
    let client = edge.client_config(Some(ServiceKind::Authz)).unwrap();
    let works = |server: &ServerConfig, client: &ClientConfig| {
        let (server, client) = (server.clone(), client.clone());
        async move { handshake(server, client, "authz").await.map(|_| ()) }
    };
    let old_fingerprint = pki.ca().fingerprint().unwrap();
    let old_ca = Ca::from_pem(pki.ca().cert_pem(), &pki.ca().key_pem()).unwrap();
    let pause = || std::thread::sleep(std::time::Duration::from_millis(20));

    pause();
    let new_fingerprint = pki.rotate_ca().unwrap();
    assert_ne!(new_fingerprint, old_fingerprint);
    // Only the authz side reloaded so far: old leaves still meet.
    assert!(authz.reload().unwrap());
    works(&server, &client).await.unwrap();
    assert!(edge.reload().unwrap());

    pause();
    pki.reissue_all(&IssueOptions::default()).unwrap();
    // One side renewed, the other not yet: both CAs are trusted, so it still works.
    assert!(authz.reload().unwrap());
    works(&server, &client).await.unwrap();
    assert!(edge.reload().unwrap());
    works(&server, &client).await.unwrap();

    pause();
    assert_eq!(pki.retire_old_cas().unwrap(), 1);
    assert!(authz.reload().unwrap());
    assert!(edge.reload().unwrap());
    works(&server, &client).await.unwrap();
    // A certificate from the retired CA is now refused.
    let late = identity(&old_ca, ServiceKind::SshEdge, pki.trust_pem());
    let refused = works(&server, &late.client_config(None).unwrap()).await;
    assert!(refused.is_err());
}
