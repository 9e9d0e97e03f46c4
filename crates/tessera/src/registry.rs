//! Registries compiled once and kept while the database's services and clients do not change.
//!
//! Building a [`ServiceRegistry`](tessera_protocol::service::ServiceRegistry) compiles every
//! service pattern into a regex; doing that on every request cost more than the rest of a ticket
//! validation. The store keeps a version number that database triggers bump on every change to
//! the services or clients (from this node, another node or the CLI), so a request pays one small
//! read and the compiled registry is rebuilt only when that number moves. The hottest requests (a
//! session entering a service, a ticket validation, a code issued to a session or redeemed by a
//! client) skip even that read: they decide with the registry as last built ([`Versioned::kept`])
//! and hand its version to the store write that follows, which refuses if the number has moved
//! since; they then decide again with the current registry.

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};

use tessera_store::{Store, StoreResult};

/// A value built from the registry tables, tagged with the version it was built at.
pub struct Versioned<T> {
    slot: RwLock<Option<(i64, Arc<T>)>>,
}

impl<T> Default for Versioned<T> {
    fn default() -> Self {
        Self {
            slot: RwLock::new(None),
        }
    }
}

impl<T> std::fmt::Debug for Versioned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = self
            .slot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(v, _)| *v);
        f.debug_struct("Versioned")
            .field("version", &version)
            .finish()
    }
}

impl<T> Versioned<T> {
    /// The kept value if the store's version has not moved since it was built, else `build()`'s
    /// (kept for the next caller), with the version it stands for. The version is read before
    /// `build` reads the tables, so a change landing in between makes the next call build again
    /// rather than keep a stale value.
    pub async fn get<F, Fut>(&self, store: &dyn Store, build: F) -> StoreResult<(i64, Arc<T>)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let version = store.registry_version().await?;
        if let Some((kept, value)) = self.kept() {
            if kept == version {
                return Ok((version, value));
            }
        }
        let value = Arc::new(build().await?);
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        // Of two builds racing, the one that saw the newer version stays.
        if slot.as_ref().is_none_or(|(kept, _)| *kept <= version) {
            *slot = Some((version, value.clone()));
        }
        Ok((version, value))
    }

    /// The value last built and its version, without asking the store: possibly stale, so only
    /// for a decision that the store checks against that version when it writes it.
    pub fn kept(&self) -> Option<(i64, Arc<T>)> {
        self.slot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
