//! Ingresses (networking.k8s.io/v1).

use k8s_openapi::api::networking;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};
use serde_json::{json, Value};
use vcluster_core::validation;
use crate::error::FieldCause;
use crate::object;

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
    fn initial_status(&self, _object: &Value) -> Option<Value> {
        Some(json!({"loadBalancer": {}}))
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let rules = object::path(object, "spec.rules").and_then(Value::as_array);
        for (i, rule) in rules.into_iter().flatten().enumerate() {
            let host = rule.get("host").and_then(Value::as_str).unwrap_or("");
            if host.is_empty() {
                continue;
            }
            let field = format!("spec.rules[{i}].host");
            if host.parse::<std::net::IpAddr>().is_ok() {
                causes.push(FieldCause::invalid(
                    field.clone(),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            let errors = if host.contains('*') {
                validation::wildcard_dns1123_subdomain_errors(host)
            } else {
                validation::dns1123_subdomain_errors(host)
            };
            for why in errors {
                causes.push(FieldCause::invalid(field.clone(), host, why));
            }
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::INGRESS, network::ingress))
    }
}
