//! Endpoints (core/v1): the addresses behind a service, written by the
//! endpoints controller.

use k8s_openapi::api::core;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};

/// The Endpoints kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "endpoints",
    "Endpoints",
    Typed::of::<core::v1::Endpoints>(),
    &EndpointsStrategy,
)
.short_names(&["ep"]);

/// The rules of Endpoints objects.
#[derive(Debug)]
struct EndpointsStrategy;

impl Strategy for EndpointsStrategy {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::ENDPOINTS, network::endpoints))
    }
}
