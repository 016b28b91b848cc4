//! Runtime classes (node.k8s.io/v1): a named container runtime
//! configuration (`handler`) pods select with `runtimeClassName`. The
//! handler is fixed once created.

use k8s_openapi::api::node;
use serde_json::Value;
use vcluster_core::validation;

use super::fields::{immutable_text, text};
use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The RuntimeClass kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "node.k8s.io",
    "runtimeclasses",
    "RuntimeClass",
    Typed::of::<node::v1::RuntimeClass>(),
    &RuntimeClasses,
);

/// The rules of RuntimeClass objects.
#[derive(Debug)]
struct RuntimeClasses;

impl Strategy for RuntimeClasses {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let handler = text(object, "handler");
        if handler.is_empty() {
            causes.push(FieldCause::required("handler"));
        }
        for why in validation::dns1123_label_errors(handler) {
            if !handler.is_empty() {
                causes.push(FieldCause::invalid("handler", handler, why));
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        immutable_text(old, new, "handler", causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::RUNTIME_CLASS, platform::runtime_class))
    }
}
