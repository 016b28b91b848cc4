//! Bindings (core/v1, create-only): the older form of `pods/binding`,
//! posted to the namespace's `bindings` collection with the pod's name
//! as the binding's. Both assign a pod to a node the same way.

use k8s_openapi::api::core;

use super::BuiltinKind;
use crate::resources::strategy::GENERIC;
use crate::resources::Typed;

/// The Binding kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "bindings",
    "Binding",
    Typed::of::<core::v1::Binding>(),
    &GENERIC,
)
.verbs(&["create"]);
