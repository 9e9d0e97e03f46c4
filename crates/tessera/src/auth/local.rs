//! The built-in user store: Argon2id hashes (RFC 9106) in the database.
//!
//! Hashing is CPU-heavy on purpose, so it runs on the blocking pool, a bounded number at a time: a
//! flood of logins queues for the hasher instead of starving ticket validation on the async threads.
//! An unknown user is checked against a dummy hash, so the answer takes as long as for a real one.
//!
//! The working memory of Argon2id (`argon2_memory_kib` per hash, 19 MiB by default) is kept between
//! hashes, one buffer per hash that may run at once: allocated and freed on every login, glibc kept
//! the freed buffers in the arenas of the blocking threads that hashed, and a burst of logins left the
//! process holding half a gigabyte and more.
//!
//! Users imported with a hash of another system (`tessera user import`: bcrypt, crypt(3), Django,
//! LDAP `{SSHA}`…, see [`super::hashes`]) log in with it once; their password is then re-hashed
//! with Argon2id and the old hash replaced.

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
    memory: Arc<WorkingMemory>,
    dummy: Arc<OnceCell<String>>,
}

/// Argon2 working memory kept for the next hash (see the module documentation).
#[derive(Default)]
struct WorkingMemory {
    spare: Mutex<Vec<Vec<Block>>>,
}

impl WorkingMemory {
    /// Runs `f` with `blocks` blocks of memory, a kept buffer if there is one. The buffer is kept
    /// afterwards unless it is larger than `keep` blocks (a stored hash with a higher memory cost
    /// than the configured one is checked with memory of its own). Every block is written before
    /// Argon2 reads it, so a reused buffer needs no clearing.
    fn with<T>(&self, blocks: usize, keep: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let spare = || self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        let mut buffer = spare().pop().unwrap_or_default();
        if buffer.len() < blocks {
            buffer.resize(blocks, Block::default());
        }
        let result = f(&mut buffer[..blocks]);
        if buffer.len() <= keep {
            spare().push(buffer);
        }
        result
    }
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
            memory: Arc::default(),
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
        let (params, password, memory) =
            (self.params.clone(), password.clone(), self.memory.clone());
        self.blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            let output = compute(
                &memory,
                Self::argon2(params.clone()),
                password.expose().as_bytes(),
                salt.as_salt(),
                params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN),
                params.block_count(),
            )?;
            let hash = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params)?,
                salt: Some(salt.as_salt()),
                hash: Some(output),
            };
            Ok(hash.to_string())
        })
        .await?
        .map_err(|e: argon2::password_hash::Error| AuthError::Hashing(e.to_string()))
    }

    /// Whether `password` matches the PHC string `hash` (with the algorithm, version and
    /// parameters stored in it), compared in constant time.
    pub async fn verify(&self, password: &Password, hash: &str) -> Result<bool, AuthError> {
        let (password, hash, memory) = (password.clone(), hash.to_owned(), self.memory.clone());
        let keep = self.params.block_count();
        self.blocking(move || {
            let parsed = PasswordHash::new(&hash)?;
            let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
                return Ok(false);
            };
            let algorithm = Algorithm::try_from(parsed.algorithm)?;
            let version = parsed
                .version
                .map(Version::try_from)
                .transpose()?
                .unwrap_or_default();
            let argon2 = Argon2::new(algorithm, version, Params::try_from(&parsed)?);
            let bytes = password.expose().as_bytes();
            let output = compute(&memory, argon2, bytes, salt, expected.len(), keep)?;
            Ok(output == expected) // `Output` compares in constant time
        })
        .await?
        .or_else(|_: argon2::password_hash::Error| Ok(false))
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

/// The Argon2 output of `len` bytes for `password` and `salt`, computed in `memory` (of which the
/// hash needs `argon2`'s block count; `keep` is what [`WorkingMemory::with`] may keep).
fn compute(
    memory: &WorkingMemory,
    argon2: Argon2<'_>,
    password: &[u8],
    salt: Salt<'_>,
    len: usize,
    keep: usize,
) -> argon2::password_hash::Result<Output> {
    let mut salt_buffer = [0; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_buffer)?;
    let blocks = argon2.params().block_count();
    memory.with(blocks, keep, |blocks| {
        Output::init_with(len, |out| {
            Ok(argon2.hash_password_into_with_memory(password, salt, out, blocks)?)
        })
    })
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

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn hasher(memory_kib: u32, concurrent: usize) -> PasswordHasher {
        PasswordHasher::new(&PasswordSettings {
            argon2_memory_kib: memory_kib,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_hashes: Some(concurrent),
        })
        .unwrap()
    }

    fn password(text: &str) -> Password {
        Password::new(text.to_owned())
    }

    fn spare(h: &PasswordHasher) -> Vec<usize> {
        h.memory
            .spare
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect()
    }

    #[tokio::test]
    async fn a_hash_is_a_phc_string_that_verifies_only_its_password() {
        let h = hasher(64, 2);
        let hash = h.hash(&password("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(h.verify(&password("correct horse"), &hash).await.unwrap());
        assert!(!h.verify(&password("correct horse "), &hash).await.unwrap());
        assert!(!h.verify(&password(""), &hash).await.unwrap());
        let other = h.hash(&password("correct horse")).await.unwrap();
        assert_ne!(hash, other, "each hash has its own salt");
    }

    #[tokio::test]
    async fn hashes_interoperate_with_the_argon2_crate() {
        let h = hasher(64, 2);
        let ours = h.hash(&password("s3cret")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"s3cret", &parsed)
            .is_ok());
        // Another algorithm, version and cost than configured: read from the string.
        let salt = SaltString::generate(&mut OsRng);
        let params = Params::new(32, 3, 2, Some(24)).unwrap();
        for (algorithm, version) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2d, Version::V0x10),
            (Algorithm::Argon2id, Version::V0x13),
        ] {
            let theirs = Argon2::new(algorithm, version, params.clone())
                .hash_password(b"s3cret", &salt)
                .unwrap()
                .to_string();
            assert!(
                h.verify(&password("s3cret"), &theirs).await.unwrap(),
                "{theirs}"
            );
            assert!(
                !h.verify(&password("s3cre"), &theirs).await.unwrap(),
                "{theirs}"
            );
        }
    }

    #[tokio::test]
    async fn what_is_not_an_argon2_hash_verifies_nothing() {
        let h = hasher(64, 1);
        for hash in [
            "",
            "plain",
            "$argon2id$v=19$m=64,t=1,p=1$",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=99$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(!h.verify(&password("x"), hash).await.unwrap(), "{hash}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn working_memory_is_kept_one_buffer_per_concurrent_hash() {
        let h = hasher(64, 2);
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(&password(&format!("p{i}"))).await.unwrap() })
            })
            .collect();
        let mut hashes = Vec::new();
        for task in tasks {
            hashes.push(task.await.unwrap());
        }
        let kept = spare(&h);
        assert!(!kept.is_empty() && kept.len() <= 2, "{kept:?}");
        assert!(kept.iter().all(|&blocks| blocks == 64), "{kept:?}");
        // A stored hash with more memory than configured is checked, its buffer not kept.
        let big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(256, 1, 1, None).unwrap(),
        )
        .hash_password(b"big", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(h.verify(&password("big"), &big).await.unwrap());
        assert!(
            spare(&h).iter().all(|&blocks| blocks == 64),
            "{:?}",
            spare(&h)
        );
        for (i, hash) in hashes.iter().enumerate() {
            assert!(h.verify(&password(&format!("p{i}")), hash).await.unwrap());
        }
    }
}
