//! The OpenID Connect provider: its identity (issuer, endpoints, subject salt), its signing keys,
//! and the glue between the pure rules of `tessera_protocol::oidc`, the store and the handlers.

pub mod keys;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_protocol::oidc::discovery::Endpoints;
use tessera_protocol::oidc::{ClientRegistry, OidcClient, SigningAlg};
use tessera_protocol::ticket::random_base62;
use tessera_protocol::Timestamp;
use tessera_store::{SigningKeyRecord, Store, StoreError, StoreResult};
use tokio::sync::{OnceCell, RwLock};

use crate::registry::Versioned;

use keys::{KeyEntry, KeyError, KeySet, SigningKey};

/// How long a node trusts its copy of the key table before reading it again, so a rotation made on
/// another node (or by `tessera keys rotate`) is seen everywhere within this time.
const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// The provider's identity and keys. One per server; shared by every handler.
pub struct Provider {
    /// Issuer and endpoint URLs.
    pub endpoints: Endpoints,
    /// The local path of the issuer (`/oidc`), under which the endpoints are routed.
    pub path: String,
    file_clients: Vec<OidcClient>,
    salt: OnceCell<String>,
    keys: RwLock<Option<(Arc<KeySet>, Instant)>>,
    clients_cache: Versioned<ClientRegistry>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.endpoints.issuer)
            .finish_non_exhaustive()
    }
}

/// Why the provider could not sign or load keys.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be made, loaded or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No key signs for this algorithm (none generated yet, or all retired).
    #[error("no active {0} signing key; run `tessera keys rotate`")]
    NoKey(SigningAlg),
}

impl Provider {
    /// A provider whose issuer is `public_url` (no trailing slash) + `path`.
    pub fn new(public_url: &str, path: &str, file_clients: Vec<OidcClient>) -> Self {
        let issuer = format!("{}{path}", public_url.trim_end_matches('/'));
        Self {
            endpoints: Endpoints::under(&issuer),
            path: path.to_owned(),
            file_clients,
            salt: OnceCell::new(),
            keys: RwLock::new(None),
            clients_cache: Versioned::default(),
        }
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.endpoints.issuer
    }

    /// The registry: config-file clients, then database clients.
    /// Built once per change of the database's clients (see [`crate::registry`]).
    pub async fn clients(&self, store: &dyn Store) -> StoreResult<Arc<ClientRegistry>> {
        Ok(self.current_clients(store).await?.1)
    }

    /// [`Provider::clients`] with the registry version it stands for.
    pub async fn current_clients(
        &self,
        store: &dyn Store,
    ) -> StoreResult<(i64, Arc<ClientRegistry>)> {
        self.clients_cache
            .get(store, || async {
                Ok(ClientRegistry::new(
                    self.file_clients.clone(),
                    store.list_clients().await?,
                ))
            })
            .await
    }

    /// The clients as last compiled and their version, without asking the store (`None` before
    /// any were compiled). Only for a decision that ends in a store write given that version as
    /// `decided_at`, which refuses it if the clients have changed since (see
    /// [`crate::registry`]).
    pub fn kept_clients(&self) -> Option<(i64, Arc<ClientRegistry>)> {
        self.clients_cache.kept()
    }

    /// Clients declared in the config file.
    pub fn file_clients(&self) -> &[OidcClient] {
        &self.file_clients
    }

    /// The deployment's subject salt, created once and shared by every node through the store.
    pub async fn salt(&self, store: &dyn Store) -> StoreResult<&str> {
        self.salt
            .get_or_try_init(|| async {
                let fresh = random_base62(&mut rand::rngs::OsRng, 43);
                store.get_or_put_setting("oidc.subject_salt", &fresh).await
            })
            .await
            .map(String::as_str)
    }

    /// The subject of `username`.
    pub async fn subject(&self, store: &dyn Store, username: &str) -> StoreResult<String> {
        Ok(tessera_protocol::oidc::claims::subject(
            self.salt(store).await?,
            username,
        ))
    }

    /// The current key set, read again from the store when the cached copy is older than the cache
    /// time or `refresh` is set.
    pub async fn keys(
        &self,
        store: &dyn Store,
        refresh: bool,
    ) -> Result<Arc<KeySet>, ProviderError> {
        if !refresh {
            if let Some((set, at)) = self.keys.read().await.as_ref() {
                if at.elapsed() < KEY_CACHE_TTL {
                    return Ok(set.clone());
                }
            }
        }
        let entries: Vec<KeyEntry> = store
            .list_signing_keys()
            .await?
            .into_iter()
            .map(|k| KeyEntry {
                kid: k.kid,
                alg: k.alg,
                private_pem: k.private_pem,
                active_from: k.active_from,
                retired_at: k.retired_at,
            })
            .collect();
        let set = Arc::new(KeySet::load(&entries)?);
        *self.keys.write().await = Some((set.clone(), Instant::now()));
        Ok(set)
    }

    /// Signs `claims` as a JWT of type `typ` with the active key for `alg`.
    pub async fn sign<T: serde::Serialize + Sync>(
        &self,
        store: &dyn Store,
        alg: SigningAlg,
        typ: &str,
        claims: &T,
        now: Timestamp,
    ) -> Result<String, ProviderError> {
        let mut set = self.keys(store, false).await?;
        if set.signer(alg, now).is_none() {
            set = self.keys(store, true).await?;
        }
        let key: &SigningKey = set.signer(alg, now).ok_or(ProviderError::NoKey(alg))?;
        Ok(key.sign(typ, claims)?)
    }

    /// Verifies a JWT that this deployment signed (any key it still holds, retired included), and
    /// checks its issuer. Expiry is not checked (RP-Initiated Logout accepts expired hints).
    pub async fn verify_own(
        &self,
        store: &dyn Store,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ProviderError> {
        let set = self.keys(store, false).await?;
        let claims = match set.verify(token) {
            Ok(claims) => claims,
            // A key made on another node since the cache was filled.
            Err(_) => self.keys(store, true).await?.verify(token)?,
        };
        if claims.get("iss").and_then(|v| v.as_str()) != Some(self.issuer()) {
            return Err(KeyError::BadToken("issued by another issuer".into()).into());
        }
        Ok(claims)
    }
}

/// Makes sure every algorithm has a key that signs now: the first start of a deployment generates
/// them (several nodes starting at once may each add one; all are published and the newest signs).
pub async fn ensure_keys(store: &dyn Store, now: Timestamp) -> Result<(), ProviderError> {
    let existing = store.list_signing_keys().await?;
    for alg in SigningAlg::ALL {
        // A published key waiting for its time also counts: the key set signs with it when no key
        // is active yet, rather than discarding it.
        let usable = existing
            .iter()
            .any(|k| k.alg == alg && k.retired_at.is_none_or(|r| r > now));
        if !usable {
            add_key(store, alg, now, now).await?;
            tracing::info!(alg = %alg, "generated a signing key");
        }
    }
    Ok(())
}

/// Generates a key for `alg` that signs from `active_from`; every other key of that algorithm
/// (including one waiting to sign) is retired then. Returns its key id.
pub async fn add_key(
    store: &dyn Store,
    alg: SigningAlg,
    now: Timestamp,
    active_from: Timestamp,
) -> Result<String, ProviderError> {
    let generated = tokio::task::spawn_blocking(move || keys::generate(alg))
        .await
        .map_err(|e| KeyError::Generate {
            alg,
            reason: e.to_string(),
        })??;
    store
        .put_signing_key(&SigningKeyRecord {
            kid: generated.kid.clone(),
            alg,
            private_pem: generated.private_pem,
            created_at: now,
            active_from,
            retired_at: None,
        })
        .await?;
    Ok(generated.kid)
}
