//! Choosing a backend with one URL-like string, as a command-line flag would.
//!
//! | URL | backend |
//! | --- | --- |
//! | `memory://` | [`MemoryStorage`], optional `?history=N` |
//! | `sqlite:///var/lib/vc/state.db` | [`SqliteStorage`] at an absolute path |
//! | `sqlite://data/state.db` | [`SqliteStorage`] relative to the working directory |
//! | `etcd://127.0.0.1:2379?prefix=/vc1` | `EtcdStorage` (cargo feature `etcd`); several endpoints comma-separated |
//! | `etcd://10.0.0.1:2379?ca=/etc/etcd/ca.pem&cert=/etc/etcd/client.pem&key=/etc/etcd/client-key.pem` | etcd over TLS with a client certificate |
//!
//! Options: `history=N` (memory, sqlite), `sync=full|normal` (sqlite),
//! `prefix=/p` (etcd), `ca=PATH` (etcd over TLS, trusting that CA) with
//! `cert=PATH&key=PATH` (a client certificate, both or neither). Paths and values may be percent-encoded (`%3F` for a
//! `?` in a file name). Parsing is strict: an unknown scheme or option, a
//! missing path or a malformed value is a typed [`ConfigError`] rather than
//! a silently different store.
//!
//! Every scheme parses in every build. The etcd client is behind the cargo
//! feature `etcd` (its gRPC code is generated at build time and needs
//! `protoc`); without it, [`StorageConfig::open`] answers an `etcd://` URL
//! with [`OpenError::NotCompiledIn`], naming the feature.
//!
//! ```
//! use vcluster_apiserver::storage::StorageConfig;
//! let config: StorageConfig = "etcd://10.0.0.1:2379,10.0.0.2?prefix=/vc1".parse().unwrap();
//! assert_eq!(
//!     config,
//!     StorageConfig::Etcd {
//!         endpoints: vec!["http://10.0.0.1:2379".into(), "http://10.0.0.2:2379".into()],
//!         prefix: "/vc1".into(),
//!         tls: None,
//!     }
//! );
//! ```
//!
//! [`MemoryStorage`]: super::MemoryStorage
//! [`SqliteStorage`]: super::SqliteStorage

mod display;
mod open;
mod parse;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use super::memory::DEFAULT_HISTORY as MEMORY_HISTORY;
use super::sqlite::SqliteOptions;
pub use open::OpenError;
pub use parse::ConfigError;

/// TLS towards etcd, as production clusters run it: the CA that signed
/// etcd's serving certificate and, for etcd's `--client-cert-auth`, a
/// client certificate. Files in PEM, read when connecting.
///
/// Part of the configuration, so it exists whether or not the `etcd`
/// feature (the client itself) is compiled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA certificate(s) etcd's certificate must chain to.
    pub ca: PathBuf,
    /// A client certificate and its private key.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// etcd's client port, used when an endpoint names none.
pub const DEFAULT_ETCD_PORT: u16 = 2379;

/// A parsed storage URL: which backend, and how to open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageConfig {
    /// In memory; gone when the process ends.
    Memory {
        /// Writes remembered for watches and old-revision reads.
        history: usize,
    },
    /// One SQLite file.
    Sqlite {
        /// The database file (absolute or relative to the working directory).
        path: PathBuf,
        /// History window and sync mode.
        options: SqliteOptions,
    },
    /// An etcd cluster.
    Etcd {
        /// Client URLs, `http://host:port`.
        endpoints: Vec<String>,
        /// Key prefix of this virtual cluster (may be empty).
        prefix: String,
        /// TLS towards etcd (`ca`, `cert`, `key` options); endpoints are
        /// then `https://`.
        tls: Option<EtcdTls>,
    },
}

impl Default for StorageConfig {
    /// The embedded default: in memory.
    fn default() -> Self {
        StorageConfig::Memory {
            history: MEMORY_HISTORY,
        }
    }
}
