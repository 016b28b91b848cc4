//! Resource slices (resource.k8s.io/v1): the devices a driver publishes
//! for a node or the whole cluster, in pools. Selectable by
//! `spec.nodeName` and `spec.driver`, as upstream.

use k8s_openapi::api::resource;
use serde_json::Value;

use super::fields::{require_text, required_because};
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The ResourceSlice kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "resource.k8s.io",
    "resourceslices",
    "ResourceSlice",
    Typed::of::<resource::v1::ResourceSlice>(),
    &ResourceSlices,
);

/// How a slice names where its devices are: exactly one of these.
const PLACEMENTS: &[&str] = &["nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection"];

/// The rules of ResourceSlice objects.
#[derive(Debug)]
struct ResourceSlices;

impl Strategy for ResourceSlices {
    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        require_text(object, "spec.driver", causes);
        require_text(object, "spec.pool.name", causes);
        let spec = object.get("spec").unwrap_or(&Value::Null);
        let set: Vec<&str> = PLACEMENTS
            .iter()
            .copied()
            .filter(|field| match spec.get(*field) {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Null) | None => false,
                Some(_) => true,
            })
            .collect();
        let why = format!("exactly one of `{}` is required", PLACEMENTS.join("`, `"));
        if set.is_empty() {
            causes.push(required_because("spec", &why));
        } else if set.len() > 1 {
            causes.push(FieldCause::invalid(
                "spec",
                &format!("{{`{}`}}", set.join("`, `")),
                format!("{why}, but multiple fields are set"),
            ));
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "spec.nodeName", "spec.driver"]
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::RESOURCE_SLICE, platform::resource_slice))
    }
}
