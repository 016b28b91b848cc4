//! Nodes (core/v1): registered with their status (the syncer imports them
//! from the host), selectable by `spec.unschedulable`.

use k8s_openapi::api::core;
use serde_json::{json, Map, Value};

use super::fields::{default_field, obj_mut, untrack_generation};

use super::BuiltinKind;
use crate::error::FieldCause;
use crate::object;
use crate::resources::Typed;
use crate::resources::strategy::{bool_field_value, generic_field_value, Strategy};
use crate::resources::table::{cluster, columns, Printer};

/// The Node kind.
pub(super) const KIND: BuiltinKind =
    BuiltinKind::cluster_scoped("", "nodes", "Node", Typed::of::<core::v1::Node>(), &Nodes)
        .short_names(&["no"])
        .with_status();

/// The rules of Node objects.
#[derive(Debug)]
struct Nodes;

impl Strategy for Nodes {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
        default_status(object);
        // Not the not-ready taint upstream's TaintNodesByCondition admission
        // adds: its node lifecycle controller, which removes it, does not
        // run here.
        // Upstream's conversion keeps `podCIDR` and `podCIDRs` in step: the
        // single field is the first of the list.
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let single = spec
            .get("podCIDR")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let first = spec
            .get("podCIDRs")
            .and_then(Value::as_array)
            .and_then(|l| l.first())
            .and_then(Value::as_str)
            .map(str::to_owned);
        match (single, first) {
            (Some(single), None) => {
                spec.insert("podCIDRs".into(), json!([single]));
            }
            (None, Some(first)) => {
                spec.insert("podCIDR".into(), json!(first));
            }
            _ => {}
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let cidrs = object::path(object, "spec.podCIDRs").and_then(Value::as_array);
        for (i, cidr) in cidrs.into_iter().flatten().enumerate() {
            let cidr = cidr.as_str().unwrap_or("");
            if !is_cidr(cidr) {
                causes.push(FieldCause::invalid(
                    format!("spec.podCIDRs[{i}]"),
                    cidr,
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
    }

    fn keeps_status_on_create(&self) -> bool {
        true
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "spec.unschedulable"]
    }

    fn field_value(&self, object: &Value, field: &str) -> String {
        match field {
            "spec.unschedulable" => bool_field_value(object, field),
            _ => generic_field_value(object, field),
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::NODE, cluster::node))
    }
}

/// `addr/prefix` with an IP address and a prefix length that fits it.
fn is_cidr(value: &str) -> bool {
    let Some((addr, len)) = value.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => len <= 32,
        Ok(std::net::IpAddr::V6(_)) => len <= 128,
        Err(_) => false,
    }
}

/// The status fields Go always writes (structs, not pointers): the
/// kubelet's endpoint port and the node info strings.
fn default_status(object: &mut Value) {
    let Some(status) = obj_mut(object, "status") else {
        return;
    };
    if let Some(endpoints) = obj_mut_in(status, "daemonEndpoints") {
        if let Some(kubelet) = obj_mut_in(endpoints, "kubeletEndpoint") {
            default_field(kubelet, "Port", json!(0));
        }
    }
    if let Some(info) = obj_mut_in(status, "nodeInfo") {
        for field in [
            "machineID",
            "systemUUID",
            "bootID",
            "kernelVersion",
            "osImage",
            "containerRuntimeVersion",
            "kubeletVersion",
            "kubeProxyVersion",
            "operatingSystem",
            "architecture",
        ] {
            default_field(info, field, json!(""));
        }
    }
}

/// The object at `field` of `map`, created empty when missing or null.
fn obj_mut_in<'a>(map: &'a mut Map<String, Value>, field: &str) -> Option<&'a mut Map<String, Value>> {
    let child = map.entry(field).or_insert_with(|| json!({}));
    if child.is_null() {
        *child = json!({});
    }
    child.as_object_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::{defaulted, invalid_fields};

    #[test]
    fn nodes_mirror_their_pod_cidr_and_check_it() {
        let node = defaulted(&KIND, json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0/24"}}));
        assert_eq!(node["spec"]["podCIDRs"], json!(["10.0.0.0/24"]));
        assert!(invalid_fields(&KIND, &node).is_empty());
        let bad = defaulted(&KIND, json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "nonsense"}}));
        assert_eq!(invalid_fields(&KIND, &bad), ["spec.podCIDRs[0]"]);
        assert!(is_cidr("2001:db8::/64") && !is_cidr("10.0.0.0/33"));
    }
}
