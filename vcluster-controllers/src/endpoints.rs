//! Endpoints and EndpointSlices of services with a selector: the pods the
//! selector matches, by readiness, with the service's ports resolved
//! against each pod (upstream's endpoints and endpointslice controllers).
//!
//! - A pod counts once it has an IP (which arrives from the host through
//!   the syncer) and is not finished; a ready pod is an address, an
//!   unready one a not-ready address (ready anyway with
//!   `publishNotReadyAddresses`). Each address points at its pod
//!   (`targetRef`) and node; `hostname` is set for pods whose `subdomain`
//!   is the service (headless services of StatefulSets).
//! - A named `targetPort` is looked up among the pod's container ports
//!   (same protocol); a pod without it is left out of that port. Subsets
//!   group addresses that share the same ports (upstream's
//!   `RepackSubsets`).
//! - EndpointSlices (managed by `endpointslice-controller.k8s.io`, owned
//!   by the service) hold at most 100 endpoints of one address type and
//!   one port set; an empty service keeps one empty slice. The syncer
//!   does not copy these to the host: the host's own controllers build
//!   them from the synced service.
//! - Services without a selector (hand-made endpoints) and ExternalName
//!   services are left alone. Deleting a service deletes its Endpoints
//!   (its slices go with it through their owner reference).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use tokio_util::sync::CancellationToken;

use crate::error::{ignore_not_found, ApiContext, Result};
use crate::meta::{controller_ref, labels, name_of, namespace_of};
use crate::pods;
use crate::runtime::{drive, Shared};
use vcluster_core::FieldManager;

const KIND: &str = "Service";
/// The label tying a slice to its service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label saying which controller manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY_LABEL`] (upstream's, so the
/// syncer and tools treat the slices as controller-made).
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// The label marking endpoints of headless services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Most endpoints in one slice (upstream's default).
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// The selector of a service that selects pods, if it does.
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Whether `pod` is selected by `service`.
pub fn selects(service: &Service, pod: &Pod) -> bool {
    service.metadata.namespace == pod.metadata.namespace
        && selector(service).is_some_and(|sel| {
            let pod_labels = labels(&pod.metadata);
            sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
        })
}

fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn publish_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The pod's IPs (`podIPs`, else `podIP`).
fn pod_ips(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<String> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .filter(|ip| !ip.is_empty())
        .collect();
    if ips.is_empty() {
        ips.extend(status.pod_ip.clone().filter(|ip| !ip.is_empty()));
    }
    ips
}

/// Whether a pod belongs in endpoints at all (upstream's
/// `ShouldPodBeInEndpoints`): not finished, has an IP, and (unless
/// terminating pods are wanted) not being deleted.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    !matches!(pods::phase(pod), "Succeeded" | "Failed")
        && !pod_ips(pod).is_empty()
        && (include_terminating || pod.metadata.deletion_timestamp.is_none())
}

/// The container port a service port reaches on `pod` (upstream's
/// `FindPort`): a number as is, a name looked up among the containers'
/// ports of the same protocol.
pub fn find_port(pod: &Pod, port: &k8s_openapi::api::core::v1::ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match port.target_port.as_ref() {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name)
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The endpoint ports of `pod` for `service` (those it can serve).
fn pod_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let mut ports: Vec<EndpointPort> = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            find_port(pod, sp).map(|number| EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port: number,
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    ports.sort_by(|a, b| (&a.name, a.port, &a.protocol).cmp(&(&b.name, b.port, &b.protocol)));
    ports
}

fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

fn hostname_for(service: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.clone().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace)
        .then_some(hostname)
}

fn node_name(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
}

/// The subsets of the Endpoints of `service` over the pods it selects
/// (upstream's endpoints controller, repacked and sorted).
pub fn endpoint_subsets(service: &Service, pods: &[Pod]) -> Vec<EndpointSubset> {
    let tolerate_unready = publish_not_ready(service);
    let has_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|p| !p.is_empty());
    // Each port -> the addresses offering it (address key -> (address,
    // ready)); `None` is the sentinel of headless services without ports.
    type Group = BTreeMap<(String, String), (EndpointAddress, bool)>;
    type PortKey = Option<(Option<String>, i32, Option<String>, Option<String>)>;
    let mut by_port: BTreeMap<PortKey, (Option<EndpointPort>, Group)> = BTreeMap::new();
    for pod in pods.iter().filter(|p| selects(service, p)) {
        if !should_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(ip) = pod_ips(pod).into_iter().next() else {
            continue;
        };
        let ports = pod_ports(service, pod);
        if !has_ports && !is_headless(service) {
            continue;
        }
        let address = EndpointAddress {
            ip: ip.clone(),
            hostname: hostname_for(service, pod),
            node_name: node_name(pod),
            target_ref: Some(target_ref(pod)),
        };
        let ready = tolerate_unready || pods::is_ready(pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let keyed: Vec<(PortKey, Option<EndpointPort>)> = if has_ports {
            ports
                .into_iter()
                .map(|p| {
                    let key = Some((
                        p.name.clone(),
                        p.port,
                        p.protocol.clone(),
                        p.app_protocol.clone(),
                    ));
                    (key, Some(p))
                })
                .collect()
        } else {
            vec![(None, None)]
        };
        for (key, port) in keyed {
            by_port
                .entry(key)
                .or_insert_with(|| (port, BTreeMap::new()))
                .1
                .insert((ip.clone(), uid.clone()), (address.clone(), ready));
        }
    }
    // Ports offered by the same addresses share a subset (upstream's
    // `RepackSubsets`).
    type AddressSet = Vec<((String, String), bool)>;
    let mut by_addresses: BTreeMap<AddressSet, (Vec<EndpointPort>, Group)> = BTreeMap::new();
    for (_, (port, group)) in by_port {
        let key: Vec<_> = group
            .iter()
            .map(|(k, (_, ready))| (k.clone(), *ready))
            .collect();
        let entry = by_addresses
            .entry(key)
            .or_insert_with(|| (Vec::new(), group));
        entry.0.extend(port);
    }
    let mut subsets: Vec<EndpointSubset> = by_addresses
        .into_values()
        .map(|(mut ports, group)| {
            ports.sort_by(|a, b| {
                (&a.name, a.port, &a.protocol).cmp(&(&b.name, b.port, &b.protocol))
            });
            let (ready, not_ready): (Vec<_>, Vec<_>) = group.into_values().partition(|(_, r)| *r);
            let list = |v: Vec<(EndpointAddress, bool)>| -> Option<Vec<EndpointAddress>> {
                let addresses: Vec<EndpointAddress> = v.into_iter().map(|(a, _)| a).collect();
                (!addresses.is_empty()).then_some(addresses)
            };
            EndpointSubset {
                addresses: list(ready),
                not_ready_addresses: list(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    subsets.sort_by_key(|s| {
        let first = s
            .addresses
            .iter()
            .chain(s.not_ready_addresses.iter())
            .flatten()
            .map(|a| a.ip.clone())
            .min();
        (
            first,
            s.ports
                .as_ref()
                .map(|p| p.iter().map(|p| p.port).collect::<Vec<_>>()),
        )
    });
    subsets
}

/// The labels of the Endpoints of `service` (its own, plus the headless
/// marker).
fn endpoints_labels(service: &Service) -> BTreeMap<String, String> {
    let mut out = service.metadata.labels.clone().unwrap_or_default();
    if is_headless(service) {
        out.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        out.remove(HEADLESS_LABEL);
    }
    out
}

/// The address type of an IP (`IPv4` or `IPv6`).
fn address_type(ip: &str) -> &'static str {
    if ip.contains(':') {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// The desired slices of `service`: `(addressType, ports, endpoints)`,
/// each with at most [`MAX_ENDPOINTS_PER_SLICE`] endpoints; one empty
/// slice when nothing is selected.
pub fn desired_slices(
    service: &Service,
    pods: &[Pod],
) -> Vec<(String, Vec<SlicePort>, Vec<Endpoint>)> {
    let families: Vec<String> = service
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.clone())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| vec!["IPv4".into()]);
    let has_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|p| !p.is_empty());
    let tolerate_unready = publish_not_ready(service);
    type GroupKey = (String, Vec<(Option<String>, i32, Option<String>)>);
    let mut groups: BTreeMap<GroupKey, (Vec<SlicePort>, Vec<Endpoint>)> = BTreeMap::new();
    let mut selected: Vec<&Pod> = pods.iter().filter(|p| selects(service, p)).collect();
    selected.sort_by_key(|p| p.metadata.name.clone());
    for pod in selected {
        if !should_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = pod_ports(service, pod);
        if has_ports && ports.is_empty() {
            continue;
        }
        if !has_ports && !is_headless(service) {
            continue;
        }
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = pods::is_ready(pod);
        for ip in pod_ips(pod) {
            let family = address_type(&ip);
            if !families.iter().any(|f| f == family) {
                continue;
            }
            let slice_ports: Vec<SlicePort> = ports
                .iter()
                .map(|p| SlicePort {
                    name: p.name.clone(),
                    port: Some(p.port),
                    protocol: p.protocol.clone(),
                    app_protocol: p.app_protocol.clone(),
                })
                .collect();
            let key: Vec<_> = ports
                .iter()
                .map(|p| (p.name.clone(), p.port, p.protocol.clone()))
                .collect();
            let endpoint = Endpoint {
                addresses: vec![ip.clone()],
                conditions: Some(EndpointConditions {
                    ready: Some((serving || tolerate_unready) && !terminating),
                    serving: Some(serving),
                    terminating: Some(terminating),
                }),
                hostname: hostname_for(service, pod),
                node_name: node_name(pod),
                target_ref: Some(target_ref(pod)),
                ..Endpoint::default()
            };
            groups
                .entry((family.to_owned(), key))
                .or_insert_with(|| (slice_ports, Vec::new()))
                .1
                .push(endpoint);
        }
    }
    let mut slices = Vec::new();
    for ((family, _), (ports, endpoints)) in groups {
        for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            slices.push((family.clone(), ports.clone(), chunk.to_vec()));
        }
    }
    if slices.is_empty() {
        slices.push((families[0].clone(), Vec::new(), Vec::new()));
    }
    slices
}

/// The labels of `service`'s slices.
fn slice_labels(service: &Service, name: &str) -> BTreeMap<String, String> {
    let mut out = endpoints_labels(service);
    out.insert(SERVICE_NAME_LABEL.into(), name.to_owned());
    out.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    out
}

/// Which services each pod was last counted in, so a pod that stops
/// matching a selector still wakes the services it left.
#[derive(Default)]
struct Membership {
    by_pod: HashMap<(String, String), BTreeSet<String>>,
    by_service: HashMap<(String, String), BTreeSet<String>>,
}

impl Membership {
    fn services_of(&self, namespace: &str, pod: &str) -> Vec<String> {
        self.by_pod
            .get(&(namespace.to_owned(), pod.to_owned()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&mut self, namespace: &str, service: &str, pods: BTreeSet<String>) {
        let key = (namespace.to_owned(), service.to_owned());
        let before = self.by_service.remove(&key).unwrap_or_default();
        for pod in before.difference(&pods) {
            let pod_key = (namespace.to_owned(), pod.clone());
            if let Some(services) = self.by_pod.get_mut(&pod_key) {
                services.remove(service);
                if services.is_empty() {
                    self.by_pod.remove(&pod_key);
                }
            }
        }
        for pod in &pods {
            self.by_pod
                .entry((namespace.to_owned(), pod.clone()))
                .or_default()
                .insert(service.to_owned());
        }
        if !pods.is_empty() {
            self.by_service.insert(key, pods);
        }
    }
}

struct Ctx {
    shared: Arc<Shared>,
    membership: Arc<Mutex<Membership>>,
    endpoints: bool,
    slices: bool,
}

impl AsRef<Shared> for Ctx {
    fn as_ref(&self) -> &Shared {
        &self.shared
    }
}

/// Runs the endpoints and/or endpointslice controllers (one reconcile per
/// service writes both) until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let enabled = &shared.options.enabled;
    let ctx = Arc::new(Ctx {
        membership: Arc::new(Mutex::new(Membership::default())),
        endpoints: enabled.endpoints,
        slices: enabled.endpoint_slices,
        shared: shared.clone(),
    });
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services: Store<Service> = controller.store();
    let membership = ctx.membership.clone();
    let pod_services = services.clone();
    let controller = controller
        .watches(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            move |pod: Pod| {
                let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let mut names: BTreeSet<String> = membership
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .services_of(&namespace, &name)
                    .into_iter()
                    .collect();
                names.extend(
                    pod_services
                        .state()
                        .iter()
                        .filter(|s| selects(s, &pod))
                        .filter_map(|s| s.metadata.name.clone()),
                );
                names
                    .into_iter()
                    .map(|n| ObjectRef::new(&n).within(&namespace))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            Api::<Endpoints>::all(client.clone()),
            watcher::Config::default(),
            |ep: Endpoints| {
                let namespace = ep.metadata.namespace.clone().unwrap_or_default();
                ep.metadata
                    .name
                    .map(|n| ObjectRef::new(&n).within(&namespace))
            },
        )
        .watches(
            Api::<EndpointSlice>::all(client.clone()),
            watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
            |slice: EndpointSlice| {
                let namespace = slice.metadata.namespace.clone().unwrap_or_default();
                labels(&slice.metadata)
                    .get(SERVICE_NAME_LABEL)
                    .map(|n| ObjectRef::new(n).within(&namespace))
            },
        );
    let deletions = delete_endpoints_of_deleted_services(client, cancel.clone(), ctx.endpoints);
    tokio::join!(
        drive("endpoints", controller, ctx, reconcile, cancel),
        deletions
    );
}

/// Deletes the Endpoints of each service deleted (upstream's endpoints
/// controller does the same; they have no owner reference).
async fn delete_endpoints_of_deleted_services(
    client: kube::Client,
    cancel: CancellationToken,
    enabled: bool,
) {
    if !enabled {
        return;
    }
    let stream = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff();
    futures::pin_mut!(stream);
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            event = stream.next() => event,
        };
        match event {
            Some(Ok(watcher::Event::Delete(service))) => {
                let (Some(namespace), Some(name)) =
                    (service.metadata.namespace, service.metadata.name)
                else {
                    continue;
                };
                let api: Api<Endpoints> = Api::namespaced(client.clone(), &namespace);
                match ignore_not_found(api.delete(&name, &DeleteParams::default()).await) {
                    Ok(Some(_)) => {
                        tracing::info!(service = %format!("{namespace}/{name}"), "deleted the endpoints of a deleted service")
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(service = %format!("{namespace}/{name}"), error = %err, "could not delete the endpoints of a deleted service")
                    }
                }
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => tracing::debug!(error = %err, "service watch error; retrying"),
            None => break,
        }
    }
}

async fn reconcile(obj: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action> {
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let client = ctx.shared.client.clone();
    let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let Some(service) = api.get_opt(&name).await.context("get", KIND, &key)? else {
        return Ok(Action::await_change());
    };
    let Some(selector) = selector(&service) else {
        ctx.membership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(&namespace, &name, BTreeSet::new());
        return Ok(Action::await_change());
    };
    let label_selector: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let pods: Vec<Pod> = Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default().labels(&label_selector.join(",")))
        .await
        .context("list", "Pod", &key)?
        .items;
    let members: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    ctx.membership
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(&namespace, &name, members);
    if ctx.endpoints {
        sync_endpoints(&client, &service, &pods, &key).await?;
    }
    if ctx.slices {
        sync_slices(&client, &service, &pods, &key).await?;
    }
    Ok(Action::requeue(ctx.shared.options.resync))
}

async fn sync_endpoints(
    client: &kube::Client,
    service: &Service,
    pods: &[Pod],
    key: &str,
) -> Result<()> {
    let namespace = namespace_of(service)?;
    let name = name_of(service)?;
    let api: Api<Endpoints> = Api::namespaced(client.clone(), &namespace);
    let subsets = endpoint_subsets(service, pods);
    let wanted_labels = endpoints_labels(service);
    let subsets_field = (!subsets.is_empty()).then_some(subsets);
    match api.get_opt(&name).await.context("get", "Endpoints", key)? {
        None => {
            let endpoints = Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    labels: (!wanted_labels.is_empty()).then_some(wanted_labels),
                    ..ObjectMeta::default()
                },
                subsets: subsets_field,
            };
            match api
                .create(&FieldManager::CONTROLLERS.post_params(), &endpoints)
                .await
            {
                Ok(_) => tracing::debug!("created endpoints"),
                Err(err) if crate::error::is_status(&err, 409) => {}
                Err(err) => return Err(err).context("create", "Endpoints", key),
            }
        }
        Some(mut current) => {
            let current_labels = current.metadata.labels.clone().unwrap_or_default();
            if current.subsets == subsets_field && current_labels == wanted_labels {
                return Ok(());
            }
            current.subsets = subsets_field;
            current.metadata.labels = (!wanted_labels.is_empty()).then_some(wanted_labels);
            api.replace(&name, &FieldManager::CONTROLLERS.post_params(), &current)
                .await
                .context("update", "Endpoints", key)?;
            tracing::debug!("updated endpoints");
        }
    }
    Ok(())
}

async fn sync_slices(
    client: &kube::Client,
    service: &Service,
    pods: &[Pod],
    key: &str,
) -> Result<()> {
    let namespace = namespace_of(service)?;
    let name = name_of(service)?;
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &namespace);
    let mut existing: Vec<EndpointSlice> = api
        .list(&ListParams::default().labels(&format!(
            "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
        )))
        .await
        .context("list", "EndpointSlice", key)?
        .items;
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let owner = controller_ref(service)?;
    let wanted_labels = slice_labels(service, &name);
    for (address_type, ports, endpoints) in desired_slices(service, pods) {
        let ports_field = (!ports.is_empty()).then_some(ports);
        let position = existing
            .iter()
            .position(|s| s.address_type == address_type && s.ports == ports_field)
            .or_else(|| existing.iter().position(|s| s.address_type == address_type));
        match position.map(|i| existing.remove(i)) {
            Some(mut slice) => {
                let current_labels = slice.metadata.labels.clone().unwrap_or_default();
                if slice.endpoints == endpoints
                    && slice.ports == ports_field
                    && current_labels == wanted_labels
                {
                    continue;
                }
                slice.endpoints = endpoints;
                slice.ports = ports_field;
                slice.metadata.labels = Some(wanted_labels.clone());
                let slice_name = name_of(&slice)?;
                api.replace(
                    &slice_name,
                    &FieldManager::CONTROLLERS.post_params(),
                    &slice,
                )
                .await
                .context(
                    "update",
                    "EndpointSlice",
                    &format!("{namespace}/{slice_name}"),
                )?;
            }
            None => {
                let slice = EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(pods::generate_name(&name)),
                        namespace: Some(namespace.clone()),
                        labels: Some(wanted_labels.clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..ObjectMeta::default()
                    },
                    address_type,
                    endpoints,
                    ports: ports_field,
                };
                api.create(&FieldManager::CONTROLLERS.post_params(), &slice)
                    .await
                    .context("create", "EndpointSlice", key)?;
            }
        }
    }
    for stale in existing {
        crate::meta::delete_exact(&api, &stale).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodIP, ServicePort, ServiceSpec};
    use proptest::prelude::*;

    fn service(selector: &[(&str, &str)], ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("svc-uid".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(
                    selector
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ports: Some(ports),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    fn port(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            port,
            target_port: Some(target),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        }
    }

    fn web_pod(name: &str, ip: Option<&str>, ready: bool, container_ports: &[(&str, i32)]) -> Pod {
        let mut p = pod(name, "Running", ready.then_some(100));
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
        if let Some(status) = p.status.as_mut() {
            status.pod_ip = ip.map(String::from);
            status.pod_ips = ip.map(|ip| vec![PodIP { ip: ip.into() }]);
        }
        if let Some(spec) = p.spec.as_mut() {
            spec.containers = vec![Container {
                name: "web".into(),
                ports: Some(
                    container_ports
                        .iter()
                        .map(|(n, p)| ContainerPort {
                            name: Some(n.to_string()),
                            container_port: *p,
                            protocol: Some("TCP".into()),
                            ..ContainerPort::default()
                        })
                        .collect(),
                ),
                ..Container::default()
            }];
        }
        p
    }

    #[test]
    fn ready_and_unready_pods_are_split_with_target_refs() {
        let svc = service(
            &[("app", "web")],
            vec![port("http", 80, IntOrString::Int(8080))],
        );
        let pods = [
            web_pod("a", Some("10.0.0.2"), true, &[]),
            web_pod("b", Some("10.0.0.1"), false, &[]),
            web_pod("no-ip", None, true, &[]),
        ];
        let subsets = endpoint_subsets(&svc, &pods);
        assert_eq!(subsets.len(), 1);
        let subset = &subsets[0];
        let ready = subset.addresses.clone().unwrap_or_default();
        let not_ready = subset.not_ready_addresses.clone().unwrap_or_default();
        assert_eq!(
            ready.iter().map(|a| a.ip.as_str()).collect::<Vec<_>>(),
            ["10.0.0.2"]
        );
        assert_eq!(
            not_ready.iter().map(|a| a.ip.as_str()).collect::<Vec<_>>(),
            ["10.0.0.1"]
        );
        let target = ready[0].target_ref.clone().unwrap_or_default();
        assert_eq!(target.kind.as_deref(), Some("Pod"));
        assert_eq!(target.name.as_deref(), Some("a"));
        assert_eq!(target.uid.as_deref(), Some("uid-a"));
        let ports = subset.ports.clone().unwrap_or_default();
        assert_eq!(
            (ports[0].name.as_deref(), ports[0].port),
            (Some("http"), 8080)
        );
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let svc = service(
            &[("app", "web")],
            vec![port("http", 80, IntOrString::String("web".into()))],
        );
        let pods = [
            web_pod("a", Some("10.0.0.1"), true, &[("web", 8080)]),
            web_pod("b", Some("10.0.0.2"), true, &[("web", 9090)]),
            web_pod("c", Some("10.0.0.3"), true, &[("other", 1234)]),
        ];
        let subsets = endpoint_subsets(&svc, &pods);
        let summary: Vec<(Vec<String>, Vec<i32>)> = subsets
            .iter()
            .map(|s| {
                (
                    s.addresses.iter().flatten().map(|a| a.ip.clone()).collect(),
                    s.ports.iter().flatten().map(|p| p.port).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (vec!["10.0.0.1".to_owned()], vec![8080]),
                (vec!["10.0.0.2".to_owned()], vec![9090]),
            ]
        );
    }

    #[test]
    fn pods_sharing_ports_share_a_subset_and_publish_not_ready_counts_all() {
        let mut svc = service(
            &[("app", "web")],
            vec![
                port("http", 80, IntOrString::Int(80)),
                port("https", 443, IntOrString::Int(443)),
            ],
        );
        let pods = [
            web_pod("a", Some("10.0.0.1"), true, &[]),
            web_pod("b", Some("10.0.0.2"), false, &[]),
        ];
        let subsets = endpoint_subsets(&svc, &pods);
        assert_eq!(subsets.len(), 1, "{subsets:?}");
        assert_eq!(subsets[0].ports.as_ref().map(Vec::len), Some(2));
        if let Some(spec) = svc.spec.as_mut() {
            spec.publish_not_ready_addresses = Some(true);
        }
        let subsets = endpoint_subsets(&svc, &pods);
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(2));
        assert!(subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn slices_carry_conditions_and_an_empty_service_keeps_one() {
        let svc = service(
            &[("app", "web")],
            vec![port("http", 80, IntOrString::Int(80))],
        );
        let pods = [
            web_pod("a", Some("10.0.0.1"), true, &[]),
            web_pod("b", Some("10.0.0.2"), false, &[]),
        ];
        let slices = desired_slices(&svc, &pods);
        assert_eq!(slices.len(), 1);
        let (family, ports, endpoints) = &slices[0];
        assert_eq!(family, "IPv4");
        assert_eq!(ports[0].port, Some(80));
        let ready: Vec<Option<bool>> = endpoints
            .iter()
            .map(|e| e.conditions.as_ref().and_then(|c| c.ready))
            .collect();
        assert_eq!(ready, [Some(true), Some(false)]);
        let empty = desired_slices(&svc, &[]);
        assert_eq!(empty.len(), 1);
        assert!(empty[0].2.is_empty());
    }

    #[test]
    fn services_without_selectors_and_external_names_are_left_alone() {
        let mut svc = service(&[], vec![]);
        assert!(selector(&svc).is_none());
        svc = service(&[("app", "web")], vec![]);
        if let Some(spec) = svc.spec.as_mut() {
            spec.type_ = Some("ExternalName".into());
        }
        assert!(selector(&svc).is_none());
    }

    proptest! {
        #[test]
        fn every_selected_pod_with_an_ip_appears_exactly_once(
            states in proptest::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), 0..40)
        ) {
            let svc = service(&[("app", "web")], vec![port("http", 80, IntOrString::Int(80))]);
            let pods: Vec<Pod> = states
                .iter()
                .enumerate()
                .map(|(i, (has_ip, ready, selected))| {
                    let ip = format!("10.1.{}.{}", i / 200, i % 200 + 1);
                    let mut p = web_pod(&format!("p{i}"), has_ip.then_some(ip.as_str()), *ready, &[]);
                    if !selected {
                        p.metadata.labels = Some([("app".to_owned(), "other".to_owned())].into());
                    }
                    p
                })
                .collect();
            let subsets = endpoint_subsets(&svc, &pods);
            let mut seen: Vec<(String, bool)> = subsets
                .iter()
                .flat_map(|s| {
                    s.addresses.iter().flatten().map(|a| (a.ip.clone(), true))
                        .chain(s.not_ready_addresses.iter().flatten().map(|a| (a.ip.clone(), false)))
                        .collect::<Vec<_>>()
                })
                .collect();
            seen.sort();
            let mut expected: Vec<(String, bool)> = states
                .iter()
                .enumerate()
                .filter(|(_, (has_ip, _, selected))| *has_ip && *selected)
                .map(|(i, (_, ready, _))| (format!("10.1.{}.{}", i / 200, i % 200 + 1), *ready))
                .collect();
            expected.sort();
            prop_assert_eq!(seen, expected);
            let slice_count: usize = desired_slices(&svc, &pods).iter().map(|s| s.2.len()).sum();
            prop_assert_eq!(slice_count, states.iter().filter(|(ip, _, sel)| *ip && *sel).count());
        }
    }
}
