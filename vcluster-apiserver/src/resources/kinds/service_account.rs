//! Service accounts (core/v1); their `token` subresource is served by
//! `crate::auth::tokens` (TokenRequest).

use k8s_openapi::api::core;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::{Strategy, Subresource};
use crate::resources::table::{cluster, columns, Printer};

/// The ServiceAccount kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "serviceaccounts",
    "ServiceAccount",
    Typed::of::<core::v1::ServiceAccount>(),
    &ServiceAccounts,
)
.short_names(&["sa"])
.subresources(&[TOKEN]);

/// The rules of ServiceAccount objects.
#[derive(Debug)]
struct ServiceAccounts;

impl Strategy for ServiceAccounts {
    fn returns_deleted_object(&self) -> bool {
        true
    }

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
