//! PostgreSQL over TLS with one role per service: a PostgreSQL instance of the test's own
//! (initdb in a temp dir, `ssl=on`, the `postgres` certificate of a `LocalPki`, pg_hba from
//! `phirepass_store::roles`: `hostssl` only), roles and grants from the generator, migrations
//! by the owner role, each service by its client certificate.

use std::path::{Path, PathBuf};
use std::process::Command;

use phirepass_pki::{IssueOptions, LocalPki, ServiceKind, TlsFiles};
use phirepass_store::roles::{self, OWNER_ROLE};
use phirepass_store::{
    ConnectOptions, Migrations, PgTls, RelayOptionRow, Store, StoreError, UserRow, new_id,
    now_millis,
};
use sqlx::Connection;

const DB: &str = "phirepass";
const OWNER_PASSWORD: &str = "owner-test-password";

struct PgServer {
    data: PathBuf,
    port: u16,
    pki: PathBuf,
    dir: tempfile::TempDir,
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|uids| uids.split_whitespace().next() == Some("0"))
}

/// A PostgreSQL tool; as root, run as `postgres` (initdb refuses root).
fn pg(tool: &str) -> Command {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(tool)))
        .find(|p| p.exists())
        .expect("PostgreSQL server binaries under /usr/lib/postgresql/*/bin");
    if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin);
        cmd
    } else {
        Command::new(bin)
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Files PostgreSQL reads must belong to the server's user.
fn give_to_postgres(path: &Path) {
    if running_as_root() {
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path));
    }
}

impl PgServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("chmod").arg("755").arg(dir.path()));
        let pki = dir.path().join("pki");
        LocalPki::load_or_init(&pki, &IssueOptions::default()).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        give_to_postgres(&data);
        run(pg("initdb")
            .current_dir(dir.path())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data));

        let server = TlsFiles::in_dir(&pki, ServiceKind::Postgres);
        std::fs::copy(&server.cert, data.join("server.crt")).unwrap();
        std::fs::copy(&server.key, data.join("server.key")).unwrap();
        std::fs::copy(&server.trust, data.join("root.crt")).unwrap();
        // The test's superuser over TLS (verified server, no client certificate), then the
        // deployment's lines. No `host` line: plaintext finds no entry.
        let hba = format!(
            "hostssl all postgres 127.0.0.1/32 trust\n{}",
            roles::pg_hba(DB, "127.0.0.1/32")
        );
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             ssl_ca_file = 'root.crt'\nfsync = off\n",
            data.display()
        );
        let mut pg_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pg_conf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pg_conf).unwrap();
        give_to_postgres(&data);
        run(Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key")));
        run(pg("pg_ctl")
            .args(["-w", "-t", "30", "-l"])
            .arg(data.join("server.log"))
            .arg("-D")
            .arg(&data)
            .arg("start"));
        Self {
            data,
            port,
            pki,
            dir,
        }
    }

    fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    fn trust(&self) -> PathBuf {
        self.pki.join("trust.crt")
    }

    /// As the superuser over verified TLS: the database and the generated roles.
    async fn create_roles(&self) {
        sqlx::any::install_default_drivers();
        let tls = format!(
            "?sslmode=verify-full&sslrootcert={}",
            self.trust().display()
        );
        let mut admin =
            sqlx::AnyConnection::connect(&format!("{}{tls}", self.url("postgres", "postgres")))
                .await
                .unwrap();
        sqlx::query(&format!("CREATE DATABASE {DB}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut db = sqlx::AnyConnection::connect(&format!("{}{tls}", self.url("postgres", DB)))
            .await
            .unwrap();
        for statement in roles::roles_sql(DB).lines() {
            sqlx::query(statement).execute(&mut db).await.unwrap();
        }
        sqlx::query(&format!(
            "ALTER ROLE {OWNER_ROLE} PASSWORD '{OWNER_PASSWORD}'"
        ))
        .execute(&mut db)
        .await
        .unwrap();
    }

    async fn migrate(&self) -> Vec<&'static str> {
        let url = self.url(&format!("{OWNER_ROLE}:{OWNER_PASSWORD}"), DB);
        Store::migrate(&url, Some(PgTls::trust_only(&self.trust())))
            .await
            .unwrap()
    }

    /// `kind`'s store as its service connects: its role, its certificate, no DDL.
    async fn service(&self, role: &str, files: TlsFiles) -> Result<Store, StoreError> {
        let options = ConnectOptions {
            tls: Some(files.into()),
            migrations: Migrations::Require,
        };
        Store::connect_with(&self.url(role, DB), &options).await
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = pg("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
        let _ = &self.dir;
    }
}

fn assert_denied<T>(result: Result<T, impl std::fmt::Debug>) {
    let Err(err) = result else {
        panic!("allowed, expected permission denied");
    };
    let err = format!("{err:?}");
    assert!(err.contains("permission denied"), "{err}");
}

fn user(name: &str) -> UserRow {
    UserRow {
        id: new_id(),
        username: name.to_owned(),
        password_hash: "$argon2id$dummy".to_owned(),
        disabled: false,
        admin: false,
        created_at: now_millis(),
    }
}

#[tokio::test]
async fn service_roles_over_tls_own_only_their_tables() {
    let pg = PgServer::start();
    pg.create_roles().await;
    let authz_files = TlsFiles::in_dir(&pg.pki, ServiceKind::Authz);
    let secrets_files = TlsFiles::in_dir(&pg.pki, ServiceKind::Secrets);
    // Before the owner's migrate step a service refuses to start (it cannot migrate).
    assert!(matches!(
        pg.service("authz", authz_files.clone()).await,
        Err(StoreError::SchemaBehind)
    ));
    assert_eq!(pg.migrate().await, ["authz", "secrets"]);
    // The step is repeatable: nothing pending, grants re-applied.
    assert_eq!(pg.migrate().await, ["authz", "secrets"]);

    let authz = pg.service("authz", authz_files).await.unwrap();
    authz.insert_user(&user("alice")).await.unwrap();
    assert!(authz.user_by_username("alice").await.unwrap().is_some());
    authz
        .insert_group(&new_id(), "ops", now_millis())
        .await
        .unwrap();
    assert_denied(authz.relay_credentials().await);
    assert_denied(authz.relay_options("web1").await);
    assert_denied(
        sqlx::query("SELECT value FROM vault_settings")
            .fetch_all(authz.pool())
            .await,
    );
    assert_denied(
        sqlx::query("CREATE TABLE sneaky (id TEXT)")
            .execute(authz.pool())
            .await,
    );

    let secrets = pg.service("secrets", secrets_files).await.unwrap();
    let option = RelayOptionRow {
        host: "web1".into(),
        key: "auth.username".into(),
        value_envelope: "sealed".into(),
        key_id: "k1".into(),
        updated_at: 1,
    };
    secrets.put_relay_options(&[option]).await.unwrap();
    assert_eq!(secrets.relay_options("web1").await.unwrap().len(), 1);
    secrets
        .vault_setting_or_insert("salt", "abc")
        .await
        .unwrap();
    assert!(secrets.relay_credentials().await.unwrap().is_empty());
    assert_denied(secrets.user_by_username("alice").await);
    assert_denied(
        sqlx::query("SELECT password_hash FROM users")
            .fetch_all(secrets.pool())
            .await,
    );
    assert_denied(
        sqlx::query("SELECT token_hash FROM pat_tokens")
            .fetch_all(secrets.pool())
            .await,
    );
    authz.close().await;
    secrets.close().await;
}

#[tokio::test]
async fn plaintext_foreign_certificates_and_other_roles_are_refused() {
    let pg = PgServer::start();
    pg.create_roles().await;
    pg.migrate().await;
    let ours = |kind| TlsFiles::in_dir(&pg.pki, kind);

    // Plaintext: no pg_hba entry for it, whoever asks.
    let plain = format!("{}?sslmode=disable", pg.url("authz", DB));
    assert!(matches!(
        Store::connect(&plain).await,
        Err(StoreError::Connect(_))
    ));
    let owner_plain = format!(
        "{}?sslmode=disable",
        pg.url(&format!("{OWNER_ROLE}:{OWNER_PASSWORD}"), DB)
    );
    assert!(Store::connect(&owner_plain).await.is_err());

    // secrets' certificate does not log in as authz (the CN names the role).
    assert!(
        pg.service("authz", ours(ServiceKind::Secrets))
            .await
            .is_err()
    );
    // Nor does a service certificate log in as the owner, nor without its password.
    assert!(
        pg.service(OWNER_ROLE, ours(ServiceKind::Authz))
            .await
            .is_err()
    );

    // Another deployment's CA: its client certificate is refused by the server...
    let other = tempfile::tempdir().unwrap();
    LocalPki::load_or_init(other.path(), &IssueOptions::default()).unwrap();
    let foreign_cert = TlsFiles {
        trust: pg.trust(),
        ..TlsFiles::in_dir(other.path(), ServiceKind::Authz)
    };
    assert!(pg.service("authz", foreign_cert).await.is_err());
    // ...and a client trusting only it does not believe our server.
    let foreign_trust = TlsFiles {
        trust: other.path().join("trust.crt"),
        ..ours(ServiceKind::Authz)
    };
    assert!(matches!(
        pg.service("authz", foreign_trust).await,
        Err(StoreError::Connect(_))
    ));
    // The same connection with the right files works: the refusals are about the CA.
    pg.service("authz", ours(ServiceKind::Authz))
        .await
        .unwrap()
        .close()
        .await;
}
