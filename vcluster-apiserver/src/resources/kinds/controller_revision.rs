//! Controller revisions (apps/v1): the history stateful sets and daemon sets
//! keep of their templates.

use k8s_openapi::api::apps;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, workloads, Printer};
use serde_json::Value;
use super::fields::{nonnegative, required_because};
use crate::error::FieldCause;

/// The ControllerRevision kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "controllerrevisions",
    "ControllerRevision",
    Typed::of::<apps::v1::ControllerRevision>(),
    &ControllerRevisions,
);

/// The rules of ControllerRevision objects.
#[derive(Debug)]
struct ControllerRevisions;

impl Strategy for ControllerRevisions {
    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        match object.get("data") {
            Some(Value::Object(_)) => {}
            None | Some(Value::Null) => causes.push(required_because("data", "data is mandatory")),
            Some(_) => causes.push(required_because("data", "data must be a valid JSON object")),
        }
        nonnegative(object, "revision", causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::CONTROLLER_REVISION,
            workloads::controller_revision,
        ))
    }
}
