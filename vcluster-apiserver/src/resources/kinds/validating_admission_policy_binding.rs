//! Validating admission policy bindings (admissionregistration.k8s.io/v1):
//! which policy applies to which resources, with which parameters and
//! actions. Stored with upstream's defaults and validation.

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration;
use serde_json::Value;

use super::fields::{obj_mut, require_text, required_because};
use super::webhook::default_match_resources;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The ValidatingAdmissionPolicyBinding kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "admissionregistration.k8s.io",
    "validatingadmissionpolicybindings",
    "ValidatingAdmissionPolicyBinding",
    Typed::of::<admissionregistration::v1::ValidatingAdmissionPolicyBinding>(),
    &PolicyBindings,
)
.categories(&["api-extensions"]);

const ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];

/// The rules of ValidatingAdmissionPolicyBinding objects.
#[derive(Debug)]
struct PolicyBindings;

impl Strategy for PolicyBindings {
    fn default(&self, object: &mut Value) {
        if let Some(resources) = obj_mut(object, "spec")
            .and_then(|spec| spec.get_mut("matchResources"))
            .and_then(Value::as_object_mut)
        {
            default_match_resources(resources);
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        require_text(object, "spec.policyName", causes);
        let actions: Vec<&str> = crate::object::path(object, "spec.validationActions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if actions.is_empty() {
            causes.push(required_because(
                "spec.validationActions",
                "at least one validation action is required",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, action) in actions.iter().enumerate() {
            let at = format!("spec.validationActions[{i}]");
            if !ACTIONS.contains(action) {
                causes.push(FieldCause::not_supported(at, action, ACTIONS));
            } else if !seen.insert(*action) {
                causes.push(FieldCause {
                    reason: "FieldValueDuplicate",
                    field: at,
                    message: format!("Duplicate value: {action:?}"),
                });
            }
        }
        if seen.contains("Deny") && seen.contains("Warn") {
            let shown = format!(
                "[{}]",
                actions.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(",")
            );
            causes.push(super::fields::invalid_raw(
                "spec.validationActions",
                &shown,
                "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
            ));
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::VALIDATING_POLICY_BINDING,
            platform::validating_admission_policy_binding,
        ))
    }
}
