//! Bindings: who a RoleBinding or ClusterRoleBinding names, and which role
//! it grants.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;
use serde_json::Value;
use vcluster_core::selector::Selector;

use super::*;
use crate::auth::UserInfo;
use crate::object;

/// A subject of a binding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Subject {
    #[serde(default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) namespace: String,
}

impl Subject {
    pub(super) fn applies_to(&self, user: &UserInfo, binding_namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.in_group(&self.name),
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                !namespace.is_empty()
                    && user.name == format!("system:serviceaccount:{namespace}:{}", self.name)
            }
            _ => false,
        }
    }

    pub(super) fn describe(&self, binding_namespace: &str) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                format!("ServiceAccount \"{}/{namespace}\"", self.name)
            }
            kind => format!("{kind} {:?}", self.name),
        }
    }
}

/// The role a binding grants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RoleRef {
    #[serde(default)]
    pub(super) api_group: String,
    #[serde(default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) name: String,
}

#[derive(Clone, Debug)]
pub(super) struct Binding {
    pub(super) name: String,
    /// Empty for ClusterRoleBindings.
    pub(super) namespace: String,
    pub(super) role_ref: RoleRef,
    pub(super) subjects: Vec<Subject>,
}

impl Binding {
    pub(super) fn parse(object: &Value) -> Self {
        Self {
            name: object::name(object).to_owned(),
            namespace: object::namespace(object).to_owned(),
            role_ref: object
                .get("roleRef")
                .cloned()
                .and_then(|r| serde_json::from_value(r).ok())
                .unwrap_or_default(),
            subjects: object
                .get("subjects")
                .cloned()
                .and_then(|s| serde_json::from_value(s).ok())
                .unwrap_or_default(),
        }
    }

    /// `ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`.
    pub(super) fn describe(&self, subject: &Subject) -> String {
        let binding = if self.namespace.is_empty() {
            format!("ClusterRoleBinding {:?}", self.name)
        } else {
            format!("RoleBinding \"{}/{}\"", self.name, self.namespace)
        };
        format!(
            "{binding} of {} {:?} to {}",
            self.role_ref.kind,
            self.role_ref.name,
            subject.describe(&self.namespace)
        )
    }
}

pub(super) fn rules_of(object: &Value) -> Vec<PolicyRule> {
    object
        .get("rules")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

/// The selectors of a ClusterRole's `aggregationRule`, if it has one.
pub(super) fn aggregation_selectors(object: &Value) -> Option<Vec<Selector>> {
    let selectors = object.pointer("/aggregationRule/clusterRoleSelectors")?;
    let selectors: Vec<LabelSelector> = serde_json::from_value(selectors.clone()).ok()?;
    Some(
        selectors
            .iter()
            .filter_map(|s| Selector::from_label_selector(s).ok())
            .collect(),
    )
}
