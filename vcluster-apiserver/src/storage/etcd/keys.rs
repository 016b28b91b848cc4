//! Trait keys and prefixes mapped into the store's key prefix, and back.

use bytes::Bytes;

use super::calls::revision;
use super::EtcdStorage;
use crate::storage::{KeyValue, StorageError};

impl EtcdStorage {
    /// The key prefix this store lives under (without trailing `/`).
    pub fn prefix(&self) -> &str {
        // Built from a `String`, so always UTF-8.
        std::str::from_utf8(&self.namespace).unwrap_or_default()
    }

    /// A key inside our namespace (etcd refuses empty keys) for requests
    /// that only want a response header.
    pub(super) fn probe_key(&self) -> Vec<u8> {
        let mut key = self.namespace.clone();
        key.push(b'/');
        key
    }

    /// The etcd key of a trait key.
    pub(super) fn full_key(
        &self,
        operation: &'static str,
        key: &str,
    ) -> Result<Vec<u8>, StorageError> {
        self.check_key(operation, key)?;
        let mut full = Vec::with_capacity(self.namespace.len() + key.len());
        full.extend_from_slice(&self.namespace);
        full.extend_from_slice(key.as_bytes());
        Ok(full)
    }

    /// Refuses a key that could escape the prefix.
    pub(super) fn check_key(&self, operation: &'static str, key: &str) -> Result<(), StorageError> {
        if !self.namespace.is_empty() && !key.is_empty() && !key.starts_with('/') {
            return Err(self.backend(
                operation,
                format!("key {key:?} must start with '/' in a store with a key prefix"),
            ));
        }
        Ok(())
    }

    /// The etcd range `[start, end)` of every key under a trait prefix.
    pub(super) fn range(
        &self,
        operation: &'static str,
        prefix: &str,
    ) -> Result<(Vec<u8>, Vec<u8>), StorageError> {
        self.check_key(operation, prefix)?;
        let mut start = self.namespace.clone();
        if prefix.is_empty() && !start.is_empty() {
            start.push(b'/');
        }
        start.extend_from_slice(prefix.as_bytes());
        let end = prefix_end(&start);
        if start.is_empty() {
            // The whole key space: etcd spells it ["\0", "\0").
            start.push(0);
        }
        Ok((start, end))
    }

    /// A trait key from an etcd key.
    pub(super) fn strip(
        &self,
        operation: &'static str,
        key: Vec<u8>,
    ) -> Result<String, StorageError> {
        let Some(rest) = key.strip_prefix(self.namespace.as_slice()) else {
            return Err(self.backend(
                operation,
                format!(
                    "etcd returned key {:?} outside prefix",
                    String::from_utf8_lossy(&key)
                ),
            ));
        };
        String::from_utf8(rest.to_vec())
            .map_err(|err| self.backend(operation, format!("key is not UTF-8: {err}")))
    }

    /// A trait key-value from an etcd one.
    pub(super) fn key_value(
        &self,
        operation: &'static str,
        kv: etcd_client::KeyValue,
    ) -> Result<KeyValue, StorageError> {
        let create_revision = revision(kv.create_revision());
        let mod_revision = revision(kv.mod_revision());
        let (key, value) = kv.into_key_value();
        Ok(KeyValue {
            key: self.strip(operation, key)?,
            value: Bytes::from(value),
            create_revision,
            mod_revision,
        })
    }
}

/// The first key after every key starting with `prefix`; `[0]` (etcd's "to
/// the end") when no such key exists.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/vc1/"), b"/vc10".to_vec());
        assert_eq!(prefix_end(b"a\xFF"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xFF\xFF"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }
}
