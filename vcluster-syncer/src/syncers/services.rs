//! Services: the tenant's services run on the host, where the host's
//! kube-proxy and DNS serve them; the addresses the host assigns come back.
//!
//! To the host:
//! - the spec is copied with `selector` translated
//!   ([`SelectorTranslator::host_map_selector`](vcluster_core::SelectorTranslator)),
//!   so a host service selects only this tenant's pods of the same virtual
//!   namespace; an empty or absent selector stays absent (a service without
//!   selector must not start selecting every tenant pod);
//! - `clusterIP`/`clusterIPs`, `ipFamilies`, `healthCheckNodePort` and the
//!   ports' `nodePort`s are left to the host to allocate (a headless
//!   service keeps `clusterIP: None`); type, `externalName` and the other
//!   fields are copied;
//! - later changes of the fields the virtual service owns (type, selector,
//!   ports, external name/IPs, traffic policies, session affinity, load
//!   balancer settings) are merge-patched onto the host, keeping the node
//!   ports the host allocated.
//!
//! Back to the virtual cluster:
//! - status (the load balancer's ingress points) is copied;
//! - the host's node ports are written into the virtual ports (node ports
//!   are mutable);
//! - when the host's cluster IP differs from the virtual one, the virtual
//!   service is **re-created** with the host's address
//!   ([`Action::RecreateVirtual`]; labels, annotations and spec otherwise
//!   kept), which is how vCluster makes `kubectl get svc` show the address
//!   that really works. Cluster IPs are immutable, hence delete and create.
//!
//! The virtual API server must accept the host's addresses: configure it
//! with the host's service CIDR as an extra range (`extra_service_cidrs` of
//! vcluster-apiserver, `--service-cluster-ip-range` of a real one). Before
//! deleting anything the syncer asks the virtual API server, with a dry-run
//! create, whether it would accept the host's address; if it would not,
//! the virtual service keeps its own address (a warning is logged, and the
//! question is asked again after five minutes), so a misconfigured
//! range never loses a tenant's service.
//!
//! The node ports are copied before the address (an in-place update that
//! fails safely if the virtual cluster cannot take a port), so that a
//! re-create only ever asks for the node ports the deleted service held.
//!
//! The virtual `default/kubernetes` service is the virtual API server's
//! own and is never synced.
//!
//! With [`super::service_addresses::HostServiceAddresses`] plugged into the
//! virtual API server, none of the re-creating happens: the host copy is
//! made first and the virtual service is created with its addresses. The
//! re-create above remains the fallback (the host was unreachable at the
//! create, or the service predates the provider).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use serde_json::{json, Map, Value};
use vcluster_core::{MarkerScope, Translator, TranslatorExt, VirtualKey};

use super::service_addresses::Reservations;
use super::{create_on_host, encode, key_of, owned_patch, status_patch, translation_error};
use crate::error::{has_code, Side, SyncError};
use crate::memory::Memory;
use crate::syncer::{Action, HostOnly, SyncContext, Syncer, VirtualOnly};
use vcluster_core::FieldManager;

const KIND: &str = "services";

/// How long a refused re-create (the virtual API server would not take the
/// host's address) is not attempted again for the same address.
pub(crate) const RECREATE_RETRY: Duration = Duration::from_secs(300);

/// Spec fields the virtual service owns and writes only when it sets them
/// (the host may default them).
const IF_SET: &[&str] = &[
    "type",
    "ports",
    "externalName",
    "externalIPs",
    "sessionAffinity",
    "sessionAffinityConfig",
    "externalTrafficPolicy",
    "internalTrafficPolicy",
    "loadBalancerSourceRanges",
    "loadBalancerIP",
    "loadBalancerClass",
    "publishNotReadyAddresses",
    "allocateLoadBalancerNodePorts",
];

/// Spec fields whose absence means "none".
const REMOVABLE: &[&str] = &["selector"];

/// The service syncer.
#[derive(Default)]
pub struct ServiceSyncer {
    /// Re-creates the virtual API server refused: key -> (host address,
    /// when), so a misconfigured range is not retried on every reconcile.
    refused: DashMap<VirtualKey, (String, Instant)>,
    /// Host copies made for virtual services not stored yet.
    reservations: Option<Reservations>,
}

impl ServiceSyncer {
    /// A service syncer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Respects the host copies that `reservations`' provider creates
    /// before their virtual services are stored.
    pub fn with_reservations(mut self, reservations: Option<Reservations>) -> Self {
        self.reservations = reservations;
        self
    }

    fn refused_recently(&self, key: &VirtualKey, host_ip: &str) -> bool {
        self.refused
            .get(key)
            .is_some_and(|r| r.0 == host_ip && r.1.elapsed() < RECREATE_RETRY)
    }
}

/// Whether `namespace/name` is the virtual API server's own service.
pub(crate) fn is_api_service(key: &VirtualKey) -> bool {
    key.namespace() == Some("default") && key.name() == "kubernetes"
}

/// Whether a service type has node ports.
fn has_node_ports(service_type: Option<&str>) -> bool {
    matches!(service_type, Some("NodePort" | "LoadBalancer"))
}

/// The host copy of a virtual service (see the module docs).
pub(crate) fn host_service(
    translator: &dyn Translator,
    service: &Service,
) -> vcluster_core::Result<Service> {
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let mut host = translator.host_object(service)?;
    host.status = None;
    if let Some(spec) = host.spec.as_mut() {
        spec.selector = host_selector(translator, &namespace, spec.selector.as_ref())?;
        let headless = spec.cluster_ip.as_deref() == Some("None");
        spec.cluster_ip = headless.then(|| "None".to_owned());
        spec.cluster_ips = headless.then(|| vec!["None".to_owned()]);
        spec.ip_families = None;
        spec.health_check_node_port = None;
        for port in spec.ports.iter_mut().flatten() {
            port.node_port = None;
        }
    }
    Ok(host)
}

/// A virtual service selector as the host's: translated and scoped to the
/// tenant's namespace; empty stays absent.
fn host_selector(
    translator: &dyn Translator,
    namespace: &str,
    selector: Option<&std::collections::BTreeMap<String, String>>,
) -> vcluster_core::Result<Option<std::collections::BTreeMap<String, String>>> {
    match selector.filter(|s| !s.is_empty()) {
        Some(selector) => Ok(Some(
            translator.host_map_selector(selector, MarkerScope::Namespace(namespace))?,
        )),
        None => Ok(None),
    }
}

/// The identity of a service port for node-port bookkeeping (as the API
/// server keeps node ports across updates): port number and protocol.
fn port_identity(port: &Value) -> (Option<u64>, &str) {
    (
        port.get("port").and_then(Value::as_u64),
        port.get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP"),
    )
}

/// `ports` with each port's node port taken from the same port in
/// `source` (removed where `source` has none).
fn with_node_ports_of(ports: &[Value], source: &[Value]) -> Vec<Value> {
    ports
        .iter()
        .map(|port| {
            let mut port = port.clone();
            let node_port = source
                .iter()
                .find(|s| port_identity(s) == port_identity(&port))
                .and_then(|s| s.get("nodePort"))
                .filter(|n| !n.is_null())
                .cloned();
            if let Some(map) = port.as_object_mut() {
                match node_port {
                    Some(n) => map.insert("nodePort".into(), n),
                    None => map.remove("nodePort"),
                };
            }
            port
        })
        .collect()
}

fn ports_of(spec: &Value) -> Vec<Value> {
    spec.get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The owned spec fields the host service should have, given the host's
/// current spec (whose node ports are kept).
fn desired_host_spec(
    translator: &dyn Translator,
    namespace: &str,
    virtual_spec: &Value,
    host_spec: &Value,
) -> vcluster_core::Result<Value> {
    let mut desired = Map::new();
    for field in IF_SET {
        if let Some(value) = virtual_spec.get(*field).filter(|v| !v.is_null()) {
            desired.insert((*field).to_owned(), value.clone());
        }
    }
    let selector: Option<std::collections::BTreeMap<String, String>> = virtual_spec
        .get("selector")
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    if let Some(selector) = host_selector(translator, namespace, selector.as_ref())? {
        desired.insert("selector".into(), json!(selector));
    }
    if let Some(ports) = virtual_spec.get("ports").and_then(Value::as_array) {
        let node_ports = if has_node_ports(virtual_spec.get("type").and_then(Value::as_str)) {
            ports_of(host_spec)
        } else {
            Vec::new()
        };
        desired.insert(
            "ports".into(),
            json!(with_node_ports_of(ports, &node_ports)),
        );
    }
    Ok(Value::Object(desired))
}

/// The replacement of a virtual service that takes the host's cluster IP:
/// the virtual object without its server-set fields, with the host's
/// addresses.
fn replacement(virtual_json: &Value, host_spec: &Value) -> Value {
    let mut object = virtual_json.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(field);
        }
    }
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        for field in ["clusterIP", "clusterIPs"] {
            match host_spec.get(field) {
                Some(value) => spec.insert(field.to_owned(), value.clone()),
                None => spec.remove(field),
            };
        }
    }
    object
}

fn cluster_ip(spec: &Value) -> Option<&str> {
    spec.get("clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
}

#[async_trait]
impl Syncer for ServiceSyncer {
    type Object = Service;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        service: &Service,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<Service>, SyncError> {
        if is_api_service(&key_of(service)) {
            return Ok(VirtualOnly::Skip);
        }
        create_on_host(KIND, ctx, service, host_service)
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_service: &Service,
        host_service: &Service,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        let key = key_of(virtual_service);
        if let (Some(reservations), Some(name)) =
            (&self.reservations, host_service.metadata.name.as_deref())
        {
            reservations.settle(name);
        }
        // A virtual write changes the resourceVersion the others are pinned
        // to, so each reconcile writes the virtual service at most once;
        // the status follows at the next one.
        let status =
            status_patch(KIND, virtual_service, host_service)?.map(Action::PatchVirtualStatus);
        if virtual_service.metadata.deletion_timestamp.is_some() {
            return Ok(status.into_iter().collect());
        }
        let virtual_json = encode(KIND, virtual_service)?;
        let host_json = encode(KIND, host_service)?;
        let empty = json!({});
        let virtual_spec = virtual_json.get("spec").unwrap_or(&empty);
        let host_spec = host_json.get("spec").unwrap_or(&empty);
        let namespace = key.namespace().unwrap_or_default();

        // 1. The virtual spec to the host. The host may allocate
        //    differently afterwards: its addresses are looked at next time.
        let desired =
            desired_host_spec(ctx.translator.as_ref(), namespace, virtual_spec, host_spec)
                .map_err(translation_error(KIND, &key))?;
        if let Some(patch) = owned_patch(host_spec, &desired, REMOVABLE, IF_SET) {
            let mut actions = vec![Action::PatchHost(json!({ "spec": patch }))];
            actions.extend(status);
            return Ok(actions);
        }

        // 2. The host's node ports to the virtual service.
        if has_node_ports(virtual_spec.get("type").and_then(Value::as_str)) {
            let virtual_ports = ports_of(virtual_spec);
            let wanted = with_node_ports_of(&virtual_ports, &ports_of(host_spec));
            if wanted != virtual_ports {
                return Ok(vec![Action::PatchVirtual(
                    json!({"spec": {"ports": wanted}}),
                )]);
            }
        }

        // 3. The host's cluster IP: re-create the virtual service with it.
        let virtual_ip = cluster_ip(virtual_spec);
        let Some(host_ip) = cluster_ip(host_spec).filter(|ip| Some(*ip) != virtual_ip) else {
            return Ok(status.into_iter().collect());
        };
        if self.refused_recently(&key, host_ip) {
            return Ok(status.into_iter().collect());
        }
        let replacement = replacement(&virtual_json, host_spec);
        if !self
            .virtual_accepts(ctx, &key, &replacement, host_ip)
            .await?
        {
            return Ok(status.into_iter().collect());
        }
        tracing::info!(%key, from = ?virtual_ip, to = host_ip, "re-creating the virtual service with the host's cluster IP");
        // The new object has no status yet: copied at the next reconcile.
        Ok(vec![Action::RecreateVirtual(replacement)])
    }

    async fn host_only(
        &self,
        ctx: &SyncContext,
        host_service: &Service,
        _memory: Option<&Memory>,
    ) -> Result<HostOnly<Service>, SyncError> {
        // While a virtual service is being re-created our store may miss it
        // for a moment: ask the virtual API server before deleting.
        if let Some(key) = ctx.translator.owner_of(&host_service.metadata) {
            let api: Api<Service> = Api::namespaced(
                ctx.virtual_client.clone(),
                key.namespace().unwrap_or_default(),
            );
            let exists = api
                .get_opt(key.name())
                .await
                .map_err(|source| SyncError::Api {
                    kind: KIND,
                    key: key.clone(),
                    operation: "look up before deleting the host copy",
                    side: Side::Virtual,
                    source: Box::new(source),
                })?
                .is_some();
            if exists {
                return Ok(HostOnly::Skip);
            }
        }
        // Reserved a moment ago: its virtual service is on its way (its
        // arrival brings this key back), or its create failed and the
        // provider deletes the copy itself.
        let host_name = host_service.metadata.name.as_deref().unwrap_or_default();
        if self
            .reservations
            .as_ref()
            .is_some_and(|r| r.is_pending(host_name))
        {
            return Ok(HostOnly::Skip);
        }
        Ok(HostOnly::DeleteHost {
            grace_period_seconds: None,
        })
    }
}

impl ServiceSyncer {
    /// Asks the virtual API server (dry run, under a generated name) whether
    /// it would create the replacement with the host's cluster IP. Node
    /// ports are left out of the question: they were copied before and the
    /// deleted service frees them.
    async fn virtual_accepts(
        &self,
        ctx: &SyncContext,
        key: &VirtualKey,
        replacement: &Value,
        host_ip: &str,
    ) -> Result<bool, SyncError> {
        let mut probe = replacement.clone();
        if let Some(meta) = probe.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("name");
            meta.insert("generateName".into(), json!(format!("{}-", key.name())));
        }
        if let Some(ports) = probe
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
        {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.remove("nodePort");
            }
        }
        let probe: Service = super::decode(KIND, key, probe)?;
        let api: Api<Service> = Api::namespaced(
            ctx.virtual_client.clone(),
            key.namespace().unwrap_or_default(),
        );
        let params = PostParams {
            dry_run: true,
            ..FieldManager::SYNCER.post_params()
        };
        match api.create(&params, &probe).await {
            Ok(_) => {
                self.refused.remove(key);
                Ok(true)
            }
            Err(err) if has_code(&err, 422) || has_code(&err, 400) => {
                tracing::warn!(
                    %key, host_ip, error = %err,
                    "the virtual API server refuses the host's cluster IP; keeping the virtual one \
                     (configure the host's service CIDR as an extra service range of the virtual API server)"
                );
                self.refused
                    .insert(key.clone(), (host_ip.to_owned(), Instant::now()));
                Ok(false)
            }
            Err(source) => Err(SyncError::Api {
                kind: KIND,
                key: key.clone(),
                operation: "dry-run create of the re-created service",
                side: Side::Virtual,
                source: Box::new(source),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vcluster_core::markers::{MANAGED_BY_LABEL, NAMESPACE_LABEL};
    use vcluster_core::{LabelTranslator, SelectorTranslator, SingleNamespaceTranslator};

    fn translator() -> SingleNamespaceTranslator {
        SingleNamespaceTranslator::new("vc", "host-ns").expect("translator")
    }

    fn service(spec: Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7"},
            "spec": spec,
            "status": {"loadBalancer": {}},
        }))
        .expect("service")
    }

    #[test]
    fn the_host_copy_has_a_translated_selector_and_no_allocations() {
        let t = translator();
        let virt = service(json!({
            "type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"], "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30001}],
        }));
        let host = host_service(&t, &virt).expect("host");
        let spec = host.spec.expect("spec");
        assert_eq!(spec.cluster_ip, None);
        assert_eq!(spec.cluster_ips, None);
        assert_eq!(spec.ip_families, None);
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.ports.expect("ports")[0].node_port, None);
        let selector = spec.selector.expect("selector");
        assert_eq!(selector["app"], "web");
        assert_eq!(selector[MANAGED_BY_LABEL], "vc");
        assert_eq!(selector[NAMESPACE_LABEL], "default");
        assert_eq!(host.status, None);
        assert_eq!(host.metadata.name.as_deref(), Some("web-x-default-x-vc"));
    }

    #[test]
    fn headless_external_name_and_selectorless_services_keep_their_shape() {
        let t = translator();
        let headless =
            host_service(&t, &service(json!({"clusterIP": "None", "selector": {}}))).expect("host");
        let spec = headless.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.cluster_ips, Some(vec!["None".to_owned()]));
        assert_eq!(spec.selector, None, "an empty selector stays absent");

        let external = host_service(
            &t,
            &service(json!({"type": "ExternalName", "externalName": "db.example.com"})),
        )
        .expect("host");
        let spec = external.spec.expect("spec");
        assert_eq!(spec.external_name.as_deref(), Some("db.example.com"));
        assert_eq!(spec.selector, None);
    }

    #[test]
    fn owned_changes_patch_the_host_and_keep_its_node_ports() {
        let t = translator();
        let virtual_spec = json!({
            "type": "NodePort", "selector": {"app": "api"},
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30001}, {"port": 443, "protocol": "TCP", "nodePort": 30002}],
        });
        let host_spec = json!({
            "type": "NodePort", "clusterIP": "10.100.0.5",
            "selector": {"app": "web", MANAGED_BY_LABEL: "vc", NAMESPACE_LABEL: "default"},
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 31000}],
            "sessionAffinity": "None",
        });
        let desired = desired_host_spec(&t, "default", &virtual_spec, &host_spec).expect("desired");
        let patch = owned_patch(&host_spec, &desired, REMOVABLE, IF_SET).expect("patch");
        assert_eq!(patch["selector"], json!({"app": "api"}));
        assert_eq!(
            patch["ports"],
            json!([{"port": 80, "protocol": "TCP", "nodePort": 31000}, {"port": 443, "protocol": "TCP"}])
        );
        assert!(
            patch.get("sessionAffinity").is_none(),
            "host defaults are left alone"
        );
        assert!(patch.get("clusterIP").is_none());
    }

    #[test]
    fn a_removed_selector_is_removed_on_the_host() {
        let t = translator();
        let host_spec =
            json!({"selector": {"app": "web", MANAGED_BY_LABEL: "vc", NAMESPACE_LABEL: "default"}});
        let desired = desired_host_spec(&t, "default", &json!({}), &host_spec).expect("desired");
        assert_eq!(
            owned_patch(&host_spec, &desired, REMOVABLE, IF_SET),
            Some(json!({"selector": null}))
        );
    }

    #[test]
    fn node_ports_are_matched_by_port_and_protocol() {
        let ports = vec![
            json!({"port": 53, "protocol": "UDP", "nodePort": 30000}),
            json!({"port": 53, "protocol": "TCP"}),
        ];
        let host = vec![
            json!({"port": 53, "protocol": "TCP", "nodePort": 31053}),
            json!({"port": 53, "protocol": "UDP", "nodePort": 32053}),
        ];
        assert_eq!(
            with_node_ports_of(&ports, &host),
            vec![
                json!({"port": 53, "protocol": "UDP", "nodePort": 32053}),
                json!({"port": 53, "protocol": "TCP", "nodePort": 31053}),
            ]
        );
    }

    #[test]
    fn the_replacement_keeps_the_object_and_takes_the_host_address() {
        let virt = service(
            json!({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80}]}),
        );
        let virtual_json = serde_json::to_value(&virt).expect("json");
        let host_spec = json!({"clusterIP": "10.100.0.5", "clusterIPs": ["10.100.0.5"]});
        let r = replacement(&virtual_json, &host_spec);
        assert_eq!(r["spec"]["clusterIP"], "10.100.0.5");
        assert_eq!(r["spec"]["clusterIPs"], json!(["10.100.0.5"]));
        assert_eq!(r["spec"]["ports"], json!([{"port": 80}]));
        assert_eq!(
            r["metadata"],
            json!({"name": "web", "namespace": "default"})
        );
        assert!(r.get("status").is_none());
    }

    #[test]
    fn the_virtual_api_service_is_never_synced() {
        assert!(is_api_service(&VirtualKey::namespaced(
            "default",
            "kubernetes"
        )));
        assert!(!is_api_service(&VirtualKey::namespaced(
            "other",
            "kubernetes"
        )));
    }

    fn labels() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
        prop::collection::btree_map(
            prop_oneof![
                Just("app".to_owned()),
                Just("tier".to_owned()),
                Just("release".to_owned())
            ],
            prop_oneof![Just("a".to_owned()), Just("b".to_owned())],
            0..3,
        )
    }

    proptest! {
        /// A host service selects a host pod exactly when the virtual
        /// service selected the virtual pod in the same namespace, and
        /// never a pod of another virtual namespace.
        #[test]
        fn translated_selectors_select_the_same_pods(
            selector in labels(),
            pod_labels in labels(),
            same_namespace in any::<bool>(),
        ) {
            let t = translator();
            let selected = !selector.is_empty()
                && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v));
            let pod_namespace = if same_namespace { "default" } else { "other" };
            let host_pod_labels = t.host_labels(&pod_labels, Some(pod_namespace)).expect("labels");
            let host = host_selector(&t, "default", Some(&selector)).expect("selector");
            let host_selected = host.as_ref().is_some_and(|s| {
                s.iter().all(|(k, v)| host_pod_labels.get(k) == Some(v))
            });
            prop_assert_eq!(host_selected, selected && same_namespace);
            // The engine's translation agrees with the translator's.
            if !selector.is_empty() {
                let direct = t.host_map_selector(&selector, MarkerScope::Namespace("default")).expect("direct");
                prop_assert_eq!(host, Some(direct));
            }
        }
    }
}
