//! The login sources of `[[authenticator]]`, asked in order.
//!
//! The rule: each source says whether it knows the user. The first source that knows the user
//! decides: the right password logs them in, a wrong one ends the attempt there (later sources are
//! not asked, so the same name in two sources never lets a second password in). A source that does
//! not know the user passes to the next. A source that cannot be asked (directory or database
//! down) ends the attempt with [`AuthError::Unavailable`]: the user is asked to try again later and
//! the attempt is not counted as a failure, because that source might have known the user. When no
//! source knows the user, one dummy Argon2 verification is spent, so that answer takes about as long
//! as a wrong password.
//!
//! Without `[[authenticator]]` tables the built-in users are the only source.

use std::sync::Arc;

use async_trait::async_trait;
use tessera_store::Store;

use super::ldap::LdapSource;
use super::local::{LocalAuthenticator, PasswordHasher};
use super::sql::SqlSource;
use super::{AuthError, AuthenticatedUser, Authenticator, Password};
use crate::config::AuthenticatorSettings;

/// What one source found.
#[derive(Debug)]
pub enum Outcome {
    /// It has no such user: the next source is asked.
    Unknown,
    /// It has the user, and the password is wrong (or the account is locked or disabled).
    Rejected,
    /// The right password.
    Accepted(AuthenticatedUser),
}

/// A login source of the chain.
#[async_trait]
pub trait Source: Send + Sync + 'static {
    /// Its name in logs and errors.
    fn name(&self) -> &str;

    /// Checks `username` and `password`. Must not spend dummy work on unknown users: the chain
    /// does that once, when no source knows the user.
    async fn check(&self, username: &str, password: &Password) -> Result<Outcome, AuthError>;
}

/// The sources, in order.
pub struct Chain {
    sources: Vec<Arc<dyn Source>>,
    hasher: PasswordHasher,
}

impl Chain {
    /// A chain of these sources; `hasher` spends the dummy verification.
    pub fn new(sources: Vec<Arc<dyn Source>>, hasher: PasswordHasher) -> Self {
        Self { sources, hasher }
    }

    /// The sources' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.sources.iter().map(|s| s.name()).collect()
    }
}

#[async_trait]
impl Authenticator for Chain {
    async fn authenticate(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<Option<AuthenticatedUser>, AuthError> {
        for source in &self.sources {
            match source.check(username, password).await {
                Ok(Outcome::Unknown) => continue,
                Ok(Outcome::Rejected) => {
                    tracing::debug!(source = %source.name(), user = %username, "password rejected by the source that has the user");
                    return Ok(None);
                }
                Ok(Outcome::Accepted(user)) => {
                    tracing::debug!(source = %source.name(), user = %user.username, "password accepted");
                    return Ok(Some(user));
                }
                Err(e) => {
                    tracing::error!(source = %source.name(), user = %username, error = %e, "login source unavailable; the login was not decided");
                    return Err(e);
                }
            }
        }
        self.hasher.verify_dummy(password).await?;
        Ok(None)
    }
}

/// The authenticator `[[authenticator]]` describes (the built-in users when the list is empty).
/// Nothing connects yet: a source that is down at start only fails the logins that reach it.
pub fn build(
    settings: &[AuthenticatorSettings],
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
) -> Result<Arc<dyn Authenticator>, AuthError> {
    let builtin =
        || -> Arc<dyn Source> { Arc::new(LocalAuthenticator::new(store.clone(), hasher.clone())) };
    let sources: Vec<Arc<dyn Source>> = if settings.is_empty() {
        vec![builtin()]
    } else {
        settings
            .iter()
            .map(|s| -> Result<Arc<dyn Source>, AuthError> {
                Ok(match s {
                    AuthenticatorSettings::Builtin(_) => builtin(),
                    AuthenticatorSettings::Ldap(l) => Arc::new(LdapSource::new(l)?),
                    AuthenticatorSettings::Sql(q) => Arc::new(SqlSource::new(q, hasher.clone())?),
                })
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Arc::new(Chain::new(sources, hasher)))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Fixed {
        name: &'static str,
        user: &'static str,
        password: &'static str,
        down: bool,
        asked: AtomicUsize,
    }

    impl Fixed {
        fn new(name: &'static str, user: &'static str, password: &'static str) -> Arc<Self> {
            Arc::new(Self {
                name,
                user,
                password,
                down: false,
                asked: AtomicUsize::new(0),
            })
        }
    }

    #[async_trait]
    impl Source for Fixed {
        fn name(&self) -> &str {
            self.name
        }
        async fn check(&self, username: &str, password: &Password) -> Result<Outcome, AuthError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if self.down {
                return Err(AuthError::Unavailable {
                    source_name: self.name.into(),
                    reason: "down".into(),
                });
            }
            Ok(if username != self.user {
                Outcome::Unknown
            } else if password.expose() == self.password {
                Outcome::Accepted(AuthenticatedUser {
                    username: username.into(),
                    attributes: [("source".to_owned(), vec![self.name.to_owned()])].into(),
                })
            } else {
                Outcome::Rejected
            })
        }
    }

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(&crate::config::PasswordSettings {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..Default::default()
        })
        .unwrap()
    }

    async fn login(chain: &Chain, user: &str, password: &str) -> Result<Option<String>, AuthError> {
        Ok(chain
            .authenticate(user, &Password::new(password.into()))
            .await?
            .map(|u| u.attributes["source"][0].clone()))
    }

    #[tokio::test]
    async fn the_first_source_that_knows_the_user_decides() {
        let a = Fixed::new("a", "alice", "one");
        let b = Fixed::new("b", "alice", "two");
        let c = Fixed::new("c", "bob", "three");
        let chain = Chain::new(vec![a.clone(), b.clone(), c.clone()], hasher());
        assert_eq!(chain.names(), ["a", "b", "c"]);
        assert_eq!(
            login(&chain, "alice", "one").await.unwrap().as_deref(),
            Some("a")
        );
        // b's password for the same name never gets there.
        assert_eq!(login(&chain, "alice", "two").await.unwrap(), None);
        assert_eq!(b.asked.load(Ordering::SeqCst), 0);
        assert_eq!(
            login(&chain, "bob", "three").await.unwrap().as_deref(),
            Some("c")
        );
        assert_eq!(login(&chain, "nobody", "x").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_unavailable_source_ends_the_attempt() {
        let down = Arc::new(Fixed {
            down: true,
            ..Arc::try_unwrap(Fixed::new("dir", "alice", "one"))
                .ok()
                .unwrap()
        });
        let after = Fixed::new("after", "alice", "one");
        let chain = Chain::new(vec![down, after.clone()], hasher());
        let e = login(&chain, "alice", "one").await.unwrap_err();
        assert!(e.to_string().contains("`dir` is unavailable"), "{e}");
        assert_eq!(after.asked.load(Ordering::SeqCst), 0);
    }
}
