//! The host reserves a new virtual service's addresses.
//!
//! [`HostServiceAddresses`] is the syncer's
//! [`ServiceAddressProvider`]: the virtual API server asks it before storing
//! a new Service, and it creates the service's host copy right then (the
//! same copy the service syncer would create, with the virtual uid already
//! in its markers), answering with the cluster IPs and node ports the host
//! allocated. The virtual service is thus created once, with addresses that
//! work, and is never re-created to adopt them. If the host cannot be
//! reached or refuses, the virtual API server allocates its own addresses
//! and the service syncer falls back to re-creating the virtual service
//! with the host's later ([`super::services`]).
//!
//! Between the host copy's creation and the virtual service being stored,
//! the host copy has no virtual object: the service syncer must not take it
//! for an orphan. The provider and the syncer share [`Reservations`] for
//! that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Preconditions};
use vcluster_core::service_addresses::{
    ReserveError, ReservedNodePort, ServiceAddressProvider, ServiceAddresses,
};
use vcluster_core::{SingleNamespaceTranslator, Translator, VirtualKey};

use super::services::{host_service, is_api_service};
use vcluster_core::FieldManager;

/// How long a reservation protects a host copy whose virtual service is not
/// stored yet: well past the virtual API server's wait for the provider.
pub(crate) const RESERVATION_TTL: Duration = Duration::from_secs(30);

/// Host copies created for virtual services that may not be stored yet, by
/// host name, with when, and the host uid.
#[derive(Clone, Debug, Default)]
pub struct Reservations(Arc<DashMap<String, (Instant, Option<String>)>>);

impl Reservations {
    /// Whether the host service `name` was reserved a moment ago (its
    /// virtual service may still be on its way to storage).
    pub fn is_pending(&self, name: &str) -> bool {
        self.0
            .get(name)
            .is_some_and(|entry| entry.0.elapsed() < RESERVATION_TTL)
    }

    /// The virtual service of host service `name` is stored: the
    /// reservation has served (from now on, a missing virtual service means
    /// a deleted one).
    pub fn settle(&self, name: &str) {
        self.0.remove(name);
    }

    fn add(&self, name: String, host_uid: Option<String>) {
        self.0
            .retain(|_, entry| entry.0.elapsed() < RESERVATION_TTL);
        self.0.insert(name, (Instant::now(), host_uid));
    }

    fn take(&self, name: &str) -> Option<String> {
        self.0.remove(name).and_then(|(_, (_, uid))| uid)
    }
}

/// Reserves new virtual services' addresses on the host (see the module
/// docs).
#[derive(Clone)]
pub struct HostServiceAddresses {
    host_client: kube::Client,
    translator: Arc<dyn Translator>,
    host_namespace: String,
    reservations: Reservations,
}

impl HostServiceAddresses {
    /// A provider for virtual cluster `vcluster_name` synced into
    /// `host_namespace` on the host behind `host_client`.
    pub fn new(
        host_client: kube::Client,
        vcluster_name: &str,
        host_namespace: &str,
    ) -> Result<Self, vcluster_core::Error> {
        Ok(Self {
            host_client,
            translator: Arc::new(SingleNamespaceTranslator::new(
                vcluster_name,
                host_namespace,
            )?),
            host_namespace: host_namespace.to_owned(),
            reservations: Reservations::default(),
        })
    }

    /// The reservations the service syncer must respect.
    pub fn reservations(&self) -> Reservations {
        self.reservations.clone()
    }

    fn api(&self) -> Api<Service> {
        Api::namespaced(self.host_client.clone(), &self.host_namespace)
    }
}

/// The addresses a host service holds.
fn addresses_of(host: &Service) -> ServiceAddresses {
    let spec = host.spec.clone().unwrap_or_default();
    ServiceAddresses {
        cluster_ips: spec
            .cluster_ips
            .or_else(|| spec.cluster_ip.map(|ip| vec![ip]))
            .unwrap_or_default(),
        node_ports: spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                Some(ReservedNodePort {
                    port: p.port,
                    protocol: p.protocol.unwrap_or_else(|| "TCP".into()),
                    node_port: p.node_port?,
                })
            })
            .collect(),
        health_check_node_port: spec.health_check_node_port,
    }
}

#[async_trait]
impl ServiceAddressProvider for HostServiceAddresses {
    async fn reserve(&self, service: &Service) -> Result<Option<ServiceAddresses>, ReserveError> {
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        if is_api_service(&VirtualKey::namespaced(namespace.as_str(), name.as_str())) {
            return Ok(None);
        }
        let host = host_service(self.translator.as_ref(), service)
            .map_err(|e| ReserveError(format!("cannot translate the service: {e}")))?;
        let host_name = host.metadata.name.clone().unwrap_or_default();
        // Marked before the create, so the syncer never sees the copy
        // unprotected.
        self.reservations.add(host_name.clone(), None);
        match self
            .api()
            .create(&FieldManager::SYNCER.post_params(), &host)
            .await
        {
            Ok(created) => {
                self.reservations
                    .add(host_name, created.metadata.uid.clone());
                Ok(Some(addresses_of(&created)))
            }
            // A copy of an earlier service of the same name is still
            // there: the syncer sorts that out (re-creating if need be).
            Err(kube::Error::Api(status)) if status.code == 409 => {
                self.reservations.take(&host_name);
                Ok(None)
            }
            Err(err) => {
                self.reservations.take(&host_name);
                Err(ReserveError(format!(
                    "creating the host service {}/{host_name} failed: {err}",
                    self.host_namespace
                )))
            }
        }
    }

    async fn release(&self, service: &Service) {
        let Ok(host) = host_service(self.translator.as_ref(), service) else {
            return;
        };
        let host_name = host.metadata.name.unwrap_or_default();
        let Some(uid) = self.reservations.take(&host_name) else {
            return;
        };
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        if let Err(err) = self.api().delete(&host_name, &params).await {
            tracing::warn!(service = %host_name, error = %err, "releasing a reserved host service failed; the syncer collects it");
        }
    }
}
