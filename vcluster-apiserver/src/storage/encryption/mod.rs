//! Encryption at rest: a [`Storage`] wrapper that encrypts the values of
//! chosen resources (secrets, typically) before they reach the backend,
//! configured with kube-apiserver's `EncryptionConfiguration` file.
//!
//! Why a wrapper: every backend (memory, SQLite, etcd) gets it for free,
//! and nothing above the storage trait changes. Values are written in
//! upstream's format (`k8s:enc:<provider>:v1:<key name>:<ciphertext>`,
//! see [`providers`]), so a database or etcd written by kube-apiserver
//! with the same file reads here and the other way round (keys differ:
//! upstream stores secrets at `/registry/secrets/...`, this server at
//! `/registry/core/secrets/...`, and AES-GCM authenticates the key).
//!
//! Writes use the first provider of the resource's list; reads try every
//! provider. A value that no configured provider and key can read is an
//! error naming the key and what was expected, never the raw bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::{
    Deleted, KeyValue, ListRequest, ListResponse, Revision, Storage, StorageError, WatchStream,
};

pub mod config;
pub mod providers;
#[cfg(test)]
mod tests;

pub use config::{EncryptionConfig, EncryptionConfigError, GroupResource};
pub use providers::{Provider, TransformError, ENCRYPTED_PREFIX};

/// A [`Storage`] whose values of configured resources are encrypted in
/// the store below it; other keys pass through unchanged.
pub struct EncryptedStorage {
    inner: Arc<dyn Storage>,
    config: EncryptionConfig,
    /// Keys (and the revision) last read with a key that no longer
    /// writes: an update must rewrite them ([`Storage::needs_rewrite`]).
    stale: Arc<Mutex<HashMap<String, Revision>>>,
}

impl EncryptedStorage {
    /// Wraps `inner`; values are encrypted and decrypted per `config`.
    pub fn new(inner: Arc<dyn Storage>, config: EncryptionConfig) -> Self {
        Self {
            inner,
            config,
            stale: Arc::default(),
        }
    }

    fn encrypt(&self, key: &str, value: &Bytes) -> Result<Bytes, StorageError> {
        match providers_of(&self.config, key).and_then(|p| p.first()) {
            Some(first) => first
                .encrypt(key, value)
                .map(Bytes::from)
                .map_err(|e| failure("encrypt", e)),
            None => Ok(value.clone()),
        }
    }

    /// Decrypts a key's current value and remembers whether it is stale.
    fn decrypt_kv(&self, mut kv: KeyValue) -> Result<KeyValue, StorageError> {
        if providers_of(&self.config, &kv.key).is_none() {
            // A resource stored as it is: nothing to decrypt or remember,
            // and no lock on the read path of every other kind.
            return Ok(kv);
        }
        let (value, stale) = decrypt_with(&self.config, &kv.key, kv.value)?;
        kv.value = value;
        let mut known = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        if stale {
            known.insert(kv.key.clone(), kv.mod_revision);
        } else {
            known.remove(&kv.key);
        }
        Ok(kv)
    }

    fn forget(&self, key: &str) {
        if providers_of(&self.config, key).is_none() {
            return;
        }
        self.stale
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// The providers of the resource a key belongs to
/// (`/registry/<group>/<resource>/...`, group `core` for the core group).
fn providers_of<'a>(config: &'a EncryptionConfig, key: &str) -> Option<&'a Arc<Vec<Provider>>> {
    let rest = key.strip_prefix("/registry/")?;
    let mut parts = rest.splitn(3, '/');
    let group = parts.next()?;
    let resource = parts.next()?;
    // Only keys of objects, not the bare prefix of a resource.
    parts.next()?;
    let group = if group == "core" { "" } else { group };
    config.providers_for(group, resource)
}

/// The plain value, and whether it was written by a key that no longer
/// writes.
fn decrypt_with(
    config: &EncryptionConfig,
    key: &str,
    value: Bytes,
) -> Result<(Bytes, bool), StorageError> {
    match providers_of(config, key) {
        Some(list) => providers::decrypt(list, key, &value)
            .map(|(plain, stale)| (Bytes::from(plain), stale))
            .map_err(|e| failure("decrypt", e)),
        None => Ok((value, false)),
    }
}

fn failure(operation: &'static str, err: TransformError) -> StorageError {
    StorageError::Backend {
        backend: "encryption",
        operation,
        message: err.to_string(),
    }
}

#[async_trait]
impl Storage for EncryptedStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        self.inner
            .get(key)
            .await?
            .map(|kv| self.decrypt_kv(kv))
            .transpose()
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse, StorageError> {
        let mut response = self.inner.list(request).await?;
        response.items = response
            .items
            .into_iter()
            .map(|kv| self.decrypt_kv(kv))
            .collect::<Result<_, _>>()?;
        Ok(response)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        let stored = self.encrypt(key, &value)?;
        let mut kv = self.inner.create(key, stored).await?;
        self.forget(key);
        kv.value = value;
        Ok(kv)
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StorageError> {
        let stored = self.encrypt(key, &value)?;
        let mut kv = self.inner.update(key, stored, expected).await?;
        self.forget(key);
        kv.value = value;
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        let mut deleted = self.inner.delete(key, expected).await?;
        self.forget(key);
        let (value, _) = decrypt_with(&self.config, key, deleted.previous.value)?;
        deleted.previous.value = value;
        Ok(deleted)
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.inner.current_revision().await
    }

    /// Events carry decrypted values. An event this configuration cannot
    /// decrypt (written with a key it lacks) is logged and skipped, not
    /// an error: the API server follows every resource with one watch, and
    /// one unreadable secret must not stop the watches of all the others.
    /// Its key stays unreadable (reads fail with the reason).
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        let stream = self.inner.watch(prefix, after).await?;
        let config = self.config.clone();
        Ok(Box::pin(stream.filter_map(move |event| {
            let decrypted = event.and_then(|mut event| {
                event.value = decrypt_with(&config, &event.key, event.value)?.0;
                event.prev_value = event
                    .prev_value
                    .map(|prev| decrypt_with(&config, &event.key, prev).map(|(plain, _)| plain))
                    .transpose()?;
                Ok(event)
            });
            futures::future::ready(match decrypted {
                Err(StorageError::Backend {
                    backend: "encryption",
                    message,
                    ..
                }) => {
                    tracing::error!(%message, "watch event skipped: it cannot be decrypted");
                    None
                }
                other => Some(other),
            })
        })))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.inner.compact(revision).await
    }

    fn needs_rewrite(&self, key: &str, revision: Revision) -> bool {
        self.stale
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .is_some_and(|stale| *stale == revision)
    }
}
