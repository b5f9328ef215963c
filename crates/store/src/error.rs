//! The store's error type.

/// Errors from [`crate::Store`]. Messages never include connection URLs or
/// query parameters; callers log them and return a generic message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url (expected postgres:// or sqlite:)")]
    UnsupportedUrl,
    #[error("connecting to the database failed")]
    Connect(#[source] sqlx::Error),
    #[error("applying database migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// `Migrations::Require` and this binary's migrations are not all applied.
    #[error("database schema is behind this binary: run the migrate step as the owner role")]
    SchemaBehind,
    #[error("database tls: {0}")]
    Tls(&'static str),
    /// A unique constraint was violated (e.g. a username already taken).
    #[error("record already exists")]
    Conflict,
    #[error("database query failed")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            _ => Self::Query(err),
        }
    }
}
