//! A minimal, storage-agnostic Kubernetes-compatible API server: the
//! virtual control plane of a virtual cluster.
//!
//! Real clients (kubectl, kube-rs, client-go, the Python client) use it
//! unchanged: discovery (also aggregated), CRUD, watch, tables for
//! `kubectl get`, label and field selectors, pagination, and errors as
//! `metav1.Status`. Objects live in a pluggable [`storage::Storage`]
//! (memory, SQLite, etcd); one storage watch feeds every client watch.
//!
//! ```
//! use std::sync::Arc;
//! use vcluster_apiserver::{ApiServer, ApiServerConfig, storage::MemoryStorage};
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new()))).await?;
//! // Serve kubectl on a loopback port...
//! let addr = server.spawn("127.0.0.1:0".parse()?, None).await?;
//! println!("kubectl --server http://{addr} get namespaces");
//! // ...or talk to it in-process with kube-rs.
//! let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("settings".into());
//! let created = config_maps.create(&PostParams::default(), &cm).await?;
//! assert!(created.metadata.uid.is_some());
//! server.shutdown();
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod allocator;
pub mod audit;
pub mod auth;
pub mod error;
pub mod field_selector;
pub mod health;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod object;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod resources;
pub mod server;
pub mod state_files;
pub mod storage;
pub mod watch_cache;

pub use auth::{AuthConfig, AuthMode, UserInfo};
pub use error::ApiError;
pub use resources::{BuiltinKind, Catalog, ResourceInfo, Strategy};
pub use server::{ApiServer, ApiServerConfig, ServerError, TlsConfig};
pub use storage::Storage;
