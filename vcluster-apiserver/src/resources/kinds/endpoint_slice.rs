//! Endpoint slices (discovery.k8s.io/v1): the addresses behind a service, as
//! newer clients read them.

use k8s_openapi::api::discovery;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::{default_for_update, Strategy};
use crate::resources::table::{columns, network, Printer};
use serde_json::{json, Value};
use super::fields::{default_field, track_generation};
use crate::error::FieldCause;
use crate::object;

/// The EndpointSlice kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "discovery.k8s.io",
    "endpointslices",
    "EndpointSlice",
    Typed::of::<discovery::v1::EndpointSlice>(),
    &EndpointSlices,
);

/// The rules of EndpointSlice objects.
#[derive(Debug)]
struct EndpointSlices;

impl Strategy for EndpointSlices {
    fn default(&self, object: &mut Value) {
        track_generation(object);
        if let Some(ports) = object.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                default_field(port, "protocol", json!("TCP"));
                default_field(port, "name", json!(""));
            }
        }
        if let Some(endpoints) = object.get_mut("endpoints").and_then(Value::as_array_mut) {
            for endpoint in endpoints.iter_mut().filter_map(Value::as_object_mut) {
                default_field(endpoint, "conditions", json!({}));
            }
        }
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        default_for_update(self, old, new);
        // Upstream counts a change of labels as a new generation too.
        if old.pointer("/metadata/labels") != new.pointer("/metadata/labels") {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            object::metadata_mut(new).insert("generation".into(), json!(generation + 1));
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        match object.get("addressType").and_then(Value::as_str) {
            None | Some("") => causes.push(FieldCause::required("addressType")),
            Some("IPv4" | "IPv6" | "FQDN") => {}
            Some(other) => causes.push(FieldCause::not_supported(
                "addressType",
                other,
                &["FQDN", "IPv4", "IPv6"],
            )),
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::ENDPOINT_SLICE,
            network::endpoint_slice,
        ))
    }
}
