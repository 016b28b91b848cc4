//! Validation that turns bad objects into `422 Invalid` with field causes,
//! before anything is stored. Messages follow kube-apiserver's wording so
//! users recognise them.

use serde_json::Value;

use crate::error::FieldCause;
use crate::resources::ResourceInfo;

use super::{labels, metadata, path};

/// Longest DNS-1123 label (namespaces, services, container names).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (most object names).
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Most bytes all annotations of an object may hold (keys and values).
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;
/// Most bytes of data a ConfigMap or Secret may hold.
pub const DATA_MAX_BYTES: usize = 1024 * 1024;

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Why `value` is not a DNS-1123 label, if it is not.
pub fn dns1123_label(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    if bytes.len() > DNS1123_LABEL_MAX {
        return Some(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    let ok = !bytes.is_empty()
        && bytes.iter().all(|&c| is_alnum(c) || c == b'-')
        && is_alnum(bytes[0])
        && is_alnum(bytes[bytes.len() - 1]);
    (!ok).then(|| {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_owned()
    })
}

/// Why `value` is not a DNS-1035 label (service names), if it is not.
pub fn dns1035_label(value: &str) -> Option<String> {
    if value.len() > DNS1123_LABEL_MAX {
        return Some(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    let bytes = value.as_bytes();
    let ok = !bytes.is_empty()
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|&c| is_alnum(c) || c == b'-')
        && is_alnum(bytes[bytes.len() - 1]);
    (!ok).then(|| {
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_owned()
    })
}

/// Why `value` is not a DNS-1123 subdomain, if it is not.
pub fn dns1123_subdomain(value: &str) -> Option<String> {
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        return Some(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    let ok = !value.is_empty()
        && value.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter().all(|&c| is_alnum(c) || c == b'-')
                && is_alnum(b[0])
                && is_alnum(b[b.len() - 1])
        });
    (!ok).then(|| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_owned()
    })
}

/// Why `value` is not a valid path segment name (upstream's
/// `IsValidPathSegmentName`: RBAC objects such as `system:discovery`).
pub fn path_segment_name(value: &str) -> Option<String> {
    match value {
        "" => Some("may not be empty".into()),
        "." => Some("may not be '.'".into()),
        ".." => Some("may not be '..'".into()),
        _ if value.contains('/') => Some("may not contain '/'".into()),
        _ if value.contains('%') => Some("may not contain '%'".into()),
        _ => None,
    }
}

/// How a kind's object names are validated.
fn name_rule(resource: &ResourceInfo) -> fn(&str) -> Option<String> {
    match (resource.group.as_str(), resource.plural.as_str()) {
        ("", "namespaces") => dns1123_label,
        ("", "services") => dns1035_label,
        ("rbac.authorization.k8s.io", _) => path_segment_name,
        _ => dns1123_subdomain,
    }
}

/// Checks a name the way the kind requires (used for URL names too).
pub fn object_name(resource: &ResourceInfo, name: &str) -> Option<String> {
    name_rule(resource)(name)
}

/// Validates an object about to be stored (after defaults were applied).
pub fn validate(resource: &ResourceInfo, object: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    validate_metadata(resource, object, &mut causes);
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Pod") => validate_pod_spec(object.get("spec"), "spec", &mut causes),
        ("", "Service") => validate_service(object, &mut causes),
        ("", "ConfigMap") => validate_data_keys(object, false, &mut causes),
        ("", "Secret") => validate_data_keys(object, true, &mut causes),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            validate_workload(object, &mut causes)
        }
        ("batch", "Job") if path(object, "spec.template").is_none() => {
            causes.push(FieldCause::required("spec.template"));
        }
        _ => {}
    }
    causes
}

fn validate_metadata(resource: &ResourceInfo, object: &Value, causes: &mut Vec<FieldCause>) {
    let name = super::name(object);
    if name.is_empty() {
        causes.push(FieldCause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        });
    } else if let Some(why) = object_name(resource, name) {
        causes.push(FieldCause::invalid("metadata.name", name, why));
    }
    for (key, value) in labels(object) {
        if let Some(why) = label_key(&key) {
            causes.push(FieldCause::invalid("metadata.labels", &key, why));
        }
        if let Some(why) = label_value(&value) {
            causes.push(FieldCause::invalid(
                format!("metadata.labels.{key}"),
                &value,
                why,
            ));
        }
    }
    let annotation_bytes: usize =
        super::string_map(metadata(object).and_then(|m| m.get("annotations")))
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
    if annotation_bytes > ANNOTATIONS_MAX_BYTES {
        causes.push(too_long("metadata.annotations", ANNOTATIONS_MAX_BYTES));
    }
    if let Some(labels) = metadata(object).and_then(|m| m.get("labels")) {
        let bad_shape = !labels.is_null()
            && labels
                .as_object()
                .is_none_or(|map| map.values().any(|v| !v.is_string()));
        if bad_shape {
            causes.push(FieldCause::invalid(
                "metadata.labels",
                &labels.to_string(),
                "labels must be a map of strings",
            ));
        }
    }
}

/// Why a label key is invalid (`[prefix/]name`), if it is.
pub fn label_key(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if let Some(why) = dns1123_subdomain(prefix) {
            return Some(format!("prefix part {why}"));
        }
    }
    qualified_name_part(name).map(|why| format!("name part {why}"))
}

/// Why a label value is invalid, if it is (empty is allowed).
pub fn label_value(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    qualified_name_part(value)
}

fn qualified_name_part(part: &str) -> Option<String> {
    let b = part.as_bytes();
    if b.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    let ok = !b.is_empty()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    (!ok).then(|| {
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_owned()
    })
}

/// Validates a pod spec at `at` (`spec` for pods, `spec.template.spec` for
/// workloads).
fn validate_pod_spec(spec: Option<&Value>, at: &str, causes: &mut Vec<FieldCause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        causes.push(FieldCause::required(format!("{at}.containers")));
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for (i, container) in containers.iter().enumerate() {
        let field = format!("{at}.containers[{i}]");
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            causes.push(FieldCause::required(format!("{field}.name")));
        } else if let Some(why) = dns1123_label(name) {
            causes.push(FieldCause::invalid(format!("{field}.name"), name, why));
        } else if !seen.insert(name) {
            causes.push(FieldCause {
                reason: "FieldValueDuplicate",
                field: format!("{field}.name"),
                message: format!("Duplicate value: {name:?}"),
            });
        }
        if container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            causes.push(FieldCause::required(format!("{field}.image")));
        }
    }
    if let Some(policy) = spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
    {
        if !matches!(policy, "Always" | "OnFailure" | "Never") {
            causes.push(FieldCause::not_supported(
                format!("{at}.restartPolicy"),
                policy,
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
}

fn validate_service(object: &Value, causes: &mut Vec<FieldCause>) {
    let service_type = path(object, "spec.type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if !matches!(
        service_type,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(FieldCause::not_supported(
            "spec.type",
            service_type,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
        return;
    }
    if service_type == "ExternalName" {
        if path(object, "spec.externalName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            causes.push(FieldCause::required("spec.externalName"));
        }
        return;
    }
    let headless = path(object, "spec.clusterIP").and_then(Value::as_str) == Some("None");
    let ports = path(object, "spec.ports").and_then(Value::as_array);
    if ports.is_none_or(Vec::is_empty) && !headless {
        causes.push(FieldCause::required("spec.ports"));
    }
    for (i, port) in ports.into_iter().flatten().enumerate() {
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&number) {
            causes.push(FieldCause::invalid(
                format!("spec.ports[{i}].port"),
                &number.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
        if ports.is_some_and(|p| p.len() > 1)
            && port
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            causes.push(FieldCause::required(format!("spec.ports[{i}].name")));
        }
    }
}

/// `Too long`, as kube-apiserver words it for byte limits.
fn too_long(field: &str, max: usize) -> FieldCause {
    FieldCause {
        reason: "FieldValueTooLong",
        field: field.into(),
        message: format!("Too long: may not be more than {max} bytes"),
    }
}

/// Bytes a base64 value decodes to.
fn decoded_len(encoded: &str) -> usize {
    let padding = encoded.bytes().rev().take_while(|&c| c == b'=').count();
    (encoded.len() / 4 * 3).saturating_sub(padding)
}

/// Keys and total size of the values of a ConfigMap's or Secret's data
/// (`data` holds base64 in Secrets, text in ConfigMaps; `binaryData` is
/// base64).
fn validate_data_keys(object: &Value, base64_data: bool, causes: &mut Vec<FieldCause>) {
    let mut total = 0;
    for field in ["data", "binaryData", "stringData"] {
        let Some(map) = object.get(field).and_then(Value::as_object) else {
            continue;
        };
        let encoded = field == "binaryData" || (field == "data" && base64_data);
        total += map
            .iter()
            .filter_map(|(_, value)| value.as_str())
            .map(|value| {
                if encoded {
                    decoded_len(value)
                } else {
                    value.len()
                }
            })
            .sum::<usize>();
        for key in map.keys() {
            let ok = !key.is_empty()
                && key.len() <= DNS1123_SUBDOMAIN_MAX
                && key
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
            if !ok {
                causes.push(FieldCause::invalid(
                    format!("{field}[{key}]"),
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    if total > DATA_MAX_BYTES {
        causes.push(too_long("data", DATA_MAX_BYTES));
    }
}

fn validate_workload(object: &Value, causes: &mut Vec<FieldCause>) {
    let Some(selector) = path(object, "spec.selector") else {
        causes.push(FieldCause::required("spec.selector"));
        return;
    };
    let match_labels = super::string_map(selector.get("matchLabels"));
    let has_expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    if match_labels.is_empty() && !has_expressions {
        causes.push(FieldCause::invalid(
            "spec.selector",
            "{}",
            "empty selector is invalid for deployment",
        ));
    }
    let template_labels = super::string_map(path(object, "spec.template.metadata.labels"));
    let matches = match_labels
        .iter()
        .all(|(k, v)| template_labels.get(k) == Some(v));
    if !matches {
        causes.push(FieldCause::invalid(
            "spec.template.metadata.labels",
            &format!("{template_labels:?}"),
            "`selector` does not match template `labels`",
        ));
    }
    validate_pod_spec(
        path(object, "spec.template.spec"),
        "spec.template.spec",
        causes,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Catalog;
    use serde_json::json;

    fn pods() -> std::sync::Arc<ResourceInfo> {
        Catalog::builtin().get("", "v1", "pods").expect("pods")
    }

    #[test]
    fn dns_rules_match_kubernetes() {
        assert!(dns1123_label("web-1").is_none());
        assert!(dns1123_label("Web").is_some());
        assert!(dns1123_label("-a").is_some());
        assert!(dns1123_label(&"a".repeat(64)).is_some());
        assert!(dns1035_label("1abc").is_some());
        assert!(dns1035_label("abc1").is_none());
        assert!(dns1123_subdomain("a.b-c.d").is_none());
        assert!(dns1123_subdomain("a..b").is_some());
        assert!(dns1123_subdomain(&"a".repeat(254)).is_some());
        assert!(label_key("app.kubernetes.io/name").is_none());
        assert!(label_key("bad key").is_some());
        assert!(label_value("").is_none());
        assert!(label_value("-x").is_some());
    }

    #[test]
    fn pods_need_named_containers_with_images() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}, {"image": "x"}]}});
        let fields: Vec<String> = validate(&pods(), &pod)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            ["spec.containers[0].image", "spec.containers[1].name"]
        );
        let ok = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        assert!(validate(&pods(), &ok).is_empty());
    }

    #[test]
    fn names_and_labels_are_checked() {
        let pod = json!({"metadata": {"name": "Bad_Name", "labels": {"ok": "1", "a b": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let fields: Vec<String> = validate(&pods(), &pod)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["metadata.name", "metadata.labels"]);
    }

    #[test]
    fn sizes_are_bounded_like_kubernetes() {
        let catalog = Catalog::builtin();
        let config_maps = catalog.get("", "v1", "configmaps").expect("configmaps");
        let secrets = catalog.get("", "v1", "secrets").expect("secrets");
        let fields = |resource: &ResourceInfo, object: Value| -> Vec<String> {
            validate(resource, &object)
                .into_iter()
                .map(|c| c.field)
                .collect()
        };
        let at_limit = "x".repeat(DATA_MAX_BYTES);
        assert!(fields(
            &config_maps,
            json!({"metadata": {"name": "c"}, "data": {"a": at_limit}})
        )
        .is_empty());
        let over = "x".repeat(DATA_MAX_BYTES + 1);
        assert_eq!(
            fields(
                &config_maps,
                json!({"metadata": {"name": "c"}, "data": {"a": over}})
            ),
            ["data"]
        );
        // Secret data is counted decoded: 1 MiB of base64 is 768 KiB.
        let encoded = "QUJD".repeat(DATA_MAX_BYTES / 4);
        assert!(fields(
            &secrets,
            json!({"metadata": {"name": "s"}, "data": {"a": encoded}})
        )
        .is_empty());
        assert_eq!(decoded_len("QUI="), 2);
        let annotations = json!({"metadata": {"name": "c", "annotations": {"a": "x".repeat(ANNOTATIONS_MAX_BYTES)}}});
        assert_eq!(fields(&config_maps, annotations), ["metadata.annotations"]);
    }

    #[test]
    fn deployments_need_a_matching_selector() {
        let catalog = Catalog::builtin();
        let deploy = catalog
            .get("apps", "v1", "deployments")
            .expect("deployments");
        let bad = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let causes = validate(&deploy, &bad);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
    }
}
