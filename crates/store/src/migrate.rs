//! Embedded migrations, one directory per backend, applied with sqlx's
//! migrator (no `macros` feature: the SQL is embedded with `include_str!`).

use std::borrow::Cow;

use sqlx::Row;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::{Backend, Store, StoreError};

/// (version, description, sql). Append only; never edit an applied entry
/// (sqlx checks checksums).
pub(crate) type Script = (i64, &'static str, &'static str);

pub(crate) const POSTGRES: &[Script] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "nodes token index",
        include_str!("../migrations/postgres/0002_nodes_token_idx.sql"),
    ),
    (
        3,
        "access",
        include_str!("../migrations/postgres/0003_access.sql"),
    ),
    (
        4,
        "vault",
        include_str!("../migrations/postgres/0004_vault.sql"),
    ),
    (
        5,
        "user admin",
        include_str!("../migrations/postgres/0005_user_admin.sql"),
    ),
    (
        6,
        "onboarding",
        include_str!("../migrations/postgres/0006_onboarding.sql"),
    ),
    (
        7,
        "tunnel names",
        include_str!("../migrations/postgres/0007_tunnel_names.sql"),
    ),
    (
        8,
        "grant logins",
        include_str!("../migrations/postgres/0008_grant_logins.sql"),
    ),
    (
        9,
        "device client ip",
        include_str!("../migrations/postgres/0009_device_client_ip.sql"),
    ),
    (
        10,
        "command grants and node groups",
        include_str!("../migrations/postgres/0010_command_grants_node_groups.sql"),
    ),
];

const SQLITE: &[Script] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "nodes token index",
        include_str!("../migrations/sqlite/0002_nodes_token_idx.sql"),
    ),
    (
        3,
        "access",
        include_str!("../migrations/sqlite/0003_access.sql"),
    ),
    (
        4,
        "vault",
        include_str!("../migrations/sqlite/0004_vault.sql"),
    ),
    (
        5,
        "user admin",
        include_str!("../migrations/sqlite/0005_user_admin.sql"),
    ),
    (
        6,
        "onboarding",
        include_str!("../migrations/sqlite/0006_onboarding.sql"),
    ),
    (
        7,
        "tunnel names",
        include_str!("../migrations/sqlite/0007_tunnel_names.sql"),
    ),
    (
        8,
        "grant logins",
        include_str!("../migrations/sqlite/0008_grant_logins.sql"),
    ),
    (
        9,
        "device client ip",
        include_str!("../migrations/sqlite/0009_device_client_ip.sql"),
    ),
    (
        10,
        "command grants and node groups",
        include_str!("../migrations/sqlite/0010_command_grants_node_groups.sql"),
    ),
];

fn migrator(scripts: &[Script]) -> Migrator {
    let migrations = scripts
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// What a connecting process does about the schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Migrations {
    /// Apply pending migrations (needs the owner's DDL rights when any are pending). The
    /// embedded defaults and single-role deployments.
    #[default]
    Apply,
    /// Never change the schema: fail unless every migration of this binary is applied.
    /// Services running as their own role, after the owner's migrate step.
    Require,
}

fn scripts(backend: Backend) -> &'static [Script] {
    match backend {
        Backend::Postgres => POSTGRES,
        Backend::Sqlite => SQLITE,
    }
}

#[tracing::instrument(skip(store), fields(backend = ?store.backend))]
pub(crate) async fn run(store: &Store, mode: Migrations) -> Result<(), StoreError> {
    // A current schema needs no lock and no DDL, so a role without CREATE rights starts.
    if is_current(store).await {
        tracing::debug!("schema current");
        return Ok(());
    }
    if mode == Migrations::Require {
        return Err(StoreError::SchemaBehind);
    }
    migrator(scripts(store.backend))
        .run(&store.pool)
        .await
        .map_err(StoreError::Migrate)?;
    tracing::debug!("migrations applied");
    Ok(())
}

/// Every embedded migration is recorded as applied with the same checksum (a newer
/// binary's extra migrations are fine). `false` when the table cannot be read.
async fn is_current(store: &Store) -> bool {
    let rows =
        match sqlx::query("SELECT version, checksum FROM _sqlx_migrations WHERE success = $1")
            .bind(true)
            .fetch_all(&store.pool)
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                tracing::debug!(%error, "migrations table not readable");
                return false;
            }
        };
    let mut applied = std::collections::HashMap::new();
    for row in rows {
        let (Ok(version), Ok(checksum)) = (
            row.try_get::<i64, _>("version"),
            row.try_get::<Vec<u8>, _>("checksum"),
        ) else {
            return false;
        };
        applied.insert(version, checksum);
    }
    migrator(scripts(store.backend)).migrations.iter().all(|m| {
        applied
            .get(&m.version)
            .is_some_and(|c| c.as_slice() == &*m.checksum)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_have_the_same_increasing_versions() {
        let versions = |s: &[Script]| s.iter().map(|(v, _, _)| *v).collect::<Vec<_>>();
        assert_eq!(versions(POSTGRES), versions(SQLITE));
        assert!(versions(POSTGRES).windows(2).all(|w| w[0] < w[1]));
    }
}
