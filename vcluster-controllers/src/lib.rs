//! The virtual cluster's controllers: what kube-controller-manager does
//! for a real cluster, for the virtual one, so a tenant's Deployment
//! really becomes ReplicaSets and Pods (which the syncer then runs on the
//! host), a Service gets endpoints, a Job runs to completion.
//!
//! The crate talks only to the virtual cluster's API, through a
//! `kube::Client` (in-process or over HTTPS), and knows nothing of the
//! host: it behaves as kube-controller-manager does against any
//! Kubernetes API server.
//!
//! | module | controller | turns | into |
//! | --- | --- | --- | --- |
//! | `deployment` | deployment | Deployments | ReplicaSets (RollingUpdate, Recreate, revisions, status) |
//! | `replicaset` | replicaset, replicationcontroller | ReplicaSets, ReplicationControllers | Pods (and ready/available counts) |
//! | `statefulset` | statefulset | StatefulSets | ordered Pods `<set>-<n>`, their claims, ControllerRevisions |
//! | `daemonset` | daemonset | DaemonSets | one Pod per eligible Node, ControllerRevisions |
//! | `job` | job, ttl-after-finished | Jobs | Pods until enough succeed |
//! | `cronjob` | cronjob | CronJobs | a Job per start time |
//! | `disruption` | disruption | PodDisruptionBudgets | their status: healthy, desired and expected pods, disruptions allowed (what `pods/eviction` spends) |
//! | `hpa` | horizontalpodautoscaling | HorizontalPodAutoscalers | their target's `scale` from pods' usage (a pluggable [`hpa::MetricsSource`]), their status |
//! | `endpoints` | endpoints, endpointslice | Services | Endpoints and EndpointSlices of their pods |
//! | `serviceaccounts` | serviceaccount, root-ca-cert-publisher | Namespaces | `default` ServiceAccount, `kube-root-ca.crt` |
//! | `csrsigning` | csrsigning (`kube-apiserver-client`) | approved CertificateSigningRequests | client certificates signed by the cluster CA |
//! | `resourcequota` | resourcequota | ResourceQuotas | their `status.hard` and `status.used`, recounted from the namespace |
//!
//! Each reconciler is a `kube::runtime::Controller` (the object's kind,
//! plus the kinds it owns or watches); [`ControllerManager`] starts the
//! ones [`EnabledControllers`] lists against one client and stops them
//! with one `CancellationToken`. Everything a controller creates carries
//! a controller owner reference, so the API server's garbage collector
//! removes it with its owner (this crate has no collector of its own).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
//! use kube::api::{Api, ListParams, PostParams};
//! use tokio_util::sync::CancellationToken;
//! use vcluster_apiserver::{storage::MemoryStorage, ApiServer, ApiServerConfig};
//! use vcluster_controllers::{ControllerManager, ControllerOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A virtual API server, and the controllers against its in-process client.
//! let server = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new()))).await?;
//! let cancel = CancellationToken::new();
//! let manager = ControllerManager::new(server.client(), ControllerOptions::default());
//! let running = manager.spawn(cancel.clone());
//!
//! // A Deployment turns into a ReplicaSet (and that into pods).
//! let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
//! let web = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "web"},
//!     "spec": {
//!         "replicas": 2,
//!         "selector": {"matchLabels": {"app": "web"}},
//!         "template": {
//!             "metadata": {"labels": {"app": "web"}},
//!             "spec": {"containers": [{"name": "web", "image": "nginx"}]},
//!         },
//!     },
//! }))?;
//! deployments.create(&PostParams::default(), &web).await?;
//!
//! let replica_sets: Api<ReplicaSet> = Api::namespaced(server.client(), "default");
//! let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
//! while replica_sets.list(&ListParams::default()).await?.items.is_empty() {
//!     assert!(tokio::time::Instant::now() < deadline, "no ReplicaSet");
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//! }
//!
//! cancel.cancel();
//! running.await?;
//! server.shutdown();
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod cronjob;
pub mod csrsigning;
pub mod daemonset;
pub mod deployment;
mod disruption;
mod endpoints;
mod error;
pub mod hash;
mod history;
pub mod hpa;
mod job;
pub mod leader;
mod manager;
mod meta;
mod options;
pub mod pods;
mod replicaset;
mod resourcequota;
mod runtime;
mod scale;
mod serviceaccounts;
mod statefulset;

pub use error::{Error, Result};
pub use hpa::{AnnotatedUsage, FixedUsage, MetricsSource};
pub use manager::ControllerManager;
pub use options::{Clock, ControllerOptions, EnabledControllers};
