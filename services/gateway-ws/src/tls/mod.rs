//! HTTPS on the public listener: `GATEWAY_TLS_CERT` and `GATEWAY_TLS_KEY` (PEM files) make the
//! gateway terminate TLS itself. Handshakes run in their own tasks under a deadline, so a slow
//! or garbage client holds only its own socket; finished connections are handed to the same
//! axum server as plain TCP ones (WebSocket upgrades included).

pub mod certs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use phirepass_runtime::config::{ConfigError, env_opt, env_or};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, warn};

use crate::error::GatewayError;

/// Default of `GATEWAY_TLS_HANDSHAKE_TIMEOUT_SECS`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `GATEWAY_TLS_RELOAD_SECS`.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// Handshakes in progress at once; past this, new sockets are closed at once (a flood of
/// silent clients then costs file descriptors only briefly).
const MAX_PENDING_HANDSHAKES: usize = 4096;

/// Where the certificate is and how handshakes are bounded.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// PEM chain, leaf first (`GATEWAY_TLS_CERT`).
    pub cert: PathBuf,
    /// PEM private key: PKCS#8, PKCS#1 or SEC1 (`GATEWAY_TLS_KEY`).
    pub key: PathBuf,
    /// `GATEWAY_TLS_HANDSHAKE_TIMEOUT_SECS`: a client that has not finished by then is dropped.
    pub handshake_timeout: Duration,
    /// `GATEWAY_TLS_RELOAD_SECS`: how often the files are checked for a new certificate;
    /// `None` (0) never.
    pub reload_interval: Option<Duration>,
}

impl TlsSettings {
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            reload_interval: Some(DEFAULT_RELOAD_INTERVAL),
        }
    }

    /// `None` unless both files are named; one without the other is an error.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let (cert, key) = match (env_opt("GATEWAY_TLS_CERT"), env_opt("GATEWAY_TLS_KEY")) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "GATEWAY_TLS_KEY",
                    "GATEWAY_TLS_CERT is set: name the certificate's private key file too",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "GATEWAY_TLS_CERT",
                    "GATEWAY_TLS_KEY is set: name the certificate chain file too",
                ));
            }
        };
        let timeout: u64 = env_or("GATEWAY_TLS_HANDSHAKE_TIMEOUT_SECS", 10)?;
        if !(1..=120).contains(&timeout) {
            return Err(ConfigError::invalid(
                "GATEWAY_TLS_HANDSHAKE_TIMEOUT_SECS",
                format!("expected 1 to 120 seconds, got {timeout}"),
            ));
        }
        let reload: u64 = env_or("GATEWAY_TLS_RELOAD_SECS", DEFAULT_RELOAD_INTERVAL.as_secs())?;
        Ok(Some(Self {
            handshake_timeout: Duration::from_secs(timeout),
            reload_interval: (reload > 0).then(|| Duration::from_secs(reload)),
            ..Self::new(cert, key)
        }))
    }
}

/// Loads the certificate (a startup error names the file) and starts its reload watcher; the
/// watcher ends when the returned handle drops.
pub fn acceptor(settings: &TlsSettings) -> Result<(TlsAcceptor, AbortOnDrop), GatewayError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = certs::load(&settings.cert, &settings.key, &provider)
        .map_err(|e| GatewayError::Startup(e.to_string()))?;
    let resolver = Arc::new(certs::Resolver::new(key));
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Startup(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    // axum serves HTTP/1.1 (WebSocket upgrades are HTTP/1.1 too).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let watcher = tokio::spawn(certs::watch(resolver, settings.clone(), provider));
    Ok((TlsAcceptor::from(Arc::new(config)), AbortOnDrop(watcher)))
}

/// A listener whose connections have finished their TLS handshake. The TCP accept loop and
/// the handshakes run in background tasks, which end when this listener drops.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    _accept: AbortOnDrop,
}

impl TlsListener {
    pub fn new(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let accept = tokio::spawn(accept_loop(listener, acceptor, timeout, tx));
        Ok(Self {
            local,
            ready,
            _accept: AbortOnDrop(accept),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends with this listener; never hand out anything after it.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    timeout: Duration,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(error) => {
                accept_error(error).await;
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            debug!(%peer, "too many tls handshakes in progress: connection closed");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(timeout, acceptor.accept(tcp)).await;
            drop(permit);
            match handshake {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(error)) => debug!(%peer, %error, "tls handshake failed"),
                Err(_) => debug!(%peer, "tls handshake timed out"),
            }
        });
    }
}

/// As axum does for plain TCP: per-connection errors are the client's; anything else (out of
/// file descriptors) gets a pause so the loop does not spin.
async fn accept_error(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    warn!(%error, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Aborts a background task when dropped.
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
