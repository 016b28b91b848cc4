//! Events (core/v1), selectable by the fields `kubectl describe` and `kubectl
//! events` ask for. `events.k8s.io` events are the same objects (see
//! `event_v1`).

use k8s_openapi::api::core;
use serde_json::Value;

use super::{BuiltinKind};
use crate::object;
use crate::resources::Typed;
use crate::resources::strategy::{generic_field_value, Strategy};
use crate::resources::table::{cluster, columns, Printer};

/// The Event kind.
pub(super) const KIND: BuiltinKind =
    BuiltinKind::namespaced("", "events", "Event", Typed::of::<core::v1::Event>(), &Events)
        .short_names(&["ev"]);

/// The rules of Event objects.
#[derive(Debug)]
struct Events;

impl Strategy for Events {
    /// core/v1 events keep their legacy validation, which checks no name
    /// format (only events.k8s.io/v1 applies `ValidateObjectMeta`'s).
    fn name_errors(&self, _name: &str) -> Vec<String> {
        Vec::new()
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }

    fn field_value(&self, object: &Value, field: &str) -> String {
        event_field_value(object, field)
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::EVENT, cluster::core_event))
    }
}

/// An event's field as field selectors read it: `source` is the reporting
/// component, as upstream selects it (both events APIs).
pub(super) fn event_field_value(object: &Value, field: &str) -> String {
    match field {
        "source" => object::path_str(object, "source.component").to_owned(),
        _ => generic_field_value(object, field),
    }
}
