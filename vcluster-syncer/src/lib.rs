//! The bidirectional sync engine of vcluster-rs and its built-in syncers.
//!
//! A virtual cluster's objects live in its own API server; the workloads run
//! on a host cluster. [`VirtualClusterSyncer`] keeps the two in step: pods,
//! services, configmaps... go to the host (translated so tenants cannot see
//! or touch each other), status, events, nodes and storage classes come
//! back. Each kind is a [`Syncer`] (the per-kind decisions) run by a
//! [`SyncEngine`] (watches, queue, retries, and every write).
//!
//! ```no_run
//! use vcluster_syncer::{SyncConfig, VirtualClusterSyncer};
//!
//! # async fn run(virtual_client: kube::Client, host_client: kube::Client)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! // Virtual cluster `team-a`, synced into host namespace `vc-team-a`.
//! let config = SyncConfig::new("team-a", "vc-team-a");
//! let syncer = VirtualClusterSyncer::new(config, virtual_client, host_client)?;
//! let stop = syncer.cancel_token();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     stop.cancel();
//! });
//! syncer.run().await;
//! # Ok(())
//! # }
//! ```
//!
//! A kind of your own (a CRD, say) is a [`Syncer`] added with
//! [`VirtualClusterSyncer::add`]; its decisions are [`VirtualOnly`],
//! [`HostOnly`] and [`Action`]s, which the engine carries out.
//!
//! Modules: [`runner`] builds and runs the syncers of a virtual cluster,
//! [`engine`] is the generic engine, [`syncers`] the built-in kinds,
//! [`policy`] the host isolation policy pods must pass, [`permissions`]
//! the host RBAC the syncer needs, [`queue`] the work
//! queue, [`error`] the errors.
#![warn(missing_docs)]

pub mod engine;
pub mod error;
mod labels_annotations;
mod memory;
mod patch;
pub mod permissions;
pub mod policy;
pub mod queue;
pub mod runner;
mod scope;
pub mod streams;
mod syncer;
pub mod syncers;

pub use engine::{
    prometheus_text, EngineConfig, EngineHandle, Listed, MetricsSnapshot, SyncEngine,
};
pub use error::{Side, SyncError};
pub use memory::{InStep, Memory, Written};
pub use policy::{AllowList, PodPolicy, PodSecurityLevel};
pub use queue::{Backoff, WorkQueue};
pub use runner::{ConfigError, EnabledSyncers, Selection, SyncConfig, VirtualClusterSyncer};
pub use scope::ApiScope;
pub use syncer::{
    Action, Blocked, Direction, HostOnly, HostWatch, SyncContext, Syncer, VirtualOnly,
    DEFAULT_WATCH_TIMEOUT, FROM_HOST_LABEL,
};
