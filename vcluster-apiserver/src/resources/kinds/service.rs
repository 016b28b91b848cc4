//! Services (core/v1): DNS-1035 names, type and port defaults, and port
//! checks (cluster IPs and node ports are allocated by the registry's service
//! network).

use k8s_openapi::api::core;
use serde_json::{json, Map, Value};
use vcluster_core::validation;

use super::{
    fields::{default_field, invalid_raw, obj_mut, untrack_generation},
    BuiltinKind};
use crate::error::FieldCause;
use crate::object;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};

/// The Service kind.
pub(super) const KIND: BuiltinKind =
    BuiltinKind::namespaced("", "services", "Service", Typed::of::<core::v1::Service>(), &Services)
        .short_names(&["svc"])
        .in_all()
        .with_status();

/// The rules of Service objects.
#[derive(Debug)]
struct Services;

impl Strategy for Services {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn name_errors(&self, name: &str) -> Vec<String> {
        validation::dns1035_label_errors(name)
    }

    fn default(&self, object: &mut Value) {
        untrack_generation(object);
        if let Some(spec) = obj_mut(object, "spec") {
            default_spec(spec);
        }
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        Some(json!({"loadBalancer": {}}))
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        validate_spec(object, causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::SERVICE, network::service))
    }
}

fn default_spec(spec: &mut Map<String, Value>) {
    default_field(spec, "type", json!("ClusterIP"));
    default_field(spec, "sessionAffinity", json!("None"));
    let service_type = spec.get("type").and_then(Value::as_str).unwrap_or("");
    if service_type == "ExternalName" {
        return;
    }
    if matches!(service_type, "NodePort" | "LoadBalancer") {
        default_field(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    default_field(spec, "internalTrafficPolicy", json!("Cluster"));
    // ipFamilies and ipFamilyPolicy come with the cluster IP, when the
    // registry allocates it (after the writer's managed fields are
    // recorded, as upstream: the writer does not own them).
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_field(port, "protocol", json!("TCP"));
            if let Some(number) = port.get("port").cloned() {
                default_field(port, "targetPort", number);
            }
        }
    }
}

fn validate_spec(object: &Value, causes: &mut Vec<FieldCause>) {
    let service_type = object::path(object, "spec.type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if !matches!(
        service_type,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(FieldCause::not_supported(
            "spec.type",
            service_type,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
        return;
    }
    if service_type == "ExternalName" {
        if object::path_str(object, "spec.externalName").is_empty() {
            causes.push(FieldCause::required("spec.externalName"));
        }
        return;
    }
    let headless = object::path(object, "spec.clusterIP").and_then(Value::as_str) == Some("None");
    let ports = object::path(object, "spec.ports").and_then(Value::as_array);
    if ports.is_none_or(Vec::is_empty) && !headless {
        causes.push(FieldCause::required("spec.ports"));
    }
    let named = ports.is_some_and(|p| p.len() > 1);
    for (i, port) in ports.into_iter().flatten().enumerate() {
        if named
            && port
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            causes.push(FieldCause::required(format!("spec.ports[{i}].name")));
        }
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&number) {
            causes.push(invalid_raw(
                format!("spec.ports[{i}].port"),
                &number.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
        if let Some(target) = port.get("targetPort").and_then(Value::as_i64) {
            if !(1..=65535).contains(&target) {
                causes.push(invalid_raw(
                    format!("spec.ports[{i}].targetPort"),
                    &target.to_string(),
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::{defaulted, invalid_fields};

    #[test]
    fn services_default_type_and_target_ports() {
        let svc = defaulted(
            &KIND,
            json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
        );
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn ports_are_checked_and_named_when_several() {
        let bad = json!({"spec": {"ports": [{"port": 0, "name": "a"}, {"port": 80}]}});
        assert_eq!(
            invalid_fields(&KIND, &bad),
            ["spec.ports[0].port", "spec.ports[1].name"]
        );
        let headless = json!({"spec": {"clusterIP": "None"}});
        assert!(invalid_fields(&KIND, &headless).is_empty());
        assert_eq!(
            KIND.strategy.name_errors("1svc").len(),
            1,
            "service names are DNS-1035 labels"
        );
    }
}
