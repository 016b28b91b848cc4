//! What the DNS server knows about the virtual cluster: the few fields of
//! Services, EndpointSlices and Pods that records are made of, kept up to
//! date by watches (see [`crate::watch`]) and read by every query.
//!
//! Only the fields DNS needs are kept (not whole objects), indexed the way
//! queries look them up: services by namespace and name, endpoint slices by
//! the service they belong to, pods by namespace and IP.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::RwLock;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label an EndpointSlice names its service with.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The kinds the index holds (services, endpoint slices, pods).
pub(crate) const KINDS: usize = 3;

/// `(namespace, name)`.
pub(crate) type Key = (String, String);

/// A named port of a service or an endpoint slice (SRV records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NamedPort {
    /// The port's name (the `_<name>` label of the SRV name).
    pub name: String,
    /// `tcp`, `udp` or `sctp` (lowercase, the `_<proto>` label).
    pub protocol: String,
    /// The port number.
    pub port: u16,
}

/// What DNS answers for one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServiceRecord {
    /// A service with cluster IPs: A/AAAA with them, SRV for named ports
    /// pointing at the service name.
    ClusterIp {
        /// `spec.clusterIPs` (or `clusterIP`).
        ips: Vec<IpAddr>,
        /// The service's named ports.
        ports: Vec<NamedPort>,
    },
    /// `clusterIP: None`: A/AAAA with the ready endpoints' addresses.
    Headless {
        /// `spec.publishNotReadyAddresses`: not-ready endpoints count too.
        publish_not_ready: bool,
    },
    /// `type: ExternalName`: a CNAME to this name.
    ExternalName(String),
}

/// One endpoint of a slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
    /// `hostname` (set by StatefulSet pods with a `subdomain`).
    pub hostname: Option<String>,
    /// `conditions.ready` (absent counts as ready, as the API documents).
    pub ready: bool,
}

/// The DNS-relevant part of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slice {
    /// The service it belongs to.
    pub service: String,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Its named ports (SRV records of headless services).
    pub ports: Vec<NamedPort>,
}

/// Everything the server knows, each kind behind its own lock (a watch
/// event of one kind never waits for a query about another).
#[derive(Default)]
pub(crate) struct Index {
    /// How many kinds have had their first full list (see [`KINDS`]).
    pub listed: AtomicUsize,
    pub services: RwLock<Services>,
    pub slices: RwLock<Slices>,
    pub pods: RwLock<Pods>,
}

/// Services, by name and by cluster IP (reverse lookups).
#[derive(Default)]
pub(crate) struct Services {
    by_key: HashMap<Key, ServiceRecord>,
    by_ip: HashMap<IpAddr, BTreeSet<Key>>,
}

impl Services {
    /// The service `name` of `namespace`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<&ServiceRecord> {
        self.by_key.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Whether `namespace` has a service.
    pub fn in_namespace(&self, namespace: &str) -> bool {
        self.by_key.keys().any(|(ns, _)| ns == namespace)
    }

    /// The service whose cluster IP is `ip` (the first by name if several
    /// claim it).
    pub fn with_ip(&self, ip: IpAddr) -> Option<&Key> {
        self.by_ip.get(&ip)?.iter().next()
    }

    fn remove(&mut self, key: &Key) {
        if let Some(ServiceRecord::ClusterIp { ips, .. }) = self.by_key.remove(key) {
            for ip in ips {
                if let Some(keys) = self.by_ip.get_mut(&ip) {
                    keys.remove(key);
                    if keys.is_empty() {
                        self.by_ip.remove(&ip);
                    }
                }
            }
        }
    }

    fn insert(&mut self, key: Key, record: ServiceRecord) {
        self.remove(&key);
        if let ServiceRecord::ClusterIp { ips, .. } = &record {
            for ip in ips {
                self.by_ip.entry(*ip).or_default().insert(key.clone());
            }
        }
        self.by_key.insert(key, record);
    }
}

/// Endpoint slices, by slice and by service.
#[derive(Default)]
pub(crate) struct Slices {
    by_name: HashMap<Key, Slice>,
    by_service: HashMap<Key, BTreeSet<String>>,
    /// The slices (namespace, slice name) holding an address.
    by_address: HashMap<IpAddr, BTreeSet<Key>>,
}

/// Pod IPs, by pod and by namespace and IP (pod records are only answered
/// for an IP a pod of that namespace has, like CoreDNS's `pods verified`).
#[derive(Default)]
pub(crate) struct Pods {
    by_name: HashMap<Key, Vec<IpAddr>>,
    by_ip: HashMap<(String, IpAddr), usize>,
}

/// A kind the index keeps: how to key it, extract its record and store it.
pub(crate) trait Indexed: Sized {
    /// The record kept per object.
    type Record;
    /// The key, or `None` for an object without name or namespace.
    fn key(&self) -> Option<Key>;
    /// What is kept of the object (`None`: nothing to answer for it).
    fn record(&self) -> Option<Self::Record>;
}

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<Key> {
    Some((meta.namespace.clone()?, meta.name.clone()?))
}

fn parse_ips<'a>(values: impl IntoIterator<Item = &'a String>) -> Vec<IpAddr> {
    values
        .into_iter()
        .filter_map(|v| v.parse::<IpAddr>().ok())
        .collect()
}

fn named_port(name: Option<&String>, protocol: Option<&String>, port: i32) -> Option<NamedPort> {
    let name = name.filter(|n| !n.is_empty())?;
    Some(NamedPort {
        name: name.to_ascii_lowercase(),
        protocol: protocol
            .map(|p| p.to_ascii_lowercase())
            .unwrap_or_else(|| "tcp".to_owned()),
        port: u16::try_from(port).ok()?,
    })
}

impl Indexed for Service {
    type Record = ServiceRecord;

    fn key(&self) -> Option<Key> {
        key_of(&self.metadata)
    }

    fn record(&self) -> Option<ServiceRecord> {
        let spec = self.spec.as_ref()?;
        if spec.type_.as_deref() == Some("ExternalName") {
            let target = spec.external_name.clone().filter(|n| !n.is_empty())?;
            return Some(ServiceRecord::ExternalName(target));
        }
        if spec.cluster_ip.as_deref() == Some("None") {
            return Some(ServiceRecord::Headless {
                publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
            });
        }
        let mut ips = parse_ips(spec.cluster_ips.iter().flatten());
        if ips.is_empty() {
            ips = parse_ips(spec.cluster_ip.iter());
        }
        // A service whose address is not allocated yet has no records.
        if ips.is_empty() {
            return None;
        }
        let ports = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|p| named_port(p.name.as_ref(), p.protocol.as_ref(), p.port))
            .collect();
        Some(ServiceRecord::ClusterIp { ips, ports })
    }
}

impl Indexed for EndpointSlice {
    type Record = Slice;

    fn key(&self) -> Option<Key> {
        key_of(&self.metadata)
    }

    fn record(&self) -> Option<Slice> {
        let service = self.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
        let endpoints = self
            .endpoints
            .iter()
            .map(|e| Endpoint {
                addresses: parse_ips(e.addresses.iter()),
                hostname: e.hostname.clone().map(|h| h.to_ascii_lowercase()),
                ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
            })
            .collect();
        let ports = self
            .ports
            .iter()
            .flatten()
            .filter_map(|p| named_port(p.name.as_ref(), p.protocol.as_ref(), p.port?))
            .collect();
        Some(Slice {
            service: service.clone(),
            endpoints,
            ports,
        })
    }
}

impl Indexed for Pod {
    type Record = Vec<IpAddr>;

    fn key(&self) -> Option<Key> {
        key_of(&self.metadata)
    }

    fn record(&self) -> Option<Vec<IpAddr>> {
        let status = self.status.as_ref()?;
        let mut ips: Vec<IpAddr> = parse_ips(status.pod_ips.iter().flatten().map(|p| &p.ip));
        if ips.is_empty() {
            ips = parse_ips(status.pod_ip.iter());
        }
        (!ips.is_empty()).then_some(ips)
    }
}

/// A table the watch of one kind keeps: apply, delete, replace all.
pub(crate) trait Table<K: Indexed> {
    /// An object was added or changed.
    fn apply(&self, key: Key, record: Option<K::Record>);
    /// The watch restarted: this is now everything.
    fn replace(&self, all: Vec<(Key, K::Record)>);
}

impl Table<Service> for Index {
    fn apply(&self, key: Key, record: Option<ServiceRecord>) {
        let mut services = write(&self.services);
        match record {
            Some(record) => services.insert(key, record),
            None => services.remove(&key),
        }
    }

    fn replace(&self, all: Vec<(Key, ServiceRecord)>) {
        let mut fresh = Services::default();
        for (key, record) in all {
            fresh.insert(key, record);
        }
        *write(&self.services) = fresh;
    }
}

impl Slices {
    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.by_name.remove(key) {
            for ip in old.endpoints.iter().flat_map(|e| e.addresses.iter()) {
                if let Some(keys) = self.by_address.get_mut(ip) {
                    keys.remove(key);
                    if keys.is_empty() {
                        self.by_address.remove(ip);
                    }
                }
            }
            let service_key = (key.0.clone(), old.service);
            if let Some(names) = self.by_service.get_mut(&service_key) {
                names.remove(&key.1);
                if names.is_empty() {
                    self.by_service.remove(&service_key);
                }
            }
        }
    }

    fn insert(&mut self, key: Key, slice: Slice) {
        self.remove(&key);
        for ip in slice.endpoints.iter().flat_map(|e| e.addresses.iter()) {
            self.by_address.entry(*ip).or_default().insert(key.clone());
        }
        self.by_service
            .entry((key.0.clone(), slice.service.clone()))
            .or_default()
            .insert(key.1.clone());
        self.by_name.insert(key, slice);
    }

    /// The slices holding `ip`, with their namespace.
    pub fn with_address(&self, ip: IpAddr) -> impl Iterator<Item = (&str, &Slice)> + '_ {
        self.by_address
            .get(&ip)
            .into_iter()
            .flatten()
            .filter_map(|key| Some((key.0.as_str(), self.by_name.get(key)?)))
    }

    /// The slices of service `name` in `namespace`.
    pub fn of_service<'a>(
        &'a self,
        namespace: &str,
        name: &str,
    ) -> impl Iterator<Item = &'a Slice> + 'a {
        let slices = self
            .by_service
            .get(&(namespace.to_owned(), name.to_owned()));
        let namespace = namespace.to_owned();
        slices
            .into_iter()
            .flatten()
            .filter_map(move |slice| self.by_name.get(&(namespace.clone(), slice.clone())))
    }
}

impl Table<EndpointSlice> for Index {
    fn apply(&self, key: Key, record: Option<Slice>) {
        let mut slices = write(&self.slices);
        match record {
            Some(slice) => slices.insert(key, slice),
            None => slices.remove(&key),
        }
    }

    fn replace(&self, all: Vec<(Key, Slice)>) {
        let mut fresh = Slices::default();
        for (key, slice) in all {
            fresh.insert(key, slice);
        }
        *write(&self.slices) = fresh;
    }
}

impl Pods {
    fn remove(&mut self, key: &Key) {
        for ip in self.by_name.remove(key).into_iter().flatten() {
            let ip_key = (key.0.clone(), ip);
            if let Some(count) = self.by_ip.get_mut(&ip_key) {
                *count -= 1;
                if *count == 0 {
                    self.by_ip.remove(&ip_key);
                }
            }
        }
    }

    fn insert(&mut self, key: Key, ips: Vec<IpAddr>) {
        self.remove(&key);
        for ip in &ips {
            *self.by_ip.entry((key.0.clone(), *ip)).or_default() += 1;
        }
        self.by_name.insert(key, ips);
    }

    /// Whether a pod of `namespace` has `ip`.
    pub fn has(&self, namespace: &str, ip: IpAddr) -> bool {
        self.by_ip.contains_key(&(namespace.to_owned(), ip))
    }
}

impl Table<Pod> for Index {
    fn apply(&self, key: Key, record: Option<Vec<IpAddr>>) {
        let mut pods = write(&self.pods);
        match record {
            Some(ips) => pods.insert(key, ips),
            None => pods.remove(&key),
        }
    }

    fn replace(&self, all: Vec<(Key, Vec<IpAddr>)>) {
        let mut fresh = Pods::default();
        for (key, ips) in all {
            fresh.insert(key, ips);
        }
        *write(&self.pods) = fresh;
    }
}

/// A poisoned lock only means a writer panicked mid-update of plain maps;
/// the data is still usable, so it is read rather than propagating panics.
pub(crate) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// See [`write`].
pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}
