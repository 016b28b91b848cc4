//! Flow schemas (flowcontrol.apiserver.k8s.io/v1): API priority and
//! fairness's classification of requests into priority levels. Upstream's
//! bootstrap schemas exist from the start (`registry/bootstrap`); this
//! server stores them for the clients and tools that read them but does
//! not queue requests by them (see docs/apiserver.md).

use k8s_openapi::api::flowcontrol;
use serde_json::{json, Value};

use super::fields::{obj_mut, one_of, require_text};
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The FlowSchema kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "flowcontrol.apiserver.k8s.io",
    "flowschemas",
    "FlowSchema",
    Typed::of::<flowcontrol::v1::FlowSchema>(),
    &FlowSchemas,
)
.with_status();

/// Matching precedence when none is given.
const DEFAULT_PRECEDENCE: i64 = 1000;

/// The rules of FlowSchema objects.
#[derive(Debug)]
struct FlowSchemas;

impl Strategy for FlowSchemas {
    /// Upstream's status strategy keeps the stored metadata.
    fn status_writes_metadata(&self) -> bool {
        false
    }

    fn default(&self, object: &mut Value) {
        if let Some(spec) = obj_mut(object, "spec") {
            let precedence = spec.get("matchingPrecedence").and_then(Value::as_i64).unwrap_or(0);
            if precedence == 0 {
                spec.insert("matchingPrecedence".into(), json!(DEFAULT_PRECEDENCE));
            }
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        require_text(object, "spec.priorityLevelConfiguration.name", causes);
        if let Some(precedence) = crate::object::path(object, "spec.matchingPrecedence").and_then(Value::as_i64) {
            let why = if precedence > 10000 {
                Some("must not be greater than 10000")
            } else if precedence <= 0 {
                Some("must be a positive value")
            } else {
                None
            };
            if let Some(why) = why {
                causes.push(super::fields::invalid_raw(
                    "spec.matchingPrecedence",
                    &precedence.to_string(),
                    why,
                ));
            }
        }
        one_of(object, "spec.distinguisherMethod.type", &["ByNamespace", "ByUser"], causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::FLOW_SCHEMA, platform::flow_schema))
    }
}
