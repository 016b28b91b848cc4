//! Ingresses (networking.k8s.io/v1).

use k8s_openapi::api::networking;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};

/// The Ingress kind.
pub(super) const KIND: BuiltinKind = BuiltinKind {
    group: "networking.k8s.io",
    version: "v1",
    plural: "ingresses",
    singular: "ingress",
    kind: "Ingress",
    namespaced: true,
    short_names: &["ing"],
    categories: &[],
    status: true,
    scale: false,
    subresources: &[],
    typed: Typed::of::<networking::v1::Ingress>(),
    strategy: &Ingress,
};

/// The rules of Ingress objects.
#[derive(Debug)]
struct Ingress;

impl Strategy for Ingress {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::INGRESS, network::ingress))
    }
}
