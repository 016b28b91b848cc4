//! What the admission-registration kinds share: upstream's defaults for
//! webhooks, rules and match constraints, and the validation of a
//! webhook (its name, client configuration, side effects, review
//! versions, timeout and rules).

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use vcluster_core::validation;

use super::fields::{default_field, invalid_raw, not_supported_raw, required_because};
use crate::error::FieldCause;

const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];
const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
const REVIEW_VERSIONS: &str = "v1, v1beta1";
const URL_FORM: &str = "; desired format: https://host[/path]";

/// Which of the two webhook kinds a webhook belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavour {
    Validating,
    Mutating,
}

/// `SetDefaults_{Validating,Mutating}Webhook` for every webhook of a
/// configuration, with its rules and service port.
pub(super) fn default_webhooks(object: &mut Value, flavour: Flavour) {
    let Some(hooks) = object.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return;
    };
    for hook in hooks.iter_mut().filter_map(Value::as_object_mut) {
        default_field(hook, "failurePolicy", json!("Fail"));
        default_field(hook, "matchPolicy", json!("Equivalent"));
        default_field(hook, "namespaceSelector", json!({}));
        default_field(hook, "objectSelector", json!({}));
        default_field(hook, "timeoutSeconds", json!(10));
        if flavour == Flavour::Mutating {
            default_field(hook, "reinvocationPolicy", json!("Never"));
        }
        default_rules(hook, "rules");
        if let Some(service) = hook
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .and_then(Value::as_object_mut)
        {
            default_field(service, "port", json!(443));
        }
    }
}

/// `SetDefaults_Rule`: every rule of `map[field]` applies to all scopes
/// unless it says otherwise.
pub(super) fn default_rules(map: &mut Map<String, Value>, field: &str) {
    if let Some(rules) = map.get_mut(field).and_then(Value::as_array_mut) {
        for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
            default_field(rule, "scope", json!("*"));
        }
    }
}

/// `SetDefaults_MatchResources`: match all namespaces and objects,
/// equivalent requests included, and default the rules' scope.
pub(super) fn default_match_resources(match_resources: &mut Map<String, Value>) {
    default_field(match_resources, "matchPolicy", json!("Equivalent"));
    default_field(match_resources, "namespaceSelector", json!({}));
    default_field(match_resources, "objectSelector", json!({}));
    default_rules(match_resources, "resourceRules");
    default_rules(match_resources, "excludeResourceRules");
}

/// Every webhook of a configuration, as upstream validates it on create.
pub(super) fn validate_webhooks(object: &Value, flavour: Flavour, causes: &mut Vec<FieldCause>) {
    let hooks = object
        .get("webhooks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut names = BTreeSet::new();
    for (i, hook) in hooks.iter().enumerate() {
        let at = format!("webhooks[{i}]");
        let name = text(hook, "name");
        if !name.is_empty() && !names.insert(name) {
            causes.push(FieldCause {
                reason: "FieldValueDuplicate",
                field: format!("{at}.name"),
                message: format!("Duplicate value: {name:?}"),
            });
        }
        validate_webhook(hook, &at, flavour, causes);
    }
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or("")
}

fn validate_webhook(hook: &Value, at: &str, flavour: Flavour, causes: &mut Vec<FieldCause>) {
    fully_qualified_name(text(hook, "name"), &format!("{at}.name"), causes);
    let rules = hook
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        validate_rule(rule, &format!("{at}.rules[{i}]"), true, causes);
    }
    let supported = |field: &str, values: &[&str], causes: &mut Vec<FieldCause>| {
        if let Some(value) = hook.get(field).and_then(Value::as_str) {
            if !values.contains(&value) {
                causes.push(FieldCause::not_supported(
                    format!("{at}.{field}"),
                    value,
                    values,
                ));
            }
        }
    };
    supported("failurePolicy", FAILURE_POLICIES, causes);
    supported("matchPolicy", MATCH_POLICIES, causes);
    match hook.get("sideEffects").and_then(Value::as_str) {
        None => causes.push(required_because(
            format!("{at}.sideEffects"),
            &format!("must specify one of {}", SIDE_EFFECTS.join(", ")),
        )),
        Some(_) => supported("sideEffects", SIDE_EFFECTS, causes),
    }
    if let Some(timeout) = hook.get("timeoutSeconds").and_then(Value::as_i64) {
        if !(1..=30).contains(&timeout) {
            causes.push(invalid_raw(
                format!("{at}.timeoutSeconds"),
                &timeout.to_string(),
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
    }
    review_versions(hook, at, causes);
    if flavour == Flavour::Mutating {
        supported("reinvocationPolicy", REINVOCATION_POLICIES, causes);
    }
    client_config(hook.get("clientConfig").unwrap_or(&Value::Null), at, causes);
}

/// `IsFullyQualifiedName`: a DNS subdomain of at least three segments.
fn fully_qualified_name(name: &str, field: &str, causes: &mut Vec<FieldCause>) {
    if name.is_empty() {
        causes.push(FieldCause::required(field));
        return;
    }
    let errors = validation::dns1123_subdomain_errors(name);
    if !errors.is_empty() {
        for why in errors {
            causes.push(FieldCause::invalid(field, name, why));
        }
    } else if name.split('.').count() < 3 {
        causes.push(FieldCause::invalid(
            field,
            name,
            "should be a domain with at least three segments separated by dots",
        ));
    }
}

fn review_versions(hook: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    let field = format!("{at}.admissionReviewVersions");
    let versions: Vec<&str> = hook
        .get("admissionReviewVersions")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(required_because(
            field,
            &format!("must specify one of {REVIEW_VERSIONS}"),
        ));
        return;
    }
    let mut seen = BTreeSet::new();
    for (i, version) in versions.iter().enumerate() {
        if !seen.insert(*version) {
            causes.push(FieldCause::invalid(
                format!("{field}[{i}]"),
                version,
                "duplicate version",
            ));
            continue;
        }
        for why in validation::dns1035_label_errors(version) {
            causes.push(FieldCause::invalid(format!("{field}[{i}]"), version, why));
        }
    }
    if !versions.iter().any(|v| matches!(*v, "v1" | "v1beta1")) {
        let shown = format!(
            "[]string{{{}}}",
            versions
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        causes.push(invalid_raw(
            field,
            &shown,
            &format!("must include at least one of {REVIEW_VERSIONS}"),
        ));
    }
}

fn client_config(config: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    let field = format!("{at}.clientConfig");
    let url = config.get("url").and_then(Value::as_str);
    let service = config.get("service").filter(|s| s.is_object());
    match (url, service) {
        (Some(url), None) => webhook_url(url, &format!("{field}.url"), causes),
        (None, Some(service)) => {
            for part in ["namespace", "name"] {
                if text(service, part).is_empty() {
                    causes.push(required_because(
                        format!("{field}.service.{part}"),
                        &format!("service {part} is required"),
                    ));
                }
            }
            let path = text(service, "path");
            if !path.is_empty() && !path.starts_with('/') {
                causes.push(FieldCause::invalid(
                    format!("{field}.service.path"),
                    path,
                    "must start with a '/'",
                ));
            }
            if let Some(port) = service.get("port").and_then(Value::as_i64) {
                if !(1..=65535).contains(&port) {
                    causes.push(invalid_raw(
                        format!("{field}.service.port"),
                        &port.to_string(),
                        "port is not valid: must be between 1 and 65535, inclusive",
                    ));
                }
            }
        }
        _ => causes.push(required_because(
            field,
            "exactly one of url or service is required",
        )),
    }
}

/// `ValidateWebhookURL` with HTTPS required.
fn webhook_url(url: &str, field: &str, causes: &mut Vec<FieldCause>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        causes.push(required_because(
            field,
            &format!("url must be a valid URL: parse {url:?}: missing protocol scheme{URL_FORM}"),
        ));
        return;
    };
    if scheme != "https" {
        causes.push(FieldCause::invalid(
            field,
            scheme,
            format!("'https' is the only allowed URL scheme{URL_FORM}"),
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if let Some((user, _)) = authority.split_once('@') {
        causes.push(FieldCause::invalid(
            field,
            user,
            "user information is not permitted in the URL",
        ));
    }
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() {
        causes.push(FieldCause::invalid(
            field,
            host,
            format!("host must be specified{URL_FORM}"),
        ));
    }
    if let Some((_, fragment)) = rest.split_once('#') {
        if !fragment.is_empty() {
            causes.push(FieldCause::invalid(
                field,
                fragment,
                "fragments are not permitted in the URL",
            ));
        }
    }
}

/// A rule (with operations, for webhooks) as `validateRule` checks it.
pub(super) fn validate_rule(
    rule: &Value,
    at: &str,
    with_operations: bool,
    causes: &mut Vec<FieldCause>,
) {
    let list = |field: &str| -> Vec<&str> {
        rule.get(field)
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    if with_operations {
        let operations = list("operations");
        if operations.is_empty() {
            causes.push(FieldCause::required(format!("{at}.operations")));
        }
        for (i, op) in operations.iter().enumerate() {
            if !OPERATIONS.contains(op) {
                causes.push(FieldCause::not_supported(
                    format!("{at}.operations[{i}]"),
                    op,
                    OPERATIONS,
                ));
            }
        }
    }
    for field in ["apiGroups", "apiVersions", "resources"] {
        if list(field).is_empty() {
            causes.push(FieldCause::required(format!("{at}.{field}")));
        }
    }
    if let Some(scope) = rule.get("scope").and_then(Value::as_str) {
        if !SCOPES.contains(&scope) {
            causes.push(not_supported_raw(
                format!("{at}.scope"),
                &format!("{scope:?}"),
                SCOPES,
            ));
        }
    }
}
