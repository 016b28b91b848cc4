//! API services (apiregistration.k8s.io/v1): the registrations of API
//! group versions, local or served by an aggregated server behind a
//! Service. Stored and validated as kube-aggregator's `ValidateAPIService`
//! does, with a `status` subresource, and printed as `kubectl get
//! apiservices` shows them: NAME, SERVICE, AVAILABLE and AGE. Registering
//! one does not proxy anything: this server aggregates no other server.

use jiff::Timestamp;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
use serde_json::Value;
use vcluster_core::validation;

use super::BuiltinKind;
use crate::error::FieldCause;
use crate::object;
use crate::resources::strategy::Strategy;
use crate::resources::table::columns::{self, Column};
use crate::resources::table::format::{age, list_at, name, opt_str};
use crate::resources::table::{Printer, Row};
use crate::resources::Typed;

/// The APIService kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "apiregistration.k8s.io",
    "apiservices",
    "APIService",
    Typed::of::<apiregistration::v1::APIService>(),
    &ApiServices,
)
.categories(&["api-extensions"])
.with_status();

/// The condition statuses a status may hold.
const CONDITION_STATUSES: &[&str] = &["True", "False", "Unknown"];

/// The rules of APIService objects.
#[derive(Debug)]
struct ApiServices;

impl Strategy for ApiServices {
    /// Upstream's status strategy keeps the stored metadata.
    fn status_writes_metadata(&self) -> bool {
        false
    }

    fn name_errors(&self, name: &str) -> Vec<String> {
        // The name must also be `version.group`: checked in `validate`,
        // which sees the spec.
        validation::path_segment_name_errors(name)
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let spec = object.get("spec").unwrap_or(&Value::Null);
        let text = |field: &str| spec.get(field).and_then(Value::as_str).unwrap_or("");
        let (group, version) = (text("group"), text("version"));

        let required_name = format!("{version}.{group}");
        let object_name = object::path(object, "metadata.name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !object_name.is_empty() && object_name != required_name {
            causes.push(FieldCause::invalid(
                "metadata.name",
                object_name,
                format!("must be `spec.version+\".\"+spec.group`: {required_name:?}"),
            ));
        }
        if group.is_empty() && version != "v1" {
            causes.push(FieldCause::required("spec.group"));
        }
        if !group.is_empty() {
            for why in validation::dns1123_subdomain_errors(group) {
                causes.push(FieldCause::invalid("spec.group", group, why));
            }
        }
        for why in validation::dns1035_label_errors(version) {
            causes.push(FieldCause::invalid("spec.version", version, why));
        }
        let priority = |field: &str| spec.get(field).and_then(Value::as_i64).unwrap_or(0);
        let group_priority = priority("groupPriorityMinimum");
        if !(1..=20000).contains(&group_priority) {
            causes.push(FieldCause::invalid(
                "spec.groupPriorityMinimum",
                &group_priority.to_string(),
                "must be positive and less than 20000",
            ));
        }
        let version_priority = priority("versionPriority");
        if !(1..=1000).contains(&version_priority) {
            causes.push(FieldCause::invalid(
                "spec.versionPriority",
                &version_priority.to_string(),
                "must be positive and less than 1000",
            ));
        }

        let ca_bundle = text("caBundle");
        let insecure = spec
            .get("insecureSkipTLSVerify")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match spec.get("service").filter(|s| s.is_object()) {
            None => {
                if !ca_bundle.is_empty() {
                    causes.push(FieldCause::invalid(
                        "spec.caBundle",
                        &format!("{} bytes", base64_len(ca_bundle)),
                        "local APIServices may not have a caBundle",
                    ));
                }
                if insecure {
                    causes.push(FieldCause::invalid(
                        "spec.insecureSkipTLSVerify",
                        "true",
                        "local APIServices may not have insecureSkipTLSVerify",
                    ));
                }
            }
            Some(service) => {
                for field in ["namespace", "name"] {
                    if service
                        .get(field)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                    {
                        causes.push(FieldCause::required(format!("spec.service.{field}")));
                    }
                }
                // An unset port is defaulted to 443.
                let port = service.get("port").and_then(Value::as_i64).unwrap_or(443);
                if !(1..=65535).contains(&port) {
                    causes.push(FieldCause::invalid(
                        "spec.service.port",
                        &port.to_string(),
                        "port is not valid: must be between 1 and 65535, inclusive",
                    ));
                }
                if insecure && !ca_bundle.is_empty() {
                    causes.push(FieldCause::invalid(
                        "spec.insecureSkipTLSVerify",
                        "true",
                        "may not be true if caBundle is present",
                    ));
                }
            }
        }

        let conditions = object::path(object, "status.conditions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (i, condition) in conditions.iter().enumerate() {
            let status = condition
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !CONDITION_STATUSES.contains(&status) {
                causes.push(FieldCause::not_supported(
                    format!("status.conditions[{i}].status"),
                    status,
                    CONDITION_STATUSES,
                ));
            }
        }
    }

    fn default(&self, object: &mut Value) {
        // `service.port` defaults to 443, as upstream's defaulting does.
        if let Some(service) = object
            .get_mut("spec")
            .and_then(|spec| spec.get_mut("service"))
            .and_then(Value::as_object_mut)
        {
            service.entry("port").or_insert(Value::from(443));
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(COLUMNS, print))
    }
}

/// The decoded length of a base64 value (`caBundle` is bytes on the wire).
fn base64_len(encoded: &str) -> usize {
    let padding = encoded.bytes().rev().take_while(|b| *b == b'=').count();
    (encoded.len() / 4 * 3).saturating_sub(padding)
}

/// kube-aggregator's APIService columns.
const COLUMNS: &[Column] = &[
    columns::NAME,
    columns::string(
        "Service",
        "The reference to the service that hosts this API endpoint.",
    ),
    columns::string("Available", "Whether this service is available."),
    columns::AGE,
];

/// One row: the name, the backend, the availability, the age.
fn print(service: &Value, now: Timestamp) -> Row {
    vec![
        name(service).into(),
        backend(service).into(),
        available(service).into(),
        age(service, now).into(),
    ]
    .into()
}

/// `Local`, or the `namespace/name` of the Service behind it.
fn backend(service: &Value) -> String {
    match opt_str(service, &["spec", "service", "name"]) {
        Some(svc) => format!(
            "{}/{svc}",
            opt_str(service, &["spec", "service", "namespace"]).unwrap_or("")
        ),
        None => "Local".to_owned(),
    }
}

/// The Available condition's status, with its reason when not True.
fn available(service: &Value) -> String {
    list_at(service, &["status", "conditions"])
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Available"))
        .map(|c| {
            let status = c.get("status").and_then(Value::as_str).unwrap_or("");
            match c.get("reason").and_then(Value::as_str) {
                Some(reason) if status != "True" => format!("{status} ({reason})"),
                _ => status.to_owned(),
            }
        })
        .unwrap_or_else(|| "Unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::invalid_fields;
    use serde_json::json;

    fn local(name: &str, group: &str, version: &str) -> Value {
        json!({
            "metadata": {"name": name},
            "spec": {"group": group, "version": version, "groupPriorityMinimum": 17000, "versionPriority": 15},
        })
    }

    #[test]
    fn names_are_version_dot_group_and_only_v1_may_have_no_group() {
        assert!(invalid_fields(&KIND, &local("v1.apps", "apps", "v1")).is_empty());
        assert!(invalid_fields(&KIND, &local("v1.", "", "v1")).is_empty());
        assert_eq!(
            invalid_fields(&KIND, &local("apps", "apps", "v1")),
            ["metadata.name"]
        );
        assert_eq!(
            invalid_fields(&KIND, &local("v2.", "", "v2")),
            ["spec.group"]
        );
        assert_eq!(
            invalid_fields(&KIND, &local("V1.Apps", "Apps", "V1")),
            ["spec.group", "spec.version"]
        );
    }

    #[test]
    fn priorities_and_service_references_are_checked() {
        let mut service = local("v1beta1.metrics.k8s.io", "metrics.k8s.io", "v1beta1");
        service["spec"]["groupPriorityMinimum"] = json!(0);
        service["spec"]["versionPriority"] = json!(1001);
        service["spec"]["insecureSkipTLSVerify"] = json!(true);
        assert_eq!(
            invalid_fields(&KIND, &service),
            [
                "spec.groupPriorityMinimum",
                "spec.versionPriority",
                "spec.insecureSkipTLSVerify"
            ]
        );
        service["spec"]["groupPriorityMinimum"] = json!(100);
        service["spec"]["versionPriority"] = json!(100);
        service["spec"]["service"] = json!({"namespace": "kube-system"});
        service["spec"]["caBundle"] = json!("AAAA");
        assert_eq!(
            invalid_fields(&KIND, &service),
            ["spec.service.name", "spec.insecureSkipTLSVerify"]
        );
        service["spec"]["insecureSkipTLSVerify"] = json!(false);
        service["spec"]["service"]["name"] = json!("metrics-server");
        assert!(invalid_fields(&KIND, &service).is_empty());
        service["status"] = json!({"conditions": [{"type": "Available", "status": "Maybe"}]});
        assert_eq!(
            invalid_fields(&KIND, &service),
            ["status.conditions[0].status"]
        );
    }

    #[test]
    fn rows_show_the_backend_and_availability() {
        let mut service = local("v1beta1.metrics.k8s.io", "metrics.k8s.io", "v1beta1");
        assert_eq!(backend(&service), "Local");
        assert_eq!(available(&service), "Unknown");
        service["spec"]["service"] = json!({"namespace": "kube-system", "name": "metrics-server"});
        service["status"] = json!({"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]});
        assert_eq!(backend(&service), "kube-system/metrics-server");
        assert_eq!(available(&service), "False (MissingEndpoints)");
        service["status"]["conditions"][0]["status"] = json!("True");
        assert_eq!(available(&service), "True");
    }
}
