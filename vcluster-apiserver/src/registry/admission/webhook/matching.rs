//! Which requests a webhook sees: its `rules` (operations, groups,
//! versions, resources with `*` and `pods/*` subresources, scope), its
//! `namespaceSelector` and its `objectSelector`, as upstream's
//! `predicates` decide. Shared by everything that matches requests by
//! rules (webhooks and admission policies' `matchConstraints`).

use std::collections::BTreeMap;

use serde_json::Value;
use vcluster_core::selector::Selector;

use super::super::{Attributes, Operation};
use crate::registry::{ObjectAddress, Registry};

/// One `RuleWithOperations`.
#[derive(Clone, Debug, Default)]
pub struct Rule {
    operations: Vec<String>,
    groups: Vec<String>,
    versions: Vec<String>,
    resources: Vec<String>,
    scope: String,
    /// `resourceNames` (admission policies' rules only): empty is any.
    names: Vec<String>,
}

impl Rule {
    /// A rule as stored (defaults applied by the kind on write).
    pub fn parse(rule: &Value) -> Self {
        let list = |field: &str| -> Vec<String> {
            rule.get(field)
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            operations: list("operations"),
            groups: list("apiGroups"),
            versions: list("apiVersions"),
            resources: list("resources"),
            scope: rule
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_owned(),
            names: list("resourceNames"),
        }
    }

    /// Whether the rule's `resourceNames` allow `name` (any when empty).
    pub fn names_match(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }

    /// Whether the request is one the rule names, at the version it was
    /// made at (`matchPolicy: Exact`; `Equivalent`'s match of another
    /// served version of the same resource is not done).
    pub fn matches(&self, attributes: &Attributes<'_>) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        let resource = attributes.resource;
        any(&self.operations, attributes.operation.as_str())
            && any(&self.groups, &resource.group)
            && any(&self.versions, &resource.version)
            && self.resource_matches(&resource.plural, attributes.subresource.unwrap_or(""))
            && self.scope_matches(attributes)
    }

    fn resource_matches(&self, plural: &str, subresource: &str) -> bool {
        self.resources.iter().any(|entry| {
            let (res, sub) = entry.split_once('/').unwrap_or((entry, ""));
            (res == "*" || res == plural) && (sub == "*" || sub == subresource)
        })
    }

    fn scope_matches(&self, attributes: &Attributes<'_>) -> bool {
        // A namespace is cluster-scoped, though its requests name it.
        let is_namespace = attributes.resource.is("", "namespaces");
        let namespaced = attributes.namespace.is_some_and(|ns| !ns.is_empty());
        match self.scope.as_str() {
            "Cluster" => !namespaced || is_namespace,
            "Namespaced" => namespaced && !is_namespace,
            _ => true,
        }
    }
}

/// A stored label selector; an empty or missing one is `None` (matches
/// everything), one that does not parse an error.
pub fn selector(value: Option<&Value>) -> Result<Option<Selector>, String> {
    let Some(value) = value.filter(|v| v.as_object().is_some_and(|m| !m.is_empty())) else {
        return Ok(None);
    };
    let parsed: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let selector = Selector::from_label_selector(&parsed).map_err(|e| e.to_string())?;
    Ok((!selector.is_empty()).then_some(selector))
}

/// Whether any of `rules` matches the request.
pub fn rules_match(rules: &[Rule], attributes: &Attributes<'_>) -> bool {
    rules.iter().any(|rule| rule.matches(attributes))
}

fn labels(object: &Value) -> BTreeMap<String, String> {
    crate::object::path(object, "metadata.labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// `objectSelector`: the new object's or the old one's labels match.
pub fn object_matches(selector: Option<&Selector>, object: &Value, old: Option<&Value>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    (!object.is_null() && selector.matches(&labels(object)))
        || old.is_some_and(|old| selector.matches(&labels(old)))
}

/// `namespaceSelector`: the labels of the request's namespace match (a
/// namespace's own labels for a namespace; cluster-scoped requests always
/// match). `Err` carries why the namespace could not be read.
pub async fn namespace_matches(
    registry: &Registry,
    selector: Option<&Selector>,
    attributes: &Attributes<'_>,
    object: &Value,
) -> Result<bool, String> {
    let Some(selector) = selector else {
        return Ok(true);
    };
    if attributes.resource.is("", "namespaces") {
        let own = if object.is_null() || attributes.operation == Operation::Delete {
            attributes.old.unwrap_or(object)
        } else {
            object
        };
        return Ok(selector.matches(&labels(own)));
    }
    let Some(namespace) = attributes.namespace.filter(|ns| !ns.is_empty()) else {
        return Ok(true);
    };
    let Some(resource) = registry.catalog().by_resource("", "namespaces") else {
        return Ok(true);
    };
    let address = ObjectAddress {
        resource,
        namespace: None,
        name: namespace.to_owned(),
    };
    match registry.get(&address).await {
        Ok(found) => Ok(selector.matches(&labels(&found))),
        // The write fails on its missing namespace later, as upstream's.
        Err(err) if err.code == http::StatusCode::NOT_FOUND => Ok(false),
        Err(err) => Err(format!("namespace {namespace:?}: {}", err.message)),
    }
}
