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

use std::sync::Arc;

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
}

impl EncryptedStorage {
    /// Wraps `inner`; values are encrypted and decrypted per `config`.
    pub fn new(inner: Arc<dyn Storage>, config: EncryptionConfig) -> Self {
        Self { inner, config }
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

    fn decrypt(&self, key: &str, value: Bytes) -> Result<Bytes, StorageError> {
        decrypt_with(&self.config, key, value)
    }

    fn decrypt_kv(&self, mut kv: KeyValue) -> Result<KeyValue, StorageError> {
        kv.value = self.decrypt(&kv.key, kv.value)?;
        Ok(kv)
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

fn decrypt_with(config: &EncryptionConfig, key: &str, value: Bytes) -> Result<Bytes, StorageError> {
    match providers_of(config, key) {
        Some(list) => providers::decrypt(list, key, &value)
            .map(Bytes::from)
            .map_err(|e| failure("decrypt", e)),
        None => Ok(value),
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
        kv.value = value;
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        let mut deleted = self.inner.delete(key, expected).await?;
        deleted.previous = self.decrypt_kv(deleted.previous)?;
        Ok(deleted)
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        self.inner.current_revision().await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        let stream = self.inner.watch(prefix, after).await?;
        let config = self.config.clone();
        Ok(Box::pin(stream.map(move |event| {
            let mut event = event?;
            event.value = decrypt_with(&config, &event.key, event.value)?;
            event.prev_value = event
                .prev_value
                .map(|prev| decrypt_with(&config, &event.key, prev))
                .transpose()?;
            Ok(event)
        })))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.inner.compact(revision).await
    }
}
