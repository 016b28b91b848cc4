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
