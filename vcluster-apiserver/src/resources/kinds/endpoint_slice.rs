//! Endpoint slices (discovery.k8s.io/v1): the addresses behind a service, as
//! newer clients read them.

use k8s_openapi::api::discovery;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};

/// The EndpointSlice kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "discovery.k8s.io",
    "endpointslices",
    "EndpointSlice",
    Typed::of::<discovery::v1::EndpointSlice>(),
    &EndpointSlices,
);

/// The rules of EndpointSlice objects.
#[derive(Debug)]
struct EndpointSlices;

impl Strategy for EndpointSlices {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::ENDPOINT_SLICE,
            network::endpoint_slice,
        ))
    }
}
