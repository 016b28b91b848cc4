//! Validating webhook configurations (admissionregistration.k8s.io/v1):
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

/// The ValidatingWebhookConfiguration kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "admissionregistration.k8s.io",
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
    Typed::of::<admissionregistration::v1::ValidatingWebhookConfiguration>(),
    &ValidatingWebhooks,
)
.categories(&["api-extensions"]);

/// The rules of ValidatingWebhookConfiguration objects.
#[derive(Debug)]
struct ValidatingWebhooks;

impl Strategy for ValidatingWebhooks {
    fn default(&self, object: &mut Value) {
        super::fields::track_generation(object);
        default_webhooks(object, Flavour::Validating);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        validate_webhooks(object, Flavour::Validating, causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::VALIDATING_WEBHOOK,
            platform::webhook_configuration,
        ))
    }
}
