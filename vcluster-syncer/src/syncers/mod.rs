//! The built-in syncers.
//!
//! | syncer | direction | what flows |
//! | --- | --- | --- |
//! | [`DataSyncer<ConfigMap>`](data::DataSyncer) | to host | data (only configmaps pods use, unless `all`) |
//! | [`DataSyncer<Secret>`](data::DataSyncer) | to host | data (only secrets pods use, unless `all`) |
//! | [`PodSyncer`](pods::PodSyncer) | to host, status back | translated spec; status and node back |

use kube::Resource;
use serde::Serialize;
use vcluster_core::VirtualKey;

use crate::error::SyncError;

pub mod data;
pub mod pods;

/// The virtual key of an object (cluster-scoped if it has no namespace).
pub(crate) fn key_of<K: Resource>(object: &K) -> VirtualKey {
    VirtualKey::of(object)
        .unwrap_or_else(|| VirtualKey::cluster(object.meta().name.clone().unwrap_or_default()))
}

/// An object as JSON, for field-level comparisons.
pub(crate) fn encode<K: Resource + Serialize>(
    kind: &'static str,
    object: &K,
) -> Result<serde_json::Value, SyncError> {
    serde_json::to_value(object).map_err(|e| SyncError::Invalid {
        kind,
        key: key_of(object),
        message: format!("cannot be encoded as JSON: {e}"),
    })
}
