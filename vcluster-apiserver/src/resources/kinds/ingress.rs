//! Ingresses (networking.k8s.io/v1).

use k8s_openapi::api::networking;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};

/// The Ingress kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "networking.k8s.io",
    "ingresses",
    "Ingress",
    Typed::of::<networking::v1::Ingress>(),
    &Ingress,
)
.short_names(&["ing"])
.with_status();

/// The rules of Ingress objects.
#[derive(Debug)]
struct Ingress;

impl Strategy for Ingress {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::INGRESS, network::ingress))
    }
}
