//! The distributed backend: a real etcd v3 cluster, through `etcd-client`.
//!
//! Nothing is emulated: etcd's own revision is the [`Revision`] (so
//! `resourceVersion`s are the ones kube-apiserver would hand out on the same
//! data), compare-and-swap is an etcd transaction on `mod_revision` /
//! `create_revision`, a list is one ranged read at one revision, a watch is an
//! etcd watch from `after + 1` with previous values, and compaction is etcd's
//! compaction, whose error becomes [`StorageError::Expired`].
//!
//! # Sharing one etcd
//! A key prefix (say `/vc1`) is prepended verbatim to every key, so several
//! virtual clusters can live in one etcd; keys crossing the [`Storage`] trait
//! never carry it. With a prefix set, keys and non-empty list/watch prefixes
//! must start with `/` (every registry key does): that is what keeps `/vc1`
//! from seeing `/vc10`. Revisions and compaction are etcd-wide, so one
//! tenant's writes advance everybody's revision (the contract only promises
//! that revisions increase) and a compaction applies to every tenant.
//!
//! # Failures
//! Unary calls get a deadline ([`EtcdOptions::request_timeout`]); a call that
//! timed out may still have been applied, exactly as with etcd's own clients.
//! A watch whose stream breaks (an etcd restart, a lost connection) resumes
//! by itself from its last revision for a while
//! ([`EtcdOptions::watch_resume`]) and only then ends with an error item, so
//!
//! # Where each part lives
//! - `connect.rs`: [`EtcdOptions`], [`EtcdConnectError`] and setting up the
//!   connection (TLS, endpoints, the first probe).
//! - `calls.rs`: unary calls under a deadline and etcd's errors turned into
//!   the contract's.
//! - `keys.rs`: trait keys and prefixes mapped into the key prefix.
//! - `ops.rs`: the [`Storage`] operations.
//! - `watch.rs`: watch streams that resume by themselves after a break.
//!
//! [`Revision`]: super::Revision
//! [`Storage`]: super::Storage
//! [`StorageError`]: super::StorageError

mod calls;
mod connect;
mod keys;
mod ops;
mod watch;

use etcd_client::Client;

pub use super::url::EtcdTls;
pub use connect::{EtcdConnectError, EtcdOptions};

/// A [`Storage`](super::Storage) in an etcd v3 cluster (see the module docs).
///
/// Cheap to clone: clones share one gRPC connection pool.
#[derive(Clone)]
pub struct EtcdStorage {
    client: Client,
    /// Prepended to every key.
    namespace: Vec<u8>,
    endpoints: String,
    options: EtcdOptions,
}

impl std::fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStorage")
            .field("endpoints", &self.endpoints)
            .field("prefix", &String::from_utf8_lossy(&self.namespace))
            .finish_non_exhaustive()
    }
}
