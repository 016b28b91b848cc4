//! vcluster-rs: virtual Kubernetes clusters as a Rust library.
//!
//! This facade re-exports the library crates, so one dependency gives all
//! of them, and holds the [`demo`] that `cargo run --example demo` starts.
//!
//! - [`core`] (`vcluster-core`): identity and translation rules.
//! - [`apiserver`] (`vcluster-apiserver`): the virtual control plane.
//! - [`syncer`] (`vcluster-syncer`): the sync engine and built-in syncers.
//! - [`controllers`] (`vcluster-controllers`): the virtual cluster's
//!   workload controllers (deployments, jobs, endpoints, ...).
//! - [`config`]: `vcluster.yaml`, vCluster's config file, typed.
#![warn(missing_docs)]

pub use vcluster_apiserver as apiserver;
pub use vcluster_controllers as controllers;
pub use vcluster_core as core;
pub use vcluster_streams as streams;
pub use vcluster_syncer as syncer;

pub mod config;
pub mod demo;
pub mod logs;
pub mod metrics;
