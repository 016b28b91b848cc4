//! Ingresses (networking.k8s.io/v1).

use k8s_openapi::api::networking;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};
use serde_json::{json, Value};
use vcluster_core::validation;
use super::fields::{invalid_raw, required_because};
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
        let default_backend = object::path(object, "spec.defaultBackend").filter(|b| !b.is_null());
        if rules.is_none_or(Vec::is_empty) && default_backend.is_none() {
            causes.push(invalid_raw(
                "spec",
                &rules.map_or("null".to_owned(), |r| Value::Array(r.clone()).to_string()),
                "either `defaultBackend` or `rules` must be specified",
            ));
        }
        if let Some(backend) = default_backend {
            validate_backend(backend, "spec.defaultBackend", causes);
        }
        for (i, rule) in rules.into_iter().flatten().enumerate() {
            validate_host(rule, i, causes);
            if let Some(http) = rule.get("http").filter(|h| !h.is_null()) {
                validate_http(http, &format!("spec.rules[{i}].http"), causes);
            }
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::INGRESS, network::ingress))
    }
}

/// A rule's host is a DNS name (wildcards allowed), not an IP address.
fn validate_host(rule: &Value, i: usize, causes: &mut Vec<FieldCause>) {
    let host = rule.get("host").and_then(Value::as_str).unwrap_or("");
    if host.is_empty() {
        return;
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

/// An HTTP rule has paths, each typed, absolute and clean, with a backend.
fn validate_http(http: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    let paths = http.get("paths").and_then(Value::as_array);
    let paths = paths.map(Vec::as_slice).unwrap_or_default();
    if paths.is_empty() {
        causes.push(FieldCause::required(format!("{at}.paths")));
    }
    for (i, path) in paths.iter().enumerate() {
        let at = format!("{at}.paths[{i}]");
        let Some(kind) = path.get("pathType").and_then(Value::as_str) else {
            causes.push(required_because(
                format!("{at}.pathType"),
                "pathType must be specified",
            ));
            continue;
        };
        let value = path.get("path").and_then(Value::as_str).unwrap_or("");
        let field = format!("{at}.path");
        match kind {
            "Exact" | "Prefix" => {
                if !value.starts_with('/') {
                    causes.push(FieldCause::invalid(field.clone(), value, "must be an absolute path"));
                }
                if !value.is_empty() {
                    for sequence in ["//", "/./", "/../", "%2f", "%2F"] {
                        if value.contains(sequence) {
                            causes.push(FieldCause::invalid(
                                field.clone(),
                                value,
                                format!("must not contain '{sequence}'"),
                            ));
                        }
                    }
                    for suffix in ["/..", "/."] {
                        if value.ends_with(suffix) {
                            causes.push(FieldCause::invalid(
                                field.clone(),
                                value,
                                format!("cannot end with '{suffix}'"),
                            ));
                        }
                    }
                }
            }
            "ImplementationSpecific" => {
                if !value.is_empty() && !value.starts_with('/') {
                    causes.push(FieldCause::invalid(field, value, "must be an absolute path"));
                }
            }
            other => causes.push(FieldCause::not_supported(
                format!("{at}.pathType"),
                other,
                &["Exact", "ImplementationSpecific", "Prefix"],
            )),
        }
        match path.get("backend") {
            Some(backend) => validate_backend(backend, &format!("{at}.backend"), causes),
            None => validate_backend(&Value::Null, &format!("{at}.backend"), causes),
        }
    }
}

/// A backend is a service (named, with a port name or number) or a
/// resource, not both.
fn validate_backend(backend: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    let resource = backend.get("resource").filter(|r| !r.is_null());
    let service = backend.get("service").filter(|s| !s.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => causes.push(FieldCause::invalid(
            at,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(_), None) => {}
        (None, Some(service)) => {
            let name = service.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                causes.push(FieldCause::required(format!("{at}.service.name")));
            } else {
                for why in validation::dns1035_label_errors(name) {
                    causes.push(FieldCause::invalid(format!("{at}.service.name"), name, why));
                }
            }
            let port_name = object::path_str(service, "port.name");
            let number = object::path(service, "port.number")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            match (port_name.is_empty(), number) {
                (false, n) if n != 0 => causes.push(FieldCause::invalid(
                    at,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, _) => {}
                (true, 0) => causes.push(required_because(at, "port name or number is required")),
                (true, n) => {
                    if !(1..=65535).contains(&n) {
                        causes.push(invalid_raw(
                            format!("{at}.service.port.number"),
                            &n.to_string(),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
            }
        }
        (None, None) => causes.push(FieldCause::invalid(
            at,
            "",
            "resource or service backend is required",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::invalid_fields;
    use serde_json::json;

    fn ingress(host: &str, path: Value) -> Value {
        json!({"spec": {"rules": [{"host": host, "http": {"paths": [path]}}]}})
    }

    #[test]
    fn ingresses_need_dns_hosts_and_typed_absolute_paths() {
        let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
        let good = json!({"path": "/", "pathType": "Prefix", "backend": backend});
        assert!(invalid_fields(&KIND, &ingress("*.example.com", good.clone())).is_empty());
        assert_eq!(
            invalid_fields(&KIND, &ingress("Not A Host", good)),
            ["spec.rules[0].host"]
        );
        let untyped = json!({"path": "/", "backend": backend});
        assert_eq!(
            invalid_fields(&KIND, &ingress("a.b", untyped)),
            ["spec.rules[0].http.paths[0].pathType"]
        );
        let relative = json!({"path": "x/../y", "pathType": "Exact", "backend": {"service": {"name": "web"}}});
        assert_eq!(
            invalid_fields(&KIND, &ingress("a.b", relative)),
            [
                "spec.rules[0].http.paths[0].path",
                "spec.rules[0].http.paths[0].path",
                "spec.rules[0].http.paths[0].backend"
            ]
        );
        assert_eq!(invalid_fields(&KIND, &json!({"spec": {}})), ["spec"]);
    }
}
