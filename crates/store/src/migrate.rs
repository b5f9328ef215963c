//! Embedded migrations, one directory per backend, applied with sqlx's
//! migrator (no `macros` feature: the SQL is embedded with `include_str!`).

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::{Backend, Store, StoreError};

/// (version, description, sql). Append only; never edit an applied entry
/// (sqlx checks checksums).
type Script = (i64, &'static str, &'static str);

const POSTGRES: &[Script] = &[
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

#[tracing::instrument(skip(store), fields(backend = ?store.backend))]
pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let scripts = match store.backend {
        Backend::Postgres => POSTGRES,
        Backend::Sqlite => SQLITE,
    };
    migrator(scripts)
        .run(&store.pool)
        .await
        .map_err(StoreError::Migrate)?;
    tracing::debug!("migrations applied");
    Ok(())
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
