//! Mutating webhook configurations (admissionregistration.k8s.io/v1):
//! the webhooks a write is sent to before it is stored. Stored with
//! upstream's defaults and validation; see docs/apiserver.md for which
//! of them this server calls.

use k8s_openapi::api::admissionregistration;
use serde_json::Value;

use super::webhook::{default_webhooks, validate_webhooks, Flavour};
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The MutatingWebhookConfiguration kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "admissionregistration.k8s.io",
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
    Typed::of::<admissionregistration::v1::MutatingWebhookConfiguration>(),
    &MutatingWebhooks,
)
.categories(&["api-extensions"]);

/// The rules of MutatingWebhookConfiguration objects.
#[derive(Debug)]
struct MutatingWebhooks;

impl Strategy for MutatingWebhooks {
    fn default(&self, object: &mut Value) {
        super::fields::track_generation(object);
        default_webhooks(object, Flavour::Mutating);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        validate_webhooks(object, Flavour::Mutating, causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::MUTATING_WEBHOOK,
            platform::webhook_configuration,
        ))
    }
}
