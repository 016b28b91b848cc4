//! Nodes (core/v1): registered with their status (the syncer imports them
//! from the host), selectable by `spec.unschedulable`.

use k8s_openapi::api::core;
use serde_json::Value;

use super::{BuiltinKind};
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
