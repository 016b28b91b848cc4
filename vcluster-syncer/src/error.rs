//! Why a reconcile failed, with the key and the operation in every error.

use vcluster_core::VirtualKey;

/// Which cluster an operation went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The tenant's virtual cluster.
    Virtual,
    /// The host cluster.
    Host,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Virtual => "virtual",
            Side::Host => "host",
        })
    }
}

/// A failed sync step.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A call to one of the clusters failed.
    #[error("{kind} {key}: {operation} on the {side} cluster failed: {source}")]
    Api {
        /// The syncer's kind.
        kind: &'static str,
        /// The virtual key being reconciled.
        key: VirtualKey,
        /// What was attempted (`create`, `patch`, ...).
        operation: &'static str,
        /// Which cluster.
        side: Side,
        /// The client error (boxed: errors travel in every `Result`).
        #[source]
        source: Box<kube::Error>,
    },
    /// The object cannot be translated (bad name, forged label key, ...).
    #[error("{kind} {key}: cannot be translated: {source}")]
    Translation {
        /// The syncer's kind.
        kind: &'static str,
        /// The virtual key.
        key: VirtualKey,
        /// Why.
        #[source]
        source: Box<vcluster_core::Error>,
    },
    /// The host object with the translated name belongs to someone else.
    #[error("{kind} {key}: the host object {host} exists but is not this object's copy; it is left alone")]
    NotOwned {
        /// The syncer's kind.
        kind: &'static str,
        /// The virtual key.
        key: VirtualKey,
        /// The host object's name.
        host: String,
    },
    /// A reconcile took longer than the engine allows, typically waiting
    /// on a connection that died without an error; it was abandoned, and
    /// is retried with backoff.
    #[error("{kind} {key}: reconcile abandoned after {after:?} (a cluster is not answering)")]
    TimedOut {
        /// The syncer's kind.
        kind: &'static str,
        /// The virtual key.
        key: VirtualKey,
        /// The limit it hit.
        after: std::time::Duration,
    },
    /// A syncer-specific failure (bad object shape and the like).
    #[error("{kind} {key}: {message}")]
    Invalid {
        /// The syncer's kind.
        kind: &'static str,
        /// The virtual key.
        key: VirtualKey,
        /// What is wrong.
        message: String,
    },
}

impl SyncError {
    /// A write lost a race (HTTP 409): retried quickly, not an error.
    pub fn is_conflict(&self) -> bool {
        matches!(self, SyncError::Api { source, .. } if has_code(source, 409))
    }

    /// The object was not found (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, SyncError::Api { source, .. } if has_code(source, 404))
    }
}

/// Whether a client error is an HTTP status `code`.
pub(crate) fn has_code(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}
