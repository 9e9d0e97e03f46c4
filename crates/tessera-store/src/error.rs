//! Errors of the store boundary.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row already exists (a user or service of that name).
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored row could not be read back into a domain value.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database URL is not usable.
    #[error("database url `{url}`: {reason}")]
    BadUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Applying one of the embedded SQLite migrations failed.
    #[error("database migration {version} failed: {reason}")]
    MigrationFailed {
        /// The migration's number.
        version: i64,
        /// Why it failed.
        reason: String,
    },
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite database reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A write was decided with services or clients that have changed since (the registry
    /// version it was given is not the store's): nothing was written; decide again.
    #[error("the services or clients changed while the request was decided")]
    RegistryChanged,
    /// The store cannot take requests any more (its writer stopped).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// An import found rows in the destination database, which it only ever fills when empty so
    /// that nothing is merged by accident.
    #[error(
        "the destination database is not empty (it holds {0}); copy into a new, empty database"
    )]
    NotEmpty(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;
