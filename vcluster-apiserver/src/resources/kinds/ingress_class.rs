//! Ingress classes (networking.k8s.io/v1): which controller implements
//! an Ingress's `ingressClassName`, and which class is the default. The
//! controller is fixed once created.

use k8s_openapi::api::networking;
use serde_json::Value;

use super::fields::{immutable_text, text};
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The IngressClass kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "networking.k8s.io",
    "ingressclasses",
    "IngressClass",
    Typed::of::<networking::v1::IngressClass>(),
    &IngressClasses,
);

/// Longest controller name upstream accepts.
const MAX_CONTROLLER: usize = 250;

/// The rules of IngressClass objects.
#[derive(Debug)]
struct IngressClasses;

impl Strategy for IngressClasses {
    fn default(&self, object: &mut Value) {
        if let Some(params) = object
            .pointer_mut("/spec/parameters")
            .and_then(Value::as_object_mut)
        {
            super::fields::default_field(params, "scope", serde_json::json!("Cluster"));
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let controller = text(object, "spec.controller");
        if controller.is_empty() {
            causes.push(FieldCause::required("spec.controller"));
        } else if controller.len() > MAX_CONTROLLER {
            causes.push(FieldCause::too_long("spec.controller", MAX_CONTROLLER));
        }
        if let Some(params) = crate::object::path(object, "spec.parameters").filter(|p| p.is_object()) {
            for field in ["kind", "name"] {
                if params.get(field).and_then(Value::as_str).unwrap_or("").is_empty() {
                    causes.push(FieldCause::required(format!("spec.parameters.{field}")));
                }
            }
            if let Some(scope) = params.get("scope").and_then(Value::as_str) {
                let namespace = params.get("namespace").and_then(Value::as_str).unwrap_or("");
                match scope {
                    "Namespace" if namespace.is_empty() => causes.push(FieldCause::required(
                        "spec.parameters.namespace",
                    )),
                    "Cluster" if !namespace.is_empty() => causes.push(FieldCause::forbidden(
                        "spec.parameters.namespace",
                        "`parameters.scope` is set to 'Cluster'",
                    )),
                    "Namespace" | "Cluster" => {}
                    other => causes.push(FieldCause::not_supported(
                        "spec.parameters.scope",
                        other,
                        &["Cluster", "Namespace"],
                    )),
                }
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        immutable_text(old, new, "spec.controller", causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::INGRESS_CLASS, platform::ingress_class))
    }
}
