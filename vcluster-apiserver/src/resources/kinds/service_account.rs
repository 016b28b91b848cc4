//! Service accounts (core/v1); their `token` subresource is served by
//! `crate::auth::tokens` (TokenRequest).

use k8s_openapi::api::core;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::{Strategy, Subresource};
use crate::resources::table::{cluster, columns, Printer};

/// The ServiceAccount kind.
pub(super) const KIND: BuiltinKind = BuiltinKind {
    group: "",
    version: "v1",
    plural: "serviceaccounts",
    singular: "serviceaccount",
    kind: "ServiceAccount",
    namespaced: true,
    short_names: &["sa"],
    categories: &[],
    status: false,
    scale: false,
    subresources: &[TOKEN],
    typed: Typed::of::<core::v1::ServiceAccount>(),
    strategy: &ServiceAccounts,
};

/// The rules of ServiceAccount objects.
#[derive(Debug)]
struct ServiceAccounts;

impl Strategy for ServiceAccounts {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::SERVICE_ACCOUNT,
            cluster::service_account,
        ))
    }
}

/// `serviceaccounts/token`: served by `crate::auth::tokens`
/// (authentication.k8s.io/v1 TokenRequest).
const TOKEN: Subresource = Subresource {
    name: "token",
    kind: "TokenRequest",
    verbs: &["create"],
};
