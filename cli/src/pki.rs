//! `phirepass pki`: the deployment's CA and one certificate per service kind, written to a
//! directory an operator distributes (each service gets `trust.crt` and its own pair only).

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use phirepass_pki::{IssueOptions, LocalPki, ServiceKind};

#[derive(Args)]
pub struct PkiArgs {
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create the CA and a certificate for every service kind in DIR (kept when they exist),
    /// with the NATS server configuration, the Redis ACL (and each service's Redis password)
    /// and the PostgreSQL roles that go with them.
    Init(Init),
    /// Issue (or renew) certificates with the current CA: `--kind K` (repeatable) or `--all`.
    Issue(Issue),
    /// Rotation step 1: a new CA issues from now on and is trusted beside the old one. Wait
    /// until every service reloaded `trust.crt`, then `issue --all`, then `retire-ca`.
    RotateCa(Dir),
    /// Rotation step 3: trust only the current CA.
    RetireCa(Dir),
}

#[derive(Args)]
struct Dir {
    /// The PKI directory (ca.crt, ca.key, trust.crt, <kind>.crt, <kind>.key).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Args)]
struct Init {
    #[command(flatten)]
    issue: Issue,
    /// Subject prefix of the deployment on NATS.
    #[arg(long, default_value = "pp")]
    prefix: String,
    /// Where the NATS server finds nats.crt, nats.key and trust.crt (as mounted in its
    /// container) [default: DIR].
    #[arg(long, value_name = "PATH")]
    nats_files_at: Option<PathBuf>,
    /// JetStream's storage directory in the NATS server's configuration.
    #[arg(long, default_value = "/data", value_name = "PATH")]
    nats_store_dir: PathBuf,
    /// The database the PostgreSQL roles are granted on.
    #[arg(long, default_value = "phirepass")]
    database: String,
}

#[derive(Args)]
struct Issue {
    #[command(flatten)]
    dir: Dir,
    /// Kinds to issue (authz, secrets, registry, gateway-ws, ssh-edge, nats, redis, postgres).
    #[arg(long = "kind", value_name = "KIND")]
    kinds: Vec<ServiceKind>,
    /// Every kind.
    #[arg(long, conflicts_with = "kinds")]
    all: bool,
    /// An extra DNS name the service is reached by (every cert already names its kind and
    /// localhost); repeatable.
    #[arg(long = "dns", value_name = "NAME")]
    dns_names: Vec<String>,
    /// An extra IP address (127.0.0.1 is always included); repeatable.
    #[arg(long = "ip", value_name = "ADDR")]
    ip_addresses: Vec<IpAddr>,
    /// Validity of the service certificates in days.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=825))]
    days: u32,
}

impl Issue {
    fn options(&self) -> IssueOptions {
        let now = time::OffsetDateTime::now_utc();
        IssueOptions {
            dns_names: self.dns_names.clone(),
            ip_addresses: self.ip_addresses.clone(),
            not_before: Some(now - time::Duration::minutes(5)),
            not_after: Some(now + time::Duration::days(i64::from(self.days))),
        }
    }
}

pub fn run(args: PkiArgs) -> anyhow::Result<()> {
    match args.command {
        PkiCommand::Init(init) => {
            let dir = &init.issue.dir.dir;
            let existed = dir.join("ca.crt").exists();
            let pki = LocalPki::load_or_init(dir, &init.issue.options())
                .with_context(|| format!("pki init in {}", dir.display()))?;
            let verb = if existed { "kept" } else { "created" };
            println!("{verb} CA {}", pki.ca().fingerprint()?);
            write_server_files(&init)?;
            println!("{}", layout(dir));
        }
        PkiCommand::Issue(issue) => {
            let kinds = match issue.all {
                true => ServiceKind::ALL.to_vec(),
                false if issue.kinds.is_empty() => anyhow::bail!("name a --kind, or --all"),
                false => issue.kinds.clone(),
            };
            let pki = open(&issue.dir)?;
            for kind in kinds {
                let files = pki.issue_to_dir(kind, &issue.options())?;
                println!("issued {kind}: {}", files.cert.display());
            }
        }
        PkiCommand::RotateCa(dir) => {
            let mut pki = open(&dir)?;
            let fingerprint = pki.rotate_ca()?;
            println!("new CA {fingerprint} issues from now on and is trusted beside the old one.");
            println!(
                "Next: once every service reloaded trust.crt (each rereads it every 60 s), run"
            );
            println!(
                "`phirepass pki issue --dir {} --all`, then `retire-ca`.",
                dir.dir.display()
            );
        }
        PkiCommand::RetireCa(dir) => {
            let mut pki = open(&dir)?;
            let retired = pki.retire_old_cas()?;
            println!(
                "retired {retired} CA(s); trust.crt holds only {}",
                pki.ca().fingerprint()?
            );
        }
    }
    Ok(())
}

/// The services' Redis key prefix (fixed).
const REDIS_PREFIX: &str = "pp:";

/// What the data plane's servers need beside their certificates. Kept when present: a new
/// Redis ACL would change every service's password.
fn write_server_files(init: &Init) -> anyhow::Result<()> {
    let dir = &init.issue.dir.dir;
    let nats = dir.join("nats-server.conf");
    if !nats.exists() {
        let files_at = init.nats_files_at.clone().unwrap_or_else(|| dir.clone());
        let mut config = phirepass_bus::NatsServerConfig::in_pki_dir(
            &files_at,
            "0.0.0.0:4222",
            &init.nats_store_dir,
        );
        config.prefix = init.prefix.clone();
        let text = phirepass_bus::render_server_config(&config)?;
        phirepass_pki::write(&nats, &text, false)?;
        println!("wrote {}", nats.display());
    }
    if !dir.join("redis.acl").exists() {
        let acl = phirepass_presence::acl::RedisAcl::generate(REDIS_PREFIX)?;
        acl.write_to(dir)?;
        println!(
            "wrote {} and redis-<kind>.password",
            dir.join("redis.acl").display()
        );
    }
    let roles = dir.join("postgres-roles.sql");
    if !roles.exists() {
        let sql = phirepass_store::roles::roles_sql(&init.database);
        phirepass_pki::write(&roles, &sql, false)?;
        println!("wrote {} (run it once as a superuser)", roles.display());
    }
    Ok(())
}

fn open(dir: &Dir) -> anyhow::Result<LocalPki> {
    anyhow::ensure!(
        dir.dir.join("ca.crt").exists(),
        "{} holds no CA: run `phirepass pki init --dir {}` first",
        dir.dir.display(),
        dir.dir.display()
    );
    Ok(LocalPki::load_or_init(&dir.dir, &IssueOptions::default())?)
}

fn layout(dir: &std::path::Path) -> String {
    format!(
        "In {}: ca.key stays with the operator (it issues certificates). Give each service\n\
         trust.crt and its own <kind>.crt and <kind>.key only, and set PHIREPASS_TLS_DIR to\n\
         the folder holding them (or PHIREPASS_TLS_CERT, PHIREPASS_TLS_KEY, PHIREPASS_TLS_TRUST);\n\
         authz and registry also get their redis-<kind>.password. docs/operations.md has the\n\
         servers' side (nats-server.conf, redis.acl, postgres-roles.sql).",
        dir.display()
    )
}

/// `phirepass migrate`: the one-shot schema step, as the database owner.
#[derive(Args)]
pub struct MigrateArgs {
    /// The owner's URL (`phirepass_owner`, password login), e.g.
    /// postgres://phirepass_owner:PASSWORD@postgres/phirepass.
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    database_url: String,
    /// Trust bundle to verify PostgreSQL against (sslmode=verify-full); without it the URL's
    /// own settings apply.
    #[arg(long, env = "PHIREPASS_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
}

/// Applies pending migrations, then gives each service role exactly its tables.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let tls = args.ca.as_deref().map(phirepass_store::PgTls::trust_only);
    let granted = phirepass_store::Store::migrate(&args.database_url, tls)
        .await
        .context("migrate")?;
    match granted.is_empty() {
        true => println!("schema up to date; no service role exists yet (postgres-roles.sql)"),
        false => println!("schema up to date; granted {}", granted.join(", ")),
    }
    Ok(())
}
