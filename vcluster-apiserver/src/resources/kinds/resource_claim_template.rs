//! Resource claim templates (resource.k8s.io/v1): the claim a pod's
//! `resourceClaims` entry has created for each pod. Stored as upstream
//! does; its spec never changes.

use k8s_openapi::api::resource;
use serde_json::Value;

use super::resource_claim::validate_claim_spec;
use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The ResourceClaimTemplate kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "resource.k8s.io",
    "resourceclaimtemplates",
    "ResourceClaimTemplate",
    Typed::of::<resource::v1::ResourceClaimTemplate>(),
    &ResourceClaimTemplates,
);

/// The rules of ResourceClaimTemplate objects.
#[derive(Debug)]
struct ResourceClaimTemplates;

impl Strategy for ResourceClaimTemplates {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let spec = object.pointer("/spec/spec").unwrap_or(&Value::Null);
        validate_claim_spec(spec, "spec.spec", causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        if old.get("spec") != new.get("spec") {
            causes.push(super::fields::invalid_raw(
                "spec",
                "...",
                "field is immutable",
            ));
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::RESOURCE_CLAIM_TEMPLATE,
            platform::name_and_age,
        ))
    }
}
