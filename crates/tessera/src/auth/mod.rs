//! Who the user is: checking credentials, off the async threads, and refusing brute force.

pub mod chain;
pub mod hashes;
pub mod ldap;
pub mod local;
pub mod sql;
pub mod throttle;

use std::fmt;

use async_trait::async_trait;
use tessera_protocol::Attributes;

/// A password as typed. Never printed: `Debug` shows a placeholder.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: String) -> Self {
        Self(p)
    }

    /// The password text, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A user whose credentials checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The canonical login name.
    pub username: String,
    /// Their attributes.
    pub attributes: Attributes,
}

/// Why authentication could not be decided (not a wrong password: that is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The user store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::StoreError),
    /// The hashing task failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A login source (directory, database) could not be asked; the attempt is not counted as a
    /// failure, and the user is asked to try again later.
    #[error("login source `{source_name}` is unavailable: {reason}")]
    Unavailable {
        /// The source's name (`[[authenticator]] name`).
        source_name: String,
        /// What went wrong (never a password).
        reason: String,
    },
}

/// A source of users and credentials.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// `Some(user)` when `username` and `password` are right, `None` when they are not (whether the
    /// user exists or not: callers must not be able to tell).
    async fn authenticate(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<Option<AuthenticatedUser>, AuthError>;
}

/// Whether `name` can be a login name: 1 to 256 characters, no control characters, no surrounding
/// whitespace.
pub fn is_valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.chars().any(char::is_control)
        && name.trim() == name
}
