//! Rules: what one PolicyRule allows, and whether one set of rules covers
//! another (the heart of escalation prevention).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::*;
use crate::auth::Attributes;

/// One rule of a Role or ClusterRole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs (`get`, `list`, ..., `*`).
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups (`""` is the core group, `*` all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources (`pods`, `pods/status`, `*/status`, `*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// Non-resource paths (`/healthz`, `/apis/*`); only in ClusterRoles.
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

impl PolicyRule {
    /// A resource rule.
    pub fn resources(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Self {
        Self {
            verbs: strings(verbs),
            api_groups: strings(groups),
            resources: strings(resources),
            ..Self::default()
        }
    }

    /// A non-resource rule.
    pub fn urls(verbs: &[&str], urls: &[&str]) -> Self {
        Self {
            verbs: strings(verbs),
            non_resource_urls: strings(urls),
            ..Self::default()
        }
    }

    /// The same rule limited to `names`.
    pub fn named(mut self, names: &[&str]) -> Self {
        self.resource_names = strings(names);
        self
    }

    /// Whether this rule allows the request (upstream's `RuleAllows`).
    pub fn allows(&self, request: &Attributes) -> bool {
        if !(has(&self.verbs, ALL) || has(&self.verbs, &request.verb)) {
            return false;
        }
        if !request.resource_request {
            return self
                .non_resource_urls
                .iter()
                .any(|url| url_matches(url, &request.path));
        }
        (has(&self.api_groups, ALL) || has(&self.api_groups, &request.api_group))
            && self.resource_matches(&request.combined_resource(), &request.subresource)
            && (self.resource_names.is_empty() || has(&self.resource_names, &request.name))
    }

    pub(super) fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|rule| {
            rule == ALL
                || rule == combined
                || (!subresource.is_empty()
                    && rule.len() == subresource.len() + 2
                    && rule.starts_with("*/")
                    && rule.ends_with(subresource))
        })
    }

    /// Splits into rules of one verb and one group/resource/name or URL
    /// (upstream's `BreakdownRule`).
    pub(super) fn breakdown(&self) -> Vec<PolicyRule> {
        let mut out = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    let simple = PolicyRule {
                        verbs: vec![verb.clone()],
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        ..PolicyRule::default()
                    };
                    if self.resource_names.is_empty() {
                        out.push(simple);
                    } else {
                        for name in &self.resource_names {
                            out.push(PolicyRule {
                                resource_names: vec![name.clone()],
                                ..simple.clone()
                            });
                        }
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                out.push(PolicyRule::urls(&[verb], &[url]));
            }
        }
        out
    }

    /// Whether this rule grants everything `sub` does (upstream's `ruleCovers`).
    pub(super) fn covers(&self, sub: &PolicyRule) -> bool {
        let all_in = |set: &[String], items: &[String]| items.iter().all(|i| has(set, i));
        let verbs = has(&self.verbs, ALL) || all_in(&self.verbs, &sub.verbs);
        let groups = has(&self.api_groups, ALL) || all_in(&self.api_groups, &sub.api_groups);
        let resources = has(&self.resources, ALL)
            || sub.resources.iter().all(|path| {
                has(&self.resources, path)
                    || path
                        .split_once('/')
                        .is_some_and(|(_, sub)| has(&self.resources, &format!("*/{sub}")))
            });
        let urls = sub.non_resource_urls.iter().all(|sub_url| {
            self.non_resource_urls
                .iter()
                .any(|owner| url_covers(owner, sub_url))
        });
        // Names do not apply to URLs (`allows` ignores them there too).
        let names = !sub.non_resource_urls.is_empty()
            || self.resource_names.is_empty()
            || (!sub.resource_names.is_empty()
                && all_in(&self.resource_names, &sub.resource_names));
        verbs && groups && resources && urls && names
    }

    /// Upstream's compact form (`{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`).
    pub fn compact(&self) -> String {
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", list(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", list(&self.resources)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", list(&self.resource_names)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("NonResourceURLs:{}", list(&self.non_resource_urls)));
        }
        parts.push(format!("Verbs:{}", list(&self.verbs)));
        format!("{{{}}}", parts.join(", "))
    }
}

/// A non-resource rule URL against a request path: exact, `*`, or a
/// prefix ending in `*`.
pub(super) fn url_matches(rule: &str, path: &str) -> bool {
    rule == ALL
        || rule == path
        || rule
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// Whether an owner's URL grants everything a sub-rule's URL does.
pub(super) fn url_covers(owner: &str, sub: &str) -> bool {
    owner == sub
        || owner
            .strip_suffix('*')
            .is_some_and(|prefix| sub.starts_with(prefix.trim_end_matches('*')))
}

/// The parts of `servant` that `owner` does not grant, compacted (verbs
/// of the same group/resource/name merged); empty when covered.
pub fn uncovered(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<PolicyRule> {
    /// Groups, resources, names, URLs: what missing verbs are merged by.
    type Target = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);
    let mut missing: BTreeMap<Target, BTreeSet<String>> = BTreeMap::new();
    for rule in servant {
        for simple in rule.breakdown() {
            if !owner.iter().any(|o| o.covers(&simple)) {
                let PolicyRule {
                    verbs,
                    api_groups,
                    resources,
                    resource_names,
                    non_resource_urls,
                } = simple;
                missing
                    .entry((api_groups, resources, resource_names, non_resource_urls))
                    .or_default()
                    .extend(verbs);
            }
        }
    }
    missing
        .into_iter()
        .map(
            |((api_groups, resources, resource_names, non_resource_urls), verbs)| PolicyRule {
                verbs: verbs.into_iter().collect(),
                api_groups,
                resources,
                resource_names,
                non_resource_urls,
            },
        )
        .collect()
}

/// Whether `owner` grants everything `servant` does.
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> bool {
    uncovered(owner, servant).is_empty()
}
