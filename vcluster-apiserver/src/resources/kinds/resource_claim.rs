//! Resource claims (resource.k8s.io/v1): a request for devices that
//! pods share. Stored with its `status` subresource (where an allocator
//! would record the allocation); its spec never changes. No allocator
//! runs here, so a claim stays `pending`.

use k8s_openapi::api::resource;
use serde_json::Value;

use super::fields::text;
use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The ResourceClaim kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "resource.k8s.io",
    "resourceclaims",
    "ResourceClaim",
    Typed::of::<resource::v1::ResourceClaim>(),
    &ResourceClaims,
)
.with_status();

/// The rules of ResourceClaim objects.
#[derive(Debug)]
pub(super) struct ResourceClaims;

impl Strategy for ResourceClaims {
    /// Upstream's status strategy keeps the stored metadata.
    fn status_writes_metadata(&self) -> bool {
        false
    }

    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        validate_claim_spec(object.get("spec").unwrap_or(&Value::Null), "spec", causes);
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
        Some(Printer::new(columns::RESOURCE_CLAIM, platform::resource_claim))
    }
}

/// A claim spec's requests: each named uniquely, each asking for
/// `exactly` or `firstAvailable` devices of a class.
pub(super) fn validate_claim_spec(spec: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    let requests = spec
        .pointer("/devices/requests")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut names = std::collections::BTreeSet::new();
    for (i, request) in requests.iter().enumerate() {
        let field = format!("{at}.devices.requests[{i}]");
        let name = text(request, "name");
        if name.is_empty() {
            causes.push(FieldCause::required(format!("{field}.name")));
        } else if !names.insert(name) {
            causes.push(FieldCause {
                reason: "FieldValueDuplicate",
                field: format!("{field}.name"),
                message: format!("Duplicate value: {name:?}"),
            });
        }
        let exactly = request.get("exactly").filter(|e| e.is_object());
        let first = request.get("firstAvailable").filter(|f| !f.is_null());
        match (exactly, first) {
            (None, None) => causes.push(super::fields::required_because(
                field,
                "exactly one of `exactly` or `firstAvailable` is required",
            )),
            (Some(exactly), _) if text(exactly, "deviceClassName").is_empty() => {
                causes.push(FieldCause::required(format!("{field}.exactly.deviceClassName")));
            }
            _ => {}
        }
    }
}
