//! One PostgreSQL role per service, with only its tables, and the owner role that runs
//! migrations.
//!
//! - authz owns identities and decisions: every table but the vault's.
//! - secrets owns the vault: `relay_host_options`, `relay_credentials`, `vault_keys`,
//!   `vault_settings`; it never reads users or password hashes.
//! - registry, gateway-ws and ssh-edge have no database (presence is Redis).
//! - `phirepass_owner` owns the schema, runs migrations (`Store::migrate`) and re-applies the
//!   grants; services connect with `Migrations::Require` and never hold DDL rights.
//!
//! Service roles log in by TLS client certificate (`cert` in pg_hba.conf: the certificate's
//! CN, the kind's name, is the role), the owner by password over TLS.

use phirepass_pki::ServiceKind;

/// The role that owns the tables and runs migrations.
pub const OWNER_ROLE: &str = "phirepass_owner";
/// sqlx's bookkeeping table; services read it to check the schema is current.
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

const AUTHZ_TABLES: &[&str] = &[
    "users",
    "pat_tokens",
    "nodes",
    "sessions",
    "user_keys",
    "user_groups",
    "group_members",
    "hosts",
    "target_names",
    "grants",
    "setup_codes",
    "invitations",
    "device_authorizations",
    "tunnel_names",
    "node_groups",
    "node_group_members",
];

const SECRETS_TABLES: &[&str] = &[
    "relay_host_options",
    "relay_credentials",
    "vault_keys",
    "vault_settings",
];

/// One service's role and the tables it reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbRole {
    pub kind: ServiceKind,
    pub tables: &'static [&'static str],
}

impl DbRole {
    /// The role's name: the kind's name, which is also its certificate's CN.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// Every service role.
pub const ROLES: &[DbRole] = &[
    DbRole {
        kind: ServiceKind::Authz,
        tables: AUTHZ_TABLES,
    },
    DbRole {
        kind: ServiceKind::Secrets,
        tables: SECRETS_TABLES,
    },
];

/// Run once by a superuser, connected to `database`: the owner and service roles (idempotent), the
/// database handed to the owner, nothing for PUBLIC. Set the owner's password afterwards
/// (`\password phirepass_owner`); service roles have none (certificate login).
pub fn roles_sql(database: &str) -> String {
    let db = quote_ident(database);
    let mut sql = String::new();
    for role in std::iter::once(OWNER_ROLE).chain(ROLES.iter().map(DbRole::name)) {
        sql.push_str(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') \
             THEN CREATE ROLE {} LOGIN; END IF; END $$;\n",
            quote_ident(role)
        ));
    }
    sql.push_str(&format!("ALTER DATABASE {db} OWNER TO {OWNER_ROLE};\n"));
    sql.push_str(&format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC;\n"));
    // Before PostgreSQL 15 everyone may create in `public`; only the owner should.
    sql.push_str(&format!(
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;\nGRANT USAGE, CREATE ON SCHEMA public TO {OWNER_ROLE};\n"
    ));
    for role in ROLES {
        sql.push_str(&format!(
            "GRANT CONNECT ON DATABASE {db} TO {};\n",
            quote_ident(role.name())
        ));
    }
    sql
}

/// Run by the owner after every migration (`Store::migrate` does): each service role gets
/// exactly its tables, whatever it held before.
pub fn grants_sql() -> String {
    ROLES
        .iter()
        .flat_map(role_grants)
        .map(|s| s + "\n")
        .collect()
}

/// One role's statements of [`grants_sql`].
pub fn role_grants(role: &DbRole) -> Vec<String> {
    let name = quote_ident(role.name());
    let mut sql = vec![
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name};"),
        format!("GRANT USAGE ON SCHEMA public TO {name};"),
        format!("GRANT SELECT ON {MIGRATIONS_TABLE} TO {name};"),
    ];
    for table in role.tables {
        sql.push(format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {name};"
        ));
    }
    sql
}

/// pg_hba.conf lines for `database`: TLS only (`hostssl`), services by certificate, the owner
/// by password. No `host` line, so plaintext connections find no entry and are refused.
pub fn pg_hba(database: &str, network: &str) -> String {
    let services = ROLES.iter().map(DbRole::name).collect::<Vec<_>>().join(",");
    format!(
        "hostssl {database} {services} {network} cert\n\
         hostssl {database} {OWNER_ROLE} {network} scram-sha-256\n"
    )
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every table the PostgreSQL migrations create belongs to exactly one role: a new
    /// table fails here until someone decides who owns it.
    #[test]
    fn every_table_has_exactly_one_owner() {
        let mut created = Vec::new();
        for (_, _, sql) in crate::migrate::POSTGRES {
            for line in sql.lines() {
                if let Some(rest) = line.trim().strip_prefix("CREATE TABLE ") {
                    let name = rest.split_whitespace().next().unwrap();
                    created.push(name.trim_end_matches('(').to_owned());
                }
            }
        }
        created.sort();
        let mut owned: Vec<String> = ROLES
            .iter()
            .flat_map(|r| r.tables.iter().map(|t| (*t).to_owned()))
            .collect();
        owned.sort();
        assert_eq!(created, owned);
    }

    #[test]
    fn secrets_never_gets_users_and_authz_never_gets_the_vault() {
        let grants = grants_sql();
        assert!(!grants.contains("ON users TO \"secrets\""));
        assert!(grants.contains("ON relay_credentials TO \"secrets\""));
        assert!(!grants.contains("ON relay_credentials TO \"authz\""));
        assert!(!grants.contains("ON vault_keys TO \"authz\""));
        assert!(
            pg_hba("pp", "10.0.0.0/8")
                .lines()
                .all(|l| l.starts_with("hostssl "))
        );
    }
}
