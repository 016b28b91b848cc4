//! The host copy of a service and the changes that keep it in step: the
//! selector translated, the allocations (cluster IP, node ports) left to
//! the host, and the replacement that gives the virtual service the host's
//! address.

use k8s_openapi::api::core::v1::Service;
use serde_json::{json, Map, Value};
use vcluster_core::{MarkerScope, Translator, TranslatorExt};

use super::IF_SET;

/// Whether a service type has node ports.
pub(super) fn has_node_ports(service_type: Option<&str>) -> bool {
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
pub(super) fn with_node_ports_of(ports: &[Value], source: &[Value]) -> Vec<Value> {
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

pub(super) fn ports_of(spec: &Value) -> Vec<Value> {
    spec.get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The owned spec fields the host service should have, given the host's
/// current spec (whose node ports are kept).
pub(super) fn desired_host_spec(
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
pub(super) fn replacement(virtual_json: &Value, host_spec: &Value) -> Value {
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

pub(super) fn cluster_ip(spec: &Value) -> Option<&str> {
    spec.get("clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syncers::owned_patch;
    use crate::syncers::services::{IF_SET, REMOVABLE};
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
