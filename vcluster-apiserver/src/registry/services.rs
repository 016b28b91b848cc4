//! Service IPs and node ports: assigned on create, kept across updates,
//! released on delete, exactly once each. A new service may take its
//! addresses from a [`ServiceAddressProvider`] (the host, through the
//! syncer) instead of the server's own ranges.

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

/// The service network of one server: cluster IPs and node ports.
pub struct ServiceNetwork {
    state: Mutex<Allocators>,
    provider: Option<Arc<dyn ServiceAddressProvider>>,
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

/// What one write took from the allocators (to undo if the write fails)
/// and what it gave up (to release once the write is stored).
#[must_use = "roll back or commit the allocation"]
#[derive(Default)]
pub struct Allocation {
    taken_ips: Vec<Ipv4Addr>,
    taken_ports: Vec<u16>,
    freed_ips: Vec<Ipv4Addr>,
    freed_ports: Vec<u16>,
}

impl Allocation {
    /// The write failed: give back what it took.
    pub fn rollback(self, network: &ServiceNetwork) {
        let mut state = network.lock();
        for ip in self.taken_ips {
            state.ips.release(ip);
        }
        for port in self.taken_ports {
            state.ports.release(port);
        }
    }

    /// The write is stored: release what it gave up.
    pub fn commit(self, network: &ServiceNetwork) {
        let mut state = network.lock();
        for ip in self.freed_ips {
            state.ips.release(ip);
        }
        for port in self.freed_ports {
            state.ports.release(port);
        }
    }
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
        })
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

    /// Marks what a stored service holds as taken (start-up).
    pub fn adopt(&self, service: &Value) {
        let mut state = self.lock();
        if let Some(ip) = cluster_ip(service) {
            if let Err(err) = state.ips.allocate(ip) {
                tracing::warn!(service = object::name(service), error = %err, "stored service IP not adopted");
            }
        }
        for port in node_ports(service) {
            if let Err(err) = state.ports.allocate(port) {
                tracing::warn!(service = object::name(service), error = %err, "stored node port not adopted");
            }
        }
    }

    /// Fills a service's cluster IP and node ports for a create (`old` is
    /// `None`) or an update; any other resource passes through untouched.
    /// Allocates what a service needs (cluster IP, node ports) and sets
    /// the IP families that come with them.
    pub fn allocate(
        &self,
        resource: &ResourceInfo,
        service: &mut Value,
        old: Option<&Value>,
    ) -> Result<Allocation, ApiError> {
        let mut allocation = Allocation::default();
        if !is_services(resource) {
            return Ok(allocation);
        }
        let result = self.allocate_service(service, old, &mut allocation);
        match result {
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
    ) -> Result<(), ApiError> {
        let service_type = object::path_str(service, "spec.type").to_owned();
        let requested = object::path_str(service, "spec.clusterIP").to_owned();
        let old_ip = old.and_then(cluster_ip);
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
                        .map_err(|e| invalid(service, "spec.clusterIPs", "", e))?;
                    allocation.taken_ips.push(ip);
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
                    state
                        .ips
                        .allocate(ip)
                        .map_err(|e| invalid(service, "spec.clusterIPs", text, e))?;
                    allocation.taken_ips.push(ip);
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
                        if !old_ports.contains(&p) {
                            state.ports.allocate(p).map_err(|e| {
                                ApiError::invalid(
                                    "Service",
                                    "",
                                    vec![FieldCause::invalid(
                                        format!("spec.ports[{i}].nodePort"),
                                        &p.to_string(),
                                        e.to_string(),
                                    )],
                                )
                            })?;
                            allocation.taken_ports.push(p);
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
                                let p = state.ports.allocate_next().map_err(|e| {
                                    ApiError::invalid(
                                        "Service",
                                        "",
                                        vec![FieldCause::invalid(
                                            format!("spec.ports[{i}].nodePort"),
                                            "",
                                            e.to_string(),
                                        )],
                                    )
                                })?;
                                allocation.taken_ports.push(p);
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

    /// Gives back what a deleted service held.
    pub fn release(&self, resource: &ResourceInfo, service: &Value) {
        if !is_services(resource) {
            return;
        }
        let mut state = self.lock();
        if let Some(ip) = cluster_ip(service) {
            state.ips.release(ip);
        }
        for port in node_ports(service) {
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
