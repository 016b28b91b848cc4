//! Priority level configurations (flowcontrol.apiserver.k8s.io/v1): API
//! priority and fairness's concurrency shares and queues. Upstream's
//! bootstrap levels exist from the start (`registry/bootstrap`); stored
//! with upstream's defaults, not enforced (see docs/apiserver.md).

use k8s_openapi::api::flowcontrol;
use serde_json::{json, Map, Value};

use super::fields::{default_field, obj_mut, text};
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The PriorityLevelConfiguration kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "flowcontrol.apiserver.k8s.io",
    "prioritylevelconfigurations",
    "PriorityLevelConfiguration",
    Typed::of::<flowcontrol::v1::PriorityLevelConfiguration>(),
    &PriorityLevels,
)
.with_status();

const TYPES: &[&str] = &["Exempt", "Limited"];

/// The rules of PriorityLevelConfiguration objects.
#[derive(Debug)]
struct PriorityLevels;

/// Sets a zero or missing integer field to `value` (Go's `== 0` default).
fn default_nonzero(map: &mut Map<String, Value>, field: &str, value: i64) {
    if map.get(field).and_then(Value::as_i64).unwrap_or(0) == 0 {
        map.insert(field.into(), json!(value));
    }
}

impl Strategy for PriorityLevels {
    /// Upstream's status strategy keeps the stored metadata.
    fn status_writes_metadata(&self) -> bool {
        false
    }

    fn default(&self, object: &mut Value) {
        let Some(spec) = obj_mut(object, "spec") else {
            return;
        };
        if let Some(exempt) = spec.get_mut("exempt").and_then(Value::as_object_mut) {
            default_field(exempt, "nominalConcurrencyShares", json!(0));
            default_field(exempt, "lendablePercent", json!(0));
        }
        if let Some(limited) = spec.get_mut("limited").and_then(Value::as_object_mut) {
            default_field(limited, "nominalConcurrencyShares", json!(30));
            default_field(limited, "lendablePercent", json!(0));
            if let Some(queuing) = limited
                .get_mut("limitResponse")
                .and_then(|r| r.get_mut("queuing"))
                .and_then(Value::as_object_mut)
            {
                default_nonzero(queuing, "handSize", 8);
                default_nonzero(queuing, "queues", 64);
                default_nonzero(queuing, "queueLengthLimit", 50);
            }
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let kind = text(object, "spec.type");
        let set = |field: &str| crate::object::path(object, &format!("spec.{field}")).is_some_and(|v| !v.is_null());
        match kind {
            "Limited" => {
                if !set("limited") {
                    causes.push(FieldCause::required("spec.limited"));
                }
                if set("exempt") {
                    causes.push(FieldCause::forbidden("spec.exempt", "must be nil if the type is Limited"));
                }
            }
            "Exempt" => {
                if set("limited") {
                    causes.push(FieldCause::forbidden("spec.limited", "must be nil if the type is not Limited"));
                }
            }
            other => causes.push(FieldCause::not_supported("spec.type", other, TYPES)),
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::PRIORITY_LEVEL, platform::priority_level))
    }
}
