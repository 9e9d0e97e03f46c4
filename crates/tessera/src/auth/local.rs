//! The built-in user store: Argon2id hashes (RFC 9106) in the database.
//!
//! Hashing is CPU-heavy on purpose, so it runs on the blocking pool, a bounded number at a time: a
//! flood of logins queues for the hasher instead of starving ticket validation on the async threads.
//! An unknown user is checked against a dummy hash, so the answer takes as long as for a real one.
//!
//! Users imported with a hash of another system (`tessera user import`: bcrypt, crypt(3), Django,
//! LDAP `{SSHA}`…, see [`super::hashes`]) log in with it once; their password is then re-hashed
//! with Argon2id and the old hash replaced.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use tessera_store::Store;
use tokio::sync::{OnceCell, Semaphore};
use tracing::Instrument;

use super::chain::{Outcome, Source};
use super::hashes::{self, Verification};
use super::{AuthError, AuthenticatedUser, Authenticator, Password};
use crate::config::PasswordSettings;

/// Hashes and verifies passwords with Argon2id, off the async threads.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    /// A hasher with these parameters (checked by the config loader).
    pub fn new(settings: &PasswordSettings) -> Result<Self, AuthError> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| AuthError::Hashing(e.to_string()))?;
        let permits = settings
            .max_concurrent_hashes
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
            .max(1);
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(permits)),
            dummy: Arc::new(OnceCell::new()),
        })
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// Runs `f` on the blocking pool, at most `max_concurrent_hashes` at a time.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(f))
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))
    }

    /// A PHC string (`$argon2id$v=19$m=…`) for `password`, with a fresh salt.
    pub async fn hash(&self, password: &Password) -> Result<String, AuthError> {
        let (params, password) = (self.params.clone(), password.clone());
        self.blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Self::argon2(params)
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AuthError::Hashing(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches the PHC string `hash` (with the parameters stored in it).
    pub async fn verify(&self, password: &Password, hash: &str) -> Result<bool, AuthError> {
        let (params, password, hash) = (self.params.clone(), password.clone(), hash.to_owned());
        self.blocking(move || match PasswordHash::new(&hash) {
            Ok(parsed) => Self::argon2(params)
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        })
        .await
    }

    /// Spends the time of one verification, for users that do not exist.
    pub(crate) async fn verify_dummy(&self, password: &Password) -> Result<(), AuthError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async {
                self.hash(&Password::new("tessera-dummy-password".into()))
                    .await
            })
            .await?
            .clone();
        self.verify(password, &dummy).await.map(|_| ())
    }
}

/// Users of the built-in store.
#[derive(Clone)]
pub struct LocalAuthenticator {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
}

impl LocalAuthenticator {
    /// Checks credentials against `store` with `hasher`.
    pub fn new(store: Arc<dyn Store>, hasher: PasswordHasher) -> Self {
        Self { store, hasher }
    }
}

impl LocalAuthenticator {
    /// Checks a stored hash: Argon2 PHC strings as always, other known formats (imported users)
    /// through [`hashes`], re-hashed with Argon2id once they match.
    async fn check_hash(
        &self,
        username: &str,
        password: &Password,
        stored: &str,
    ) -> Result<bool, AuthError> {
        if stored.starts_with("$argon2") || hashes::detect(stored).is_none() {
            return self.hasher.verify(password, stored).await;
        }
        let (secret, stored) = (password.clone(), stored.to_owned());
        let verdict = self
            .hasher
            .blocking(move || hashes::verify(secret.expose(), &stored, None, false))
            .await?;
        if verdict != Verification::Match {
            return Ok(false);
        }
        match self.hasher.hash(password).await {
            Ok(rehashed) => match self.store.put_password_hash(username, &rehashed).await {
                Ok(_) => {
                    tracing::info!(user = %username, "imported password hash replaced by Argon2id")
                }
                Err(e) => {
                    tracing::warn!(user = %username, error = %e, "could not store the Argon2id re-hash; the imported hash stays")
                }
            },
            Err(e) => {
                tracing::warn!(user = %username, error = %e, "could not re-hash an imported password")
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl Source for LocalAuthenticator {
    fn name(&self) -> &str {
        "builtin"
    }

    async fn check(&self, username: &str, password: &Password) -> Result<Outcome, AuthError> {
        let span = tracing::debug_span!("argon2_verify");
        async {
            let Some(user) = self.store.get_user(username).await? else {
                return Ok(Outcome::Unknown);
            };
            Ok(
                if self
                    .check_hash(&user.username, password, &user.password_hash)
                    .await?
                {
                    Outcome::Accepted(AuthenticatedUser {
                        username: user.username,
                        attributes: user.attributes,
                    })
                } else {
                    Outcome::Rejected
                },
            )
        }
        .instrument(span)
        .await
    }
}

#[async_trait]
impl Authenticator for LocalAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<Option<AuthenticatedUser>, AuthError> {
        match self.check(username, password).await? {
            Outcome::Accepted(user) => Ok(Some(user)),
            Outcome::Rejected => Ok(None),
            Outcome::Unknown => {
                self.hasher.verify_dummy(password).await?;
                Ok(None)
            }
        }
    }
}
