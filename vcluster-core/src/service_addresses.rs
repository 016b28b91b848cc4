//! Where a new virtual Service's addresses come from.
//!
//! A virtual cluster's services really run on the host, whose API server
//! allocates their cluster IPs and node ports. Left to itself, the virtual
//! API server would allocate addresses of its own, and the syncer would
//! later re-create the virtual service with the host's (cluster IPs are
//! immutable): a new uid, a window in which the service does not exist, and
//! a create response whose address never worked. A
//! [`ServiceAddressProvider`] lets the virtual API server ask first: the
//! syncer's provider creates the host service before the virtual one is
//! stored, so the virtual service is created once, with its final addresses.
//!
//! The trait lives here because both sides need it and neither depends on
//! the other: the API server calls it, the syncer implements it.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Service;

/// Addresses reserved for a new service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAddresses {
    /// `spec.clusterIPs` (the first is `spec.clusterIP`).
    pub cluster_ips: Vec<String>,
    /// Node ports, by the service port (`port`, `protocol`) they belong to.
    pub node_ports: Vec<ReservedNodePort>,
    /// `spec.healthCheckNodePort`, for a load balancer with a local
    /// traffic policy.
    pub health_check_node_port: Option<i32>,
}

/// One node port of a reserved service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedNodePort {
    /// The service port.
    pub port: i32,
    /// Its protocol (`TCP` when the service leaves it out).
    pub protocol: String,
    /// The node port reserved for it.
    pub node_port: i32,
}

/// Why addresses could not be reserved; the API server then allocates its
/// own (and says so in an event on the service).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReserveError(pub String);

/// A source of addresses for new services, asked by the API server before a
/// Service is stored.
#[async_trait]
pub trait ServiceAddressProvider: Send + Sync {
    /// Reserves addresses for `service`, which is about to be stored (its
    /// name, namespace and uid are final). `Ok(None)`: this provider has no
    /// addresses for it (the server allocates its own, quietly).
    async fn reserve(&self, service: &Service) -> Result<Option<ServiceAddresses>, ReserveError>;

    /// The service reserved for was not stored after all (a name conflict,
    /// a storage error): give back what [`reserve`](Self::reserve) took.
    async fn release(&self, service: &Service);
}
