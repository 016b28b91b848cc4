//! Service IPs and node ports: assigned on create, kept across updates,
//! released on delete, exactly once each. A new service may take its
//! addresses from a [`ServiceAddressProvider`] (the host, through the
//! syncer) instead of the server's own ranges.
//!
//! With a store ([`ServiceNetwork::with_records`], what [`crate::ApiServer`]
//! sets), every allocation is also a record in it, written with a create
//! that fails when the key exists: one `networking.k8s.io/v1` IPAddress
//! object per cluster IP (named by the address, its `parentRef` naming the
//! service, as kube-apiserver 1.33+ writes them) and one key per node port
//! under `/registry/ranges/servicenodeports/`. Several API servers sharing
//! one store (replicas over etcd) thus never hand out the same address:
//! the in-memory allocators only suggest candidates, the store's
//! compare-and-swap decides, and a candidate another server holds is
//! skipped. Records are written before the service and removed when it
//! goes, when a write fails, and when an update gives an address up.

use std::cell::Cell;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use vcluster_core::service_addresses::{ServiceAddressProvider, ServiceAddresses};

use serde_json::{json, Value};

use crate::allocator::{AllocationError, NodePortAllocator, ServiceIpRanges};
use crate::error::{ApiError, FieldCause};
use crate::object;
use crate::resources::ResourceInfo;
use crate::storage::{registry_key, ListRequest, Storage, StorageError};

/// Where node port records live (one key per port), beside upstream's
/// `/registry/ranges/servicenodeports` bitmap.
pub const NODE_PORT_RECORDS: &str = "/registry/ranges/servicenodeports/";
/// The label kube-apiserver's allocator puts on the IPAddress objects it
/// writes, with [`IP_ALLOCATOR`] as its value.
pub const IP_MANAGED_BY: &str = "ipaddress.kubernetes.io/managed-by";
/// The allocator's name in [`IP_MANAGED_BY`].
pub const IP_ALLOCATOR: &str = "ipallocator.k8s.io";
/// How many candidates held by other servers a create skips before it
/// gives up (then the in-memory view is refreshed from the store once).
const CLAIM_ATTEMPTS: usize = 64;

/// The service network of one server: cluster IPs and node ports.
pub struct ServiceNetwork {
    state: Mutex<Allocators>,
    provider: Option<Arc<dyn ServiceAddressProvider>>,
    records: Option<Arc<dyn Storage>>,
}

fn ip_key(ip: Ipv4Addr) -> String {
    registry_key("networking.k8s.io", "ipaddresses", None, &ip.to_string())
}

fn port_key(port: u16) -> String {
    format!("{NODE_PORT_RECORDS}{port}")
}

/// The IPAddress object recording that `service` holds `ip`.
fn ip_record(ip: Ipv4Addr, service: &Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": object::now_rfc3339(),
            "labels": {
                IP_MANAGED_BY: IP_ALLOCATOR,
                "ipaddress.kubernetes.io/ip-family": "IPv4",
            },
        },
        "spec": {"parentRef": {
            "group": "",
            "resource": "services",
            "namespace": object::namespace(service),
            "name": object::name(service),
        }},
    })
}

/// The record that `service` holds node port `port`.
fn port_record(port: u16, service: &Value) -> Value {
    json!({
        "kind": "ServiceNodePort",
        "metadata": {"name": port.to_string()},
        "service": {"namespace": object::namespace(service), "name": object::name(service)},
    })
}

/// Whether a stored record (either kind) names `service` as its holder.
fn held_by(record: &[u8], service: &Value) -> bool {
    let Ok(record) = serde_json::from_slice::<Value>(record) else {
        return false;
    };
    let holder = record
        .pointer("/spec/parentRef")
        .or_else(|| record.get("service"));
    holder.is_some_and(|h| {
        h.get("namespace").and_then(Value::as_str) == Some(object::namespace(service))
            && h.get("name").and_then(Value::as_str) == Some(object::name(service))
    })
}

fn record_error(err: StorageError) -> ApiError {
    ApiError::internal(format!("recording a service allocation failed: {err}"))
}

/// How long a create waits for the provider before it allocates on its own.
pub const RESERVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the provider did for one create.
#[must_use = "release a reservation whose service was not stored"]
pub enum Reservation {
    /// Nothing asked, or the provider had no addresses for this service.
    None,
    /// The service carries the provider's addresses.
    Reserved {
        /// The service as the provider was asked about it.
        service: Box<Service>,
        /// Its spec before the addresses were written in (to put back if
        /// this server does not accept them).
        spec_before: Value,
    },
    /// The provider failed; the server allocates its own addresses, and the
    /// reason goes into an event on the service.
    Failed(String),
}

impl Reservation {
    /// Puts back the spec `service` had before the provider's addresses
    /// were written into it.
    pub fn restore_spec(&self, service: &mut Value) {
        if let Reservation::Reserved { spec_before, .. } = self {
            service["spec"] = spec_before.clone();
        }
    }

    /// The service was not stored: the provider gives its addresses back.
    pub async fn release(self, network: &ServiceNetwork) {
        if let (Reservation::Reserved { service, .. }, Some(provider)) = (self, &network.provider) {
            provider.release(&service).await;
        }
    }
}

struct Allocators {
    ips: ServiceIpRanges,
    ports: NodePortAllocator,
}

/// One address a write took.
struct Taken<T> {
    value: T,
    /// Chosen by the server (another may be picked if the store says it
    /// is held), with the index of the port it belongs to; `None`: the
    /// client asked for this one.
    automatic: Option<usize>,
    /// Marked used in memory by this write (so giving it back unmarks it).
    marked: bool,
}

/// What one write took from the allocators (to undo if the write fails)
/// and what it gave up (to release once the write is stored).
#[must_use = "roll back or commit the allocation"]
#[derive(Default)]
pub struct Allocation {
    taken_ips: Vec<Taken<Ipv4Addr>>,
    taken_ports: Vec<Taken<u16>>,
    freed_ips: Vec<Ipv4Addr>,
    freed_ports: Vec<u16>,
    /// Records written in the store by [`Allocation::claim`].
    claimed_ips: Vec<Ipv4Addr>,
    claimed_ports: Vec<u16>,
}

impl Allocation {
    /// The write failed before [`Allocation::claim`] (or the claim
    /// failed, which removes its own records): give back what it took.
    pub fn rollback(self, network: &ServiceNetwork) {
        let mut state = network.lock();
        for ip in self.taken_ips.iter().filter(|t| t.marked) {
            state.ips.release(ip.value);
        }
        for port in self.taken_ports.iter().filter(|t| t.marked) {
            state.ports.release(port.value);
        }
    }

    /// Whether [`Allocation::claim`] would record anything (the write took
    /// an address).
    pub fn needs_claim(&self) -> bool {
        !self.taken_ips.is_empty() || !self.taken_ports.is_empty()
    }

    /// The write failed after [`Allocation::claim`]: remove its records
    /// from the store and give back what it took.
    pub async fn abandon(mut self, network: &ServiceNetwork) {
        self.unclaim(network).await;
        self.rollback(network);
    }

    /// The write is stored: release what it gave up (and its records).
    pub async fn commit(self, network: &ServiceNetwork, service: &Value) {
        network
            .release_records(&self.freed_ips, &self.freed_ports, service)
            .await;
        let mut state = network.lock();
        for ip in self.freed_ips {
            state.ips.release(ip);
        }
        for port in self.freed_ports {
            state.ports.release(port);
        }
    }

    /// Records what this write took in the store, just before the write,
    /// so that of two servers sharing the store only one holds an address:
    /// an automatic address another server holds is replaced by the next
    /// free one (in `service` too); a requested one is refused as taken.
    /// Without a store, or for a dry run, nothing is recorded. On an error
    /// the records written so far are removed; roll back afterwards.
    pub async fn claim(
        &mut self,
        network: &ServiceNetwork,
        service: &mut Value,
    ) -> Result<(), ApiError> {
        let Some(store) = network.records.clone() else {
            return Ok(());
        };
        let result = self.claim_in(network, store.as_ref(), service).await;
        if result.is_err() {
            self.unclaim(network).await;
        }
        result
    }

    async fn claim_in(
        &mut self,
        network: &ServiceNetwork,
        store: &dyn Storage,
        service: &mut Value,
    ) -> Result<(), ApiError> {
        for i in 0..self.taken_ips.len() {
            let mut refreshed = false;
            let mut attempts = 0;
            loop {
                let ip = self.taken_ips[i].value;
                let record = encode_record(&ip_record(ip, service))?;
                match store.create(&ip_key(ip), record).await {
                    Ok(_) => {
                        self.claimed_ips.push(ip);
                        break;
                    }
                    Err(StorageError::AlreadyExists { .. }) => {
                        if self.taken_ips[i].automatic.is_none() {
                            return Err(invalid(
                                service,
                                "spec.clusterIPs",
                                &ip.to_string(),
                                AllocationError::Taken {
                                    what: "IP",
                                    value: ip.to_string(),
                                },
                            ));
                        }
                        // Another server holds it: it stays marked here,
                        // and the next free one is tried.
                        attempts += 1;
                        let next = network.lock().ips.allocate_next();
                        let next = match next {
                            Ok(next) if attempts < CLAIM_ATTEMPTS => next,
                            _ if !refreshed => {
                                refreshed = true;
                                attempts = 0;
                                network.refresh().await?;
                                network
                                    .lock()
                                    .ips
                                    .allocate_next()
                                    .map_err(|e| invalid(service, "spec.clusterIPs", "", e))?
                            }
                            Ok(_) => {
                                return Err(invalid(
                                    service,
                                    "spec.clusterIPs",
                                    "",
                                    AllocationError::Full {
                                        range: network.primary_cidr(),
                                    },
                                ))
                            }
                            Err(e) => return Err(invalid(service, "spec.clusterIPs", "", e)),
                        };
                        self.taken_ips[i].value = next;
                        self.taken_ips[i].marked = true;
                        service["spec"]["clusterIP"] = json!(next.to_string());
                        service["spec"]["clusterIPs"] = json!([next.to_string()]);
                    }
                    Err(err) => return Err(record_error(err)),
                }
            }
        }
        for i in 0..self.taken_ports.len() {
            let mut refreshed = false;
            let mut attempts = 0;
            loop {
                let port = self.taken_ports[i].value;
                let record = encode_record(&port_record(port, service))?;
                match store.create(&port_key(port), record).await {
                    Ok(_) => {
                        self.claimed_ports.push(port);
                        break;
                    }
                    Err(StorageError::AlreadyExists { .. }) => {
                        let Some(index) = self.taken_ports[i].automatic else {
                            return Err(port_taken(service, i, port));
                        };
                        attempts += 1;
                        let next = network.lock().ports.allocate_next();
                        let next = match next {
                            Ok(next) if attempts < CLAIM_ATTEMPTS => next,
                            _ if !refreshed => {
                                refreshed = true;
                                attempts = 0;
                                network.refresh().await?;
                                network
                                    .lock()
                                    .ports
                                    .allocate_next()
                                    .map_err(|e| port_invalid(index, e))?
                            }
                            Ok(_) => return Err(port_taken(service, index, port)),
                            Err(e) => return Err(port_invalid(index, e)),
                        };
                        self.taken_ports[i].value = next;
                        self.taken_ports[i].marked = true;
                        if let Some(entry) = service
                            .pointer_mut(&format!("/spec/ports/{index}"))
                            .and_then(Value::as_object_mut)
                        {
                            entry.insert("nodePort".into(), json!(next));
                        }
                    }
                    Err(err) => return Err(record_error(err)),
                }
            }
        }
        Ok(())
    }

    /// Removes the records [`Allocation::claim`] wrote.
    async fn unclaim(&mut self, network: &ServiceNetwork) {
        let Some(store) = &network.records else {
            return;
        };
        for ip in self.claimed_ips.drain(..) {
            if let Err(err) = store.delete(&ip_key(ip), None).await {
                tracing::warn!(%ip, error = %err, "removing the record of an unused service IP failed");
            }
        }
        for port in self.claimed_ports.drain(..) {
            if let Err(err) = store.delete(&port_key(port), None).await {
                tracing::warn!(port, error = %err, "removing the record of an unused node port failed");
            }
        }
    }
}

fn encode_record(record: &Value) -> Result<bytes::Bytes, ApiError> {
    serde_json::to_vec(record)
        .map(bytes::Bytes::from)
        .map_err(|e| ApiError::internal(format!("encoding an allocation record: {e}")))
}

fn port_invalid(index: usize, err: AllocationError) -> ApiError {
    ApiError::invalid(
        "Service",
        "",
        vec![FieldCause::invalid(
            format!("spec.ports[{index}].nodePort"),
            "",
            err.to_string(),
        )],
    )
}

fn port_taken(service: &Value, index: usize, port: u16) -> ApiError {
    ApiError::invalid(
        "Service",
        object::name(service),
        vec![FieldCause::invalid(
            format!("spec.ports[{index}].nodePort"),
            &port.to_string(),
            AllocationError::Taken {
                what: "port",
                value: port.to_string(),
            }
            .to_string(),
        )],
    )
}

fn is_services(resource: &ResourceInfo) -> bool {
    resource.group.is_empty() && resource.plural == "services"
}

fn cluster_ip(service: &Value) -> Option<Ipv4Addr> {
    object::path_str(service, "spec.clusterIP").parse().ok()
}

fn node_ports(service: &Value) -> Vec<u16> {
    service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes reserved addresses into a service's spec.
fn apply_addresses(service: &mut Value, addresses: &ServiceAddresses) {
    if let Some(first) = addresses.cluster_ips.first() {
        service["spec"]["clusterIP"] = json!(first);
        service["spec"]["clusterIPs"] = json!(addresses.cluster_ips);
    }
    if let Some(port) = addresses.health_check_node_port {
        service["spec"]["healthCheckNodePort"] = json!(port);
    }
    let Some(ports) = service
        .pointer_mut("/spec/ports")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for port in ports.iter_mut() {
        let number = port.get("port").and_then(Value::as_i64);
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_owned();
        let reserved = addresses
            .node_ports
            .iter()
            .find(|r| Some(i64::from(r.port)) == number && r.protocol == protocol);
        if let (Some(reserved), Some(port)) = (reserved, port.as_object_mut()) {
            port.insert("nodePort".into(), json!(reserved.node_port));
        }
    }
}

fn invalid(service: &Value, field: &str, value: &str, err: AllocationError) -> ApiError {
    ApiError::invalid(
        "Service",
        object::name(service),
        vec![FieldCause::invalid(field, value, err.to_string())],
    )
}

impl ServiceNetwork {
    /// A network over `cidr` (plus `extra_cidrs` for requested addresses
    /// only) with node ports from `node_ports`.
    pub fn new(
        cidr: &str,
        extra_cidrs: &[String],
        node_ports: RangeInclusive<u16>,
    ) -> Result<Self, AllocationError> {
        Ok(Self {
            state: Mutex::new(Allocators {
                ips: ServiceIpRanges::new(cidr, extra_cidrs)?,
                ports: NodePortAllocator::new(node_ports),
            }),
            provider: None,
            records: None,
        })
    }

    /// Records every allocation in `store` (see the module docs), so
    /// servers sharing it never hand out the same address.
    pub fn with_records(mut self, store: Arc<dyn Storage>) -> Self {
        self.records = Some(store);
        self
    }

    /// Rebuilds the in-memory view from the store's records (at start-up,
    /// and when the view says a range is full although other servers may
    /// have released addresses).
    pub async fn refresh(&self) -> Result<(), ApiError> {
        let Some(store) = &self.records else {
            return Ok(());
        };
        let ip_prefix = registry_key("networking.k8s.io", "ipaddresses", None, "");
        let ips = store
            .list(ListRequest::prefix(ip_prefix.clone()))
            .await
            .map_err(record_error)?;
        let ports = store
            .list(ListRequest::prefix(NODE_PORT_RECORDS))
            .await
            .map_err(record_error)?;
        let ips: Vec<Ipv4Addr> = ips
            .items
            .iter()
            .filter_map(|kv| kv.key.strip_prefix(&ip_prefix)?.parse().ok())
            .collect();
        let ports: Vec<u16> = ports
            .items
            .iter()
            .filter_map(|kv| kv.key.strip_prefix(NODE_PORT_RECORDS)?.parse().ok())
            .collect();
        let mut state = self.lock();
        state.ips.replace_used(ips);
        state.ports.replace_used(ports);
        Ok(())
    }

    /// Removes the records of addresses `service` gave up, if they still
    /// name it (a record another service holds now is left alone).
    async fn release_records(&self, ips: &[Ipv4Addr], ports: &[u16], service: &Value) {
        let Some(store) = &self.records else {
            return;
        };
        let keys = ips
            .iter()
            .map(|ip| ip_key(*ip))
            .chain(ports.iter().map(|p| port_key(*p)));
        for key in keys {
            match store.get(&key).await {
                Ok(Some(kv)) if held_by(&kv.value, service) => {
                    match store.delete(&key, Some(kv.mod_revision)).await {
                        Ok(_) | Err(StorageError::NotFound { .. }) => {}
                        Err(err) => {
                            tracing::warn!(%key, error = %err, "removing a released service allocation failed")
                        }
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(%key, error = %err, "reading a released service allocation failed")
                }
            }
        }
    }

    /// New services ask `provider` for their addresses first.
    pub fn with_provider(mut self, provider: Option<Arc<dyn ServiceAddressProvider>>) -> Self {
        self.provider = provider;
        self
    }

    /// Asks the provider for the addresses of a service about to be
    /// created, and writes them into it. Only a service that leaves its
    /// cluster IP to the server is asked about (not a headless one, not an
    /// ExternalName, not one requesting an address).
    pub async fn reserve(&self, resource: &ResourceInfo, service: &mut Value) -> Reservation {
        let Some(provider) = &self.provider else {
            return Reservation::None;
        };
        if !is_services(resource)
            || object::path_str(service, "spec.type") == "ExternalName"
            || !object::path_str(service, "spec.clusterIP").is_empty()
        {
            return Reservation::None;
        }
        let Ok(typed) = serde_json::from_value::<Service>(service.clone()) else {
            return Reservation::None;
        };
        match tokio::time::timeout(RESERVE_TIMEOUT, provider.reserve(&typed)).await {
            Ok(Ok(Some(addresses))) => {
                let spec_before = service["spec"].clone();
                apply_addresses(service, &addresses);
                Reservation::Reserved {
                    service: Box::new(typed),
                    spec_before,
                }
            }
            Ok(Ok(None)) => Reservation::None,
            Ok(Err(err)) => Reservation::Failed(err.to_string()),
            Err(_) => {
                Reservation::Failed(format!("no answer within {}s", RESERVE_TIMEOUT.as_secs()))
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Allocators> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The address the `kubernetes` service gets.
    pub fn first_ip(&self) -> Ipv4Addr {
        self.lock().ips.first()
    }

    /// The range new cluster IPs come from (the `kubernetes` ServiceCIDR).
    pub fn primary_cidr(&self) -> String {
        self.lock().ips.primary_cidr()
    }

    /// Marks what a stored service holds as taken (start-up), and records
    /// it in the store if it has no record yet (a store written before
    /// allocations were recorded). Replicas starting together may adopt
    /// the same service: a record that exists is left as it is.
    pub async fn adopt(&self, service: &Value) {
        let ip = cluster_ip(service);
        let ports = node_ports(service);
        {
            let mut state = self.lock();
            if let Some(ip) = ip {
                if let Err(err) = state.ips.allocate(ip) {
                    tracing::warn!(service = object::name(service), error = %err, "stored service IP not adopted");
                }
            }
            for port in &ports {
                if let Err(err) = state.ports.allocate(*port) {
                    tracing::warn!(service = object::name(service), error = %err, "stored node port not adopted");
                }
            }
        }
        let Some(store) = &self.records else {
            return;
        };
        let records = ip
            .map(|ip| (ip_key(ip), ip_record(ip, service)))
            .into_iter()
            .chain(
                ports
                    .iter()
                    .map(|p| (port_key(*p), port_record(*p, service))),
            );
        for (key, record) in records {
            let Ok(bytes) = encode_record(&record) else {
                continue;
            };
            match store.create(&key, bytes).await {
                Ok(_) | Err(StorageError::AlreadyExists { .. }) => {}
                Err(err) => {
                    tracing::warn!(service = object::name(service), %key, error = %err, "recording a stored service's allocation failed")
                }
            }
        }
    }

    /// Fills a service's cluster IP and node ports for a create (`old` is
    /// `None`) or an update; any other resource passes through untouched.
    /// Allocates what a service needs (cluster IP, node ports) and sets
    /// the IP families that come with them.
    /// With records in a store, a range that looks full here is looked
    /// at again in the store first (other servers may have released
    /// addresses this one still counts as taken).
    pub async fn allocate(
        &self,
        resource: &ResourceInfo,
        service: &mut Value,
        old: Option<&Value>,
    ) -> Result<Allocation, ApiError> {
        if !is_services(resource) {
            return Ok(Allocation::default());
        }
        let original = service.clone();
        let full = Cell::new(false);
        let mut allocation = Allocation::default();
        match self.allocate_service(service, old, &mut allocation, &full) {
            Ok(()) => return Ok(allocation),
            Err(err) => {
                allocation.rollback(self);
                if !(full.get() && self.records.is_some()) {
                    return Err(err);
                }
            }
        }
        self.refresh().await?;
        *service = original;
        let mut allocation = Allocation::default();
        match self.allocate_service(service, old, &mut allocation, &full) {
            Ok(()) => Ok(allocation),
            Err(err) => {
                allocation.rollback(self);
                Err(err)
            }
        }
    }

    fn allocate_service(
        &self,
        service: &mut Value,
        old: Option<&Value>,
        allocation: &mut Allocation,
        full: &Cell<bool>,
    ) -> Result<(), ApiError> {
        let note_full = |e: AllocationError| {
            if matches!(e, AllocationError::Full { .. }) {
                full.set(true);
            }
            e
        };
        let service_type = object::path_str(service, "spec.type").to_owned();
        let requested = object::path_str(service, "spec.clusterIP").to_owned();
        let old_ip = old.and_then(cluster_ip);
        let recorded = self.records.is_some();
        let mut state = self.lock();

        // Cluster IP.
        if service_type == "ExternalName" {
            allocation.freed_ips.extend(old_ip);
            if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
        } else if requested == "None" {
            allocation.freed_ips.extend(old_ip);
            service["spec"]["clusterIPs"] = json!(["None"]);
            default_families(service);
        } else {
            default_families(service);
            let ip = match (requested.as_str(), old_ip) {
                ("", Some(old_ip)) => old_ip,
                (text, Some(old_ip)) if text == old_ip.to_string() => old_ip,
                (_, Some(_)) => {
                    return Err(ApiError::invalid(
                        "Service",
                        object::name(service),
                        vec![FieldCause::invalid(
                            "spec.clusterIPs[0]",
                            &requested,
                            "may not change once set",
                        )],
                    ))
                }
                ("", None) => {
                    let ip = state
                        .ips
                        .allocate_next()
                        .map_err(note_full)
                        .map_err(|e| invalid(service, "spec.clusterIPs", "", e))?;
                    allocation.taken_ips.push(Taken {
                        value: ip,
                        automatic: Some(0),
                        marked: true,
                    });
                    ip
                }
                (text, None) => {
                    let ip: Ipv4Addr = text.parse().map_err(|_| {
                        ApiError::invalid(
                            "Service",
                            object::name(service),
                            vec![FieldCause::invalid(
                                "spec.clusterIPs[0]",
                                text,
                                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                            )],
                        )
                    })?;
                    let marked = match state.ips.allocate(ip) {
                        Ok(()) => true,
                        // Marked here, maybe by another server's record that
                        // is gone now: the store decides (see `claim`).
                        Err(AllocationError::Taken { .. }) if recorded => false,
                        Err(e) => return Err(invalid(service, "spec.clusterIPs", text, e)),
                    };
                    allocation.taken_ips.push(Taken {
                        value: ip,
                        automatic: None,
                        marked,
                    });
                    ip
                }
            };
            service["spec"]["clusterIP"] = json!(ip.to_string());
            service["spec"]["clusterIPs"] = json!([ip.to_string()]);
        }

        // Node ports.
        let old_ports = old.map(node_ports).unwrap_or_default();
        let wants_node_ports = matches!(service_type.as_str(), "NodePort" | "LoadBalancer");
        let mut kept = Vec::new();
        let old_port_list: Vec<Value> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(ports) = service
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
        {
            for (i, port) in ports.iter_mut().enumerate() {
                let Some(port) = port.as_object_mut() else {
                    continue;
                };
                if !wants_node_ports {
                    port.remove("nodePort");
                    continue;
                }
                let requested = port
                    .get("nodePort")
                    .and_then(Value::as_u64)
                    .filter(|p| *p > 0);
                let node_port = match requested {
                    Some(p) => {
                        let p = u16::try_from(p).unwrap_or(0);
                        let requested_twice = allocation.taken_ports.iter().any(|t| t.value == p);
                        if !old_ports.contains(&p) {
                            let marked = match state.ports.allocate(p) {
                                Ok(()) => true,
                                Err(AllocationError::Taken { .. })
                                    if recorded && !requested_twice =>
                                {
                                    false
                                }
                                Err(e) => {
                                    return Err(ApiError::invalid(
                                        "Service",
                                        "",
                                        vec![FieldCause::invalid(
                                            format!("spec.ports[{i}].nodePort"),
                                            &p.to_string(),
                                            e.to_string(),
                                        )],
                                    ))
                                }
                            };
                            allocation.taken_ports.push(Taken {
                                value: p,
                                automatic: None,
                                marked,
                            });
                        }
                        p
                    }
                    None => {
                        // Keep the node port the same port had before.
                        let same = old_port_list.iter().find(|o| {
                            o.get("port") == port.get("port")
                                && o.get("protocol") == port.get("protocol")
                        });
                        match same
                            .and_then(|o| o.get("nodePort"))
                            .and_then(Value::as_u64)
                            .and_then(|p| u16::try_from(p).ok())
                        {
                            Some(p) => p,
                            None => {
                                let p = state.ports.allocate_next().map_err(note_full).map_err(
                                    |e| {
                                        ApiError::invalid(
                                            "Service",
                                            "",
                                            vec![FieldCause::invalid(
                                                format!("spec.ports[{i}].nodePort"),
                                                "",
                                                e.to_string(),
                                            )],
                                        )
                                    },
                                )?;
                                allocation.taken_ports.push(Taken {
                                    value: p,
                                    automatic: Some(i),
                                    marked: true,
                                });
                                p
                            }
                        }
                    }
                };
                port.insert("nodePort".into(), json!(node_port));
                kept.push(node_port);
            }
        }
        allocation
            .freed_ports
            .extend(old_ports.into_iter().filter(|p| !kept.contains(p)));
        Ok(())
    }

    /// Gives back what a deleted service held (and removes its records).
    pub async fn release(&self, resource: &ResourceInfo, service: &Value) {
        if !is_services(resource) {
            return;
        }
        let ip = cluster_ip(service);
        let ports = node_ports(service);
        self.release_records(&ip.into_iter().collect::<Vec<_>>(), &ports, service)
            .await;
        let mut state = self.lock();
        if let Some(ip) = ip {
            state.ips.release(ip);
        }
        for port in ports {
            state.ports.release(port);
        }
    }
}

/// The single IPv4 stack this server allocates from, as a service's
/// `ipFamilies` and `ipFamilyPolicy` say it unless the client chose.
fn default_families(service: &mut Value) {
    if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("ipFamilyPolicy")
            .or_insert_with(|| json!("SingleStack"));
        spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
    }
}
