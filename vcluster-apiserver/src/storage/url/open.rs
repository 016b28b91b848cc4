//! Opening the configured backend.

use std::sync::Arc;

#[cfg(feature = "etcd")]
use crate::storage::etcd::{EtcdConnectError, EtcdOptions, EtcdStorage};
use crate::storage::memory::MemoryStorage;
use crate::storage::sqlite::{SqliteOpenError, SqliteStorage};
use crate::storage::Storage;

use super::StorageConfig;

/// Why a parsed configuration could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The SQLite file could not be opened.
    #[error(transparent)]
    Sqlite(#[from] SqliteOpenError),
    /// etcd could not be reached.
    #[cfg(feature = "etcd")]
    #[error(transparent)]
    Etcd(#[from] EtcdConnectError),
    /// The configuration names a backend this build leaves out.
    #[error(
        "the {backend} storage backend is not compiled into this build; rebuild with the \
         cargo feature `{feature}` (for example `cargo build --features {feature}`)"
    )]
    NotCompiledIn {
        /// The backend (`etcd`).
        backend: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
        /// The configuration, as a URL.
        url: String,
    },
}

impl StorageConfig {
    /// Opens the configured backend, ready to share.
    pub async fn open(&self) -> Result<Arc<dyn Storage>, OpenError> {
        Ok(match self {
            StorageConfig::Memory { history } => Arc::new(MemoryStorage::with_history(*history)),
            StorageConfig::Sqlite { path, options } => {
                Arc::new(SqliteStorage::open_with(path, *options).await?)
            }
            #[cfg(feature = "etcd")]
            StorageConfig::Etcd {
                endpoints,
                prefix,
                tls,
            } => {
                let options = EtcdOptions {
                    tls: tls.clone(),
                    ..EtcdOptions::with_prefix(prefix.as_str())
                };
                Arc::new(EtcdStorage::connect_with(endpoints, options).await?)
            }
            #[cfg(not(feature = "etcd"))]
            StorageConfig::Etcd { .. } => {
                return Err(OpenError::NotCompiledIn {
                    backend: "etcd",
                    feature: "etcd",
                    url: self.to_string(),
                })
            }
        })
    }
}
