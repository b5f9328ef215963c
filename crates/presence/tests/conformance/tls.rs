//! Redis over TLS with one ACL user per service: a real redis-server started per test on a
//! free port, TLS only (`--port 0`), client certificates required, the ACL file from
//! `phirepass_presence::acl`, certificates from a `LocalPki` directory.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use phirepass_pki::{IssueOptions, LocalPki, ServiceKind, TlsFiles};
use phirepass_presence::acl::RedisAcl;
use phirepass_presence::{Presence, PresenceError, RedisAuth, RedisPresence};
use tempfile::TempDir;

/// The deployment prefix the services use.
const PREFIX: &str = "pp:";
/// A test-only user for the conformance suite: every command either service uses, on the
/// suite's random prefixes only.
const CONFORMANCE_USER: &str = "user conformance on >conformance-password resetkeys ~pp-test-* \
     resetchannels -@all +ping +hello +get +set +del +eval +incr +pttl \
     +pexpire +scan +mget\n";

pub struct TlsRedis {
    child: Child,
    pub port: u16,
    pub pki: PathBuf,
    pub acl: RedisAcl,
    _dir: TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // redis-server binds it itself; the window between drop and bind is tiny.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TlsRedis {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        LocalPki::load_or_init(&pki, &IssueOptions::default()).unwrap();
        let acl = RedisAcl::generate(PREFIX).unwrap();
        let acl_path = dir.path().join("users.acl");
        std::fs::write(&acl_path, format!("{}{CONFORMANCE_USER}", acl.file)).unwrap();
        let server = TlsFiles::in_dir(&pki, ServiceKind::Redis);
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("redis.log")).unwrap();
        let arg = |p: &Path| p.to_str().unwrap().to_owned();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--tls-auth-clients", "yes"])
            .args(["--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &arg(&server.cert)])
            .args(["--tls-key-file", &arg(&server.key)])
            .args(["--tls-ca-cert-file", &arg(&server.trust)])
            .args(["--aclfile", &arg(&acl_path)])
            .args(["--dir", &arg(dir.path())])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        let mut redis = Self {
            child,
            port,
            pki,
            acl,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                redis.child.try_wait().unwrap().is_none(),
                "redis-server exited"
            );
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    pub fn password(&self, kind: ServiceKind) -> String {
        let (_, password) = self.acl.passwords.iter().find(|(k, _)| *k == kind).unwrap();
        password.clone()
    }

    /// `kind`'s presence as its service connects it: its certificate, user and password.
    pub async fn service(&self, kind: ServiceKind) -> RedisPresence {
        let auth = RedisAuth::for_kind(&self.pki, kind, Some(self.password(kind)));
        RedisPresence::connect_with(&self.url(), PREFIX, &auth)
            .await
            .unwrap()
    }

    /// The conformance suite's presence: TLS as registry's certificate, the test user.
    pub async fn conformance(&self) -> Arc<dyn Presence> {
        let auth = RedisAuth {
            tls: Some(TlsFiles::in_dir(&self.pki, ServiceKind::Registry)),
            username: Some("conformance".into()),
            password: Some("conformance-password".into()),
        };
        Arc::new(
            RedisPresence::connect_with(&self.url(), &super::random_prefix(), &auth)
                .await
                .unwrap(),
        )
    }
}

/// The server's answer inside a presence error (`NOPERM ...`, `NOAUTH ...`).
fn server_error(err: &PresenceError) -> String {
    match err {
        PresenceError::Backend(e) | PresenceError::InvalidUrl(e) => format!("{e:?}"),
        other => format!("{other:?}"),
    }
}

fn assert_noperm<T: std::fmt::Debug>(result: Result<T, PresenceError>) {
    let err = result.expect_err("refused by the ACL");
    let text = server_error(&err);
    // A command is refused with NOPERM; a command inside a script fails the script.
    assert!(
        text.contains("NOPERM") || text.contains("can't run this command"),
        "{err:?}"
    );
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn registry_user_makes_its_calls_and_nothing_else() {
    let redis = TlsRedis::start();
    let registry = redis.service(ServiceKind::Registry).await;
    let authz = redis.service(ServiceKind::Authz).await;
    // What registry does: claim, refresh, list, release nodes, sessions and tunnels.
    assert!(
        registry
            .put_if_absent("node:n1", "gw-a", LONG)
            .await
            .unwrap()
    );
    assert!(
        registry
            .replace_if("node:n1", "gw-a", "gw-a2", LONG)
            .await
            .unwrap()
    );
    registry.put("session:s1", "{}", LONG).await.unwrap();
    assert!(
        registry
            .put_if_absent("tunnel:app:80", "s1", LONG)
            .await
            .unwrap()
    );
    assert_eq!(registry.list("node:").await.unwrap().len(), 1);
    assert_eq!(registry.list("tunnel:app:").await.unwrap().len(), 1);
    assert!(registry.delete_if("node:n1", "gw-a2").await.unwrap());
    assert!(registry.delete("session:s1").await.unwrap());
    assert_eq!(
        registry.get("tunnel:app:80").await.unwrap().as_deref(),
        Some("s1")
    );

    // authz's keys exist, and registry can neither read nor overwrite them.
    authz
        .put("authz:login:src:192.0.2.1", "3", LONG)
        .await
        .unwrap();
    assert_noperm(registry.get("authz:login:src:192.0.2.1").await);
    assert_noperm(registry.put("apptoken:abc", "{}", LONG).await);
    assert_noperm(registry.delete("authz:acl-generation").await);
    // Registry never counts: INCR inside the script is checked too.
    assert_noperm(registry.incr("node:n2", LONG).await);
    assert_noperm(registry.get("other:key").await);
}

#[tokio::test]
async fn authz_user_makes_its_calls_and_nothing_else() {
    let redis = TlsRedis::start();
    let authz = redis.service(ServiceKind::Authz).await;
    let registry = redis.service(ServiceKind::Registry).await;
    // Login guard, rate limits, decision cache, app tokens.
    assert_eq!(
        authz.incr("authz:login:src:192.0.2.1", LONG).await.unwrap(),
        1
    );
    assert_eq!(authz.incr("authz:acl-generation", LONG).await.unwrap(), 1);
    authz
        .put("authz:decision:1:i1:u:2:n1", "{}", LONG)
        .await
        .unwrap();
    authz.put("apptoken:00ff", "{}", LONG).await.unwrap();
    assert_eq!(
        authz.get("apptoken:00ff").await.unwrap().as_deref(),
        Some("{}")
    );
    assert!(authz.delete("authz:login:src:192.0.2.1").await.unwrap());

    registry.put("node:n1", "gw-a", LONG).await.unwrap();
    assert_noperm(authz.get("node:n1").await);
    assert_noperm(authz.put("session:s1", "{}", LONG).await);
    // authz never lists: no SCAN, so not even key names of others.
    assert_noperm(authz.list("authz:").await);
}

// Refusals end at the client's connect deadline: a second worker keeps timers running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_missing_credentials_are_refused() {
    let redis = TlsRedis::start();
    let plain = format!("redis://127.0.0.1:{}", redis.port);
    assert!(RedisPresence::connect(&plain, PREFIX).await.is_err());

    // TLS with a certificate but no ACL user: the default user is off.
    let anonymous = RedisAuth {
        tls: Some(TlsFiles::in_dir(&redis.pki, ServiceKind::Registry)),
        ..RedisAuth::default()
    };
    match RedisPresence::connect_with(&redis.url(), PREFIX, &anonymous).await {
        Err(err) => assert!(server_error(&err).contains("NOAUTH"), "{err:?}"),
        Ok(p) => {
            let err = p.get("node:n1").await.expect_err("default user is off");
            assert!(server_error(&err).contains("NOAUTH"), "{err:?}");
        }
    }

    // The right certificate and user, the wrong password.
    let mut wrong = RedisAuth::for_kind(&redis.pki, ServiceKind::Registry, Some("nope".into()));
    assert!(
        RedisPresence::connect_with(&redis.url(), PREFIX, &wrong)
            .await
            .is_err()
    );
    // Another service's password does not open registry's user.
    wrong.password = Some(redis.password(ServiceKind::Authz));
    assert!(
        RedisPresence::connect_with(&redis.url(), PREFIX, &wrong)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let redis = TlsRedis::start();
    // Trust bundle only: the server requires a client certificate.
    let client = redis::Client::build_with_tls(
        redis.url().as_str(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(redis.pki.join("trust.crt")).unwrap()),
        },
    )
    .unwrap();
    let mut conn = match client.get_multiplexed_async_connection().await {
        Err(_) => return,
        Ok(conn) => conn,
    };
    // TLS 1.3 reports a refused client certificate after the handshake: the first command.
    let reply: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
    assert!(reply.is_err());
}

// Refusals end at the client's connect deadline: a second worker keeps timers running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_another_ca_are_refused() {
    let redis = TlsRedis::start();
    let other = tempfile::tempdir().unwrap();
    LocalPki::load_or_init(other.path(), &IssueOptions::default()).unwrap();
    let password = Some(redis.password(ServiceKind::Registry));

    // A client certificate of another deployment, with the right trust and password.
    let foreign_cert = RedisAuth {
        tls: Some(TlsFiles {
            trust: redis.pki.join("trust.crt"),
            ..TlsFiles::in_dir(other.path(), ServiceKind::Registry)
        }),
        username: Some("registry".into()),
        password: password.clone(),
    };
    let refused = match RedisPresence::connect_with(&redis.url(), PREFIX, &foreign_cert).await {
        Err(_) => true,
        Ok(p) => p.get("node:n1").await.is_err(),
    };
    assert!(refused, "a client certificate from another CA was accepted");

    // Our certificate, but trusting only the other CA: the server is not believed.
    let foreign_trust = RedisAuth {
        tls: Some(TlsFiles {
            trust: other.path().join("trust.crt"),
            ..TlsFiles::in_dir(&redis.pki, ServiceKind::Registry)
        }),
        username: Some("registry".into()),
        password,
    };
    assert!(
        RedisPresence::connect_with(&redis.url(), PREFIX, &foreign_trust)
            .await
            .is_err()
    );
    // The same settings with the right files work (the refusals above are about the CA).
    redis
        .service(ServiceKind::Registry)
        .await
        .get("node:n1")
        .await
        .unwrap();
}
