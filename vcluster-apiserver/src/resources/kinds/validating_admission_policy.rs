//! Validating admission policies (admissionregistration.k8s.io/v1): CEL
//! rules a write must pass, applied through bindings. Stored with
//! upstream's defaults and structural validation and a `status`
//! subresource; the CEL expressions are not compiled here (see
//! docs/apiserver.md), so type checking does not fill `status`.

use k8s_openapi::api::admissionregistration;
use serde_json::{json, Value};

use super::fields::{default_field, obj_mut, required_because};
use super::webhook::{default_match_resources, validate_rule};
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The ValidatingAdmissionPolicy kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "admissionregistration.k8s.io",
    "validatingadmissionpolicies",
    "ValidatingAdmissionPolicy",
    Typed::of::<admissionregistration::v1::ValidatingAdmissionPolicy>(),
    &ValidatingAdmissionPolicies,
)
.categories(&["api-extensions"])
.with_status();

const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const REASONS: &[&str] = &["Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized"];

/// The rules of ValidatingAdmissionPolicy objects.
#[derive(Debug)]
struct ValidatingAdmissionPolicies;

impl Strategy for ValidatingAdmissionPolicies {
    /// Upstream's status strategy keeps the stored metadata.
    fn status_writes_metadata(&self) -> bool {
        false
    }

    fn default(&self, object: &mut Value) {
        let Some(spec) = obj_mut(object, "spec") else {
            return;
        };
        default_field(spec, "failurePolicy", json!("Fail"));
        if let Some(constraints) = spec.get_mut("matchConstraints").and_then(Value::as_object_mut) {
            default_match_resources(constraints);
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let spec = object.get("spec").unwrap_or(&Value::Null);
        match spec.get("failurePolicy").and_then(Value::as_str) {
            None => causes.push(FieldCause::required("spec.failurePolicy")),
            Some(policy) if !FAILURE_POLICIES.contains(&policy) => causes.push(
                FieldCause::not_supported("spec.failurePolicy", policy, FAILURE_POLICIES),
            ),
            Some(_) => {}
        }
        let constraints = spec.get("matchConstraints").filter(|c| c.is_object());
        match constraints {
            None if spec.get("paramKind").is_none_or(Value::is_null) => {
                causes.push(FieldCause::required("spec.matchConstraints"))
            }
            None => {}
            Some(constraints) => {
                let rules = constraints
                    .get("resourceRules")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                if rules.is_empty() {
                    causes.push(FieldCause::required("spec.matchConstraints.resourceRules"));
                }
                for (i, rule) in rules.iter().enumerate() {
                    let at = format!("spec.matchConstraints.resourceRules[{i}]");
                    validate_rule(rule, &at, true, causes);
                }
            }
        }
        let list = |field: &str| {
            spec.get(field)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let validations = list("validations");
        if validations.is_empty() && list("auditAnnotations").is_empty() {
            let why = "validations or auditAnnotations must contain at least one item";
            causes.push(required_because("spec.validations", why));
            causes.push(required_because("spec.auditAnnotations", why));
        }
        for (i, validation) in validations.iter().enumerate() {
            let at = format!("spec.validations[{i}]");
            let expression = validation.get("expression").and_then(Value::as_str).unwrap_or("");
            if expression.trim().is_empty() {
                causes.push(required_because(format!("{at}.expression"), "expression is not specified"));
            }
            if let Some(message) = validation.get("message").and_then(Value::as_str) {
                if message.trim().is_empty() {
                    causes.push(FieldCause::invalid(format!("{at}.message"), message, "must be non-empty if specified"));
                } else if message.contains('\n') {
                    causes.push(FieldCause::invalid(format!("{at}.message"), message, "must not contain line breaks"));
                }
            }
            if let Some(reason) = validation.get("reason").and_then(Value::as_str) {
                if !REASONS.contains(&reason) {
                    causes.push(FieldCause::not_supported(format!("{at}.reason"), reason, REASONS));
                }
            }
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::VALIDATING_POLICY,
            platform::validating_admission_policy,
        ))
    }
}
