//! Events (events.k8s.io/v1): the same stored objects as core events,
//! converted field by field (`crate::resources::events`), with the newer
//! API's field selectors.

use k8s_openapi::api::events as events_api;
use serde_json::Value;

use super::{BuiltinKind};
use crate::resources::events;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};
use crate::error::FieldCause;

/// The Event kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "events.k8s.io",
    "events",
    "Event",
    Typed::of::<events_api::v1::Event>(),
    &EventsV1,
)
.short_names(&["ev"]);

/// The rules of Event objects.
#[derive(Debug)]
struct EventsV1;

impl Strategy for EventsV1 {
    fn default(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            events::default_unset(map);
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        if object.get("eventTime").is_none_or(Value::is_null) {
            causes.push(FieldCause::required("eventTime"));
        }
        let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "Normal" | "Warning") {
            causes.push(FieldCause::invalid(
                "type",
                "",
                format!("has invalid value: {kind}"),
            ));
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        events::FIELD_SELECTORS
    }

    fn field_value(&self, object: &Value, field: &str) -> String {
        super::event::event_field_value(object, field)
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::EVENT, cluster::events_event))
    }
}
