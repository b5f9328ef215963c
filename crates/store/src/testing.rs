//! Test isolation helpers (feature `testing`): a fresh database per test.

use sqlx::{Connection, Row};

use crate::{Store, StoreError};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const PREFIX: &str = "pp_test_";
// Databases left behind by earlier runs are dropped once they are this old.
const STALE_AFTER_SECS: i64 = 3600;

impl Store {
    /// Creates a uniquely named database on the server named by
    /// `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
    /// and returns a migrated store on it. Stale test databases from earlier
    /// runs (older than an hour) are dropped on the way.
    pub async fn fresh_postgres_for_test() -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let admin_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let mut admin = sqlx::AnyConnection::connect(&admin_url)
            .await
            .map_err(StoreError::Connect)?;

        let now_secs = crate::now_millis() / 1000;
        drop_stale(&mut admin, now_secs).await;

        let name = format!("{PREFIX}{now_secs}_{}", &crate::new_id()[..12]);
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let _ = admin.close().await;
        Self::connect(&with_database(&admin_url, &name)).await
    }
}

async fn drop_stale(admin: &mut sqlx::AnyConnection, now_secs: i64) {
    let Ok(rows) = sqlx::query(
        "SELECT datname::text AS datname FROM pg_database WHERE datname LIKE 'pp_test_%'",
    )
    .fetch_all(&mut *admin)
    .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String, _>("datname") else {
            continue;
        };
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<i64>().ok());
        if created.is_some_and(|secs| now_secs - secs > STALE_AFTER_SECS)
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// Replaces the database path of a `postgres://` URL, keeping any query.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}

/// Runs each named `async fn(Store)` as two tests: `pg::<name>` on a fresh
/// PostgreSQL database and `sqlite::<name>` on an in-memory SQLite store.
/// The one copy every crate's tests use (feature `testing`).
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod pg {
            $(#[tokio::test]
            async fn $name() {
                let store = $crate::Store::fresh_postgres_for_test()
                    .await
                    .expect("fresh postgres database");
                super::$name(store).await;
            })*
        }
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let store = $crate::Store::memory_sqlite().await.expect("sqlite");
                super::$name(store).await;
            })*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_database_in_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
