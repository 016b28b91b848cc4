//! Network policies (networking.k8s.io/v1).

use k8s_openapi::api::networking;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};
use serde_json::Value;
use super::fields::invalid_raw;
use crate::error::FieldCause;
use crate::object;

/// The NetworkPolicy kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "networking.k8s.io",
    "networkpolicies",
    "NetworkPolicy",
    Typed::of::<networking::v1::NetworkPolicy>(),
    &NetworkPolicys,
)
.short_names(&["netpol"]);

/// The rules of NetworkPolicy objects.
#[derive(Debug)]
struct NetworkPolicys;

impl Strategy for NetworkPolicys {
    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let types = object::path(object, "spec.policyTypes").and_then(Value::as_array);
        let types = types.map(Vec::as_slice).unwrap_or_default();
        if types.len() > 2 {
            let list: Vec<String> = types.iter().map(|t| t.as_str().unwrap_or("").to_owned()).collect();
            causes.push(invalid_raw(
                "spec.policyTypes",
                &format!("{list:?}").replace(", ", ","),
                "may not specify more than two policyTypes",
            ));
            return;
        }
        for (i, kind) in types.iter().enumerate() {
            let kind = kind.as_str().unwrap_or("");
            if !matches!(kind, "Ingress" | "Egress") {
                causes.push(FieldCause::not_supported(
                    format!("spec.policyTypes[{i}]"),
                    kind,
                    &["Ingress", "Egress"],
                ));
            }
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::NETWORK_POLICY,
            network::network_policy,
        ))
    }
}
