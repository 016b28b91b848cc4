//! kube-apiserver's audit policy (`audit.k8s.io/v1` `Policy`): which
//! requests are logged and how much of them, decided by the first rule that
//! matches a request (no match: [`Level::None`]).
//!
//! Parsing accepts upstream's YAML or JSON files as they are (what
//! `--audit-policy-file` reads) and refuses what upstream's validation
//! refuses, with the offending rule named. Evaluation is pure: a user and
//! the request's [`Attributes`] in, a [`RequestAuditConfig`] out.

use serde::{Deserialize, Serialize};

use crate::auth::{Attributes, UserInfo};

/// How much of a request is logged, in increasing order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// Not logged.
    #[default]
    None,
    /// Request metadata (user, verb, resource, timestamps, code), no bodies.
    Metadata,
    /// Metadata and the request object.
    Request,
    /// Metadata, the request and the response object.
    RequestResponse,
}

impl Level {
    /// Whether this level logs at least `other`.
    pub fn at_least(self, other: Level) -> bool {
        self >= other
    }
}

/// The stages of a request an event is written at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// As soon as the request is received, before it is served.
    RequestReceived,
    /// When the response headers are sent, for long-running requests
    /// (watches, logs) only.
    ResponseStarted,
    /// When the response is complete.
    ResponseComplete,
    /// When serving the request panicked.
    Panic,
}

/// A group's resources a rule matches (upstream's `GroupResources`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupResources {
    /// The API group (`""`: the core group).
    #[serde(default)]
    pub group: String,
    /// Resources (`pods`, `pods/log`, `*`, `*/status`, `pods/*`); empty:
    /// every resource of the group.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names; empty: any name.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// One rule: what it matches, and at what level it logs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRule {
    /// The level of the requests this rule matches.
    pub level: Level,
    /// User names; empty: anyone.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups, any of which the user must be in; empty: any.
    #[serde(default)]
    pub user_groups: Vec<String>,
    /// Verbs; empty: any.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources; empty: any resource (resource requests only).
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    /// Namespaces (`""` for cluster-scoped); empty: any.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Non-resource paths (exact, `*`, or a prefix ending in `*`); a rule
    /// with any matches non-resource requests only.
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    /// Stages not logged for requests this rule matches.
    #[serde(default)]
    pub omit_stages: Vec<Stage>,
    /// Overrides the policy's `omitManagedFields` for this rule.
    #[serde(default)]
    pub omit_managed_fields: Option<bool>,
}

/// An audit policy file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// `audit.k8s.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `Policy`.
    #[serde(default)]
    pub kind: String,
    /// Ignored (upstream ignores it too).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// The rules, first match wins.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
    /// Stages never logged, whatever the rule.
    #[serde(default)]
    pub omit_stages: Vec<Stage>,
    /// Whether `managedFields` are dropped from logged objects.
    #[serde(default)]
    pub omit_managed_fields: bool,
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("reading the audit policy {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not YAML/JSON of the Policy's shape.
    #[error("the audit policy is not a valid audit.k8s.io/v1 Policy: {0}")]
    Decode(#[from] serde_yaml::Error),
    /// Valid shape, invalid content.
    #[error("invalid audit policy: {0}")]
    Invalid(String),
}

/// What the policy decided for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestAuditConfig {
    /// How much is logged ([`Level::None`]: nothing).
    pub level: Level,
    /// Stages not logged (the rule's and the policy's).
    pub omit_stages: Vec<Stage>,
    /// Whether `managedFields` are dropped from logged objects.
    pub omit_managed_fields: bool,
}

impl RequestAuditConfig {
    /// Whether events of `stage` are written.
    pub fn logs(&self, stage: Stage) -> bool {
        self.level != Level::None && !self.omit_stages.contains(&stage)
    }
}

const API_VERSIONS: &[&str] = &["audit.k8s.io/v1", "audit.k8s.io/v1beta1"];

impl Policy {
    /// Reads a policy file (kube-apiserver's `--audit-policy-file`).
    pub fn load(path: &std::path::Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and validates a policy from YAML or JSON.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = serde_yaml::from_str(text)?;
        policy.validate()?;
        Ok(policy)
    }

    /// A policy logging everything at `level` (for tests and embedders).
    pub fn everything_at(level: Level) -> Self {
        Self {
            api_version: API_VERSIONS[0].to_owned(),
            kind: "Policy".to_owned(),
            rules: vec![PolicyRule {
                level,
                ..PolicyRule::default()
            }],
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |m: String| Err(PolicyError::Invalid(m));
        if !API_VERSIONS.contains(&self.api_version.as_str()) {
            return invalid(format!(
                "apiVersion {:?} is not one of {API_VERSIONS:?}",
                self.api_version
            ));
        }
        if self.kind != "Policy" {
            return invalid(format!("kind {:?} is not \"Policy\"", self.kind));
        }
        if self.rules.is_empty() {
            return invalid("the policy has no rules (nothing would be logged)".into());
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            if !rule.non_resource_urls.is_empty()
                && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
            {
                return invalid(format!(
                    "{at}: rules cannot apply to both regular resources and non-resource URLs"
                ));
            }
            for url in &rule.non_resource_urls {
                let head = url.strip_suffix('*').unwrap_or(url);
                if url != "*" && !url.starts_with('/') {
                    return invalid(format!("{at}.nonResourceURLs: {url:?} must start with /"));
                }
                if head.contains('*') {
                    return invalid(format!(
                        "{at}.nonResourceURLs: {url:?}: * is only allowed at the end"
                    ));
                }
            }
            for (j, gr) in rule.resources.iter().enumerate() {
                if gr.group.contains('/') {
                    return invalid(format!(
                        "{at}.resources[{j}].group: {:?} must be a group, not a group/version",
                        gr.group
                    ));
                }
                if !gr.resource_names.is_empty() && gr.resources.is_empty() {
                    return invalid(format!(
                        "{at}.resources[{j}].resourceNames: requires resources"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The level and stages for a request of `user` described by
    /// `attributes`: the first matching rule's, else [`Level::None`].
    pub fn evaluate(&self, user: &UserInfo, attributes: &Attributes) -> RequestAuditConfig {
        let Some(rule) = self.rules.iter().find(|r| r.matches(user, attributes)) else {
            return RequestAuditConfig {
                omit_managed_fields: self.omit_managed_fields,
                ..RequestAuditConfig::default()
            };
        };
        let mut omit_stages = self.omit_stages.clone();
        for stage in &rule.omit_stages {
            if !omit_stages.contains(stage) {
                omit_stages.push(*stage);
            }
        }
        RequestAuditConfig {
            level: rule.level,
            omit_stages,
            omit_managed_fields: rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
        }
    }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == value)
}

impl PolicyRule {
    /// Whether this rule applies to a request (upstream's `ruleMatches`).
    pub fn matches(&self, user: &UserInfo, attributes: &Attributes) -> bool {
        if !self.users.is_empty() && !has(&self.users, &user.name) {
            return false;
        }
        if !self.user_groups.is_empty() && !user.groups.iter().any(|g| has(&self.user_groups, g)) {
            return false;
        }
        if !self.verbs.is_empty() && !has(&self.verbs, &attributes.verb) {
            return false;
        }
        if attributes.resource_request {
            self.matches_resource(attributes)
        } else {
            self.matches_non_resource(&attributes.path)
        }
    }

    fn matches_non_resource(&self, path: &str) -> bool {
        if !self.resources.is_empty() || !self.namespaces.is_empty() {
            return false;
        }
        self.non_resource_urls.is_empty()
            || self.non_resource_urls.iter().any(|spec| {
                spec == "*"
                    || spec == path
                    || spec
                        .strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            })
    }

    fn matches_resource(&self, a: &Attributes) -> bool {
        if !self.non_resource_urls.is_empty() {
            return false;
        }
        if !self.namespaces.is_empty() && !has(&self.namespaces, &a.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = a.combined_resource();
        self.resources
            .iter()
            .filter(|gr| gr.group == a.api_group)
            .any(|gr| {
                if gr.resources.is_empty() {
                    return true;
                }
                if !gr.resource_names.is_empty() && !has(&gr.resource_names, &a.name) {
                    return false;
                }
                gr.resources.iter().any(|res| {
                    res == "*"
                        || *res == combined
                        || (!a.subresource.is_empty()
                            && res.strip_prefix("*/") == Some(a.subresource.as_str()))
                        || res.strip_suffix("/*") == Some(a.resource.as_str())
                })
            })
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
