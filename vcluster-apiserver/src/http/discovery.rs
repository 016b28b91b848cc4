//! Discovery documents, generated from the catalog: the legacy per-group
//! documents and the aggregated `APIGroupDiscoveryList` that lets kubectl
//! learn every resource in two requests.

use serde_json::{json, Value};

use crate::resources::{Catalog, ResourceInfo, STANDARD_VERBS};

/// The Kubernetes version this server reports and whose API it follows.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "33");

/// The content type of an aggregated discovery answer.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `/version`.
pub fn version() -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0+vcluster-rs.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// `/api`: the legacy group's versions.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    })
}

/// Kubernetes' version priority: GA before beta before alpha, higher
/// numbers first, versions that do not look like Kubernetes versions last
/// (alphabetically). The first is the group's preferred version.
fn version_priority(version: &str) -> (u8, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, String) {
    use std::cmp::Reverse;
    let parsed = version.strip_prefix('v').and_then(|rest| {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((0, major, 0));
        }
        for (class, word) in [(1u8, "beta"), (2u8, "alpha")] {
            if let Some(number) = tail.strip_prefix(word) {
                return Some((class, major, number.parse().ok()?));
            }
        }
        None
    });
    match parsed {
        Some((class, major, minor)) => (class, Reverse(major), Reverse(minor), String::new()),
        None => (3, Reverse(0), Reverse(0), version.to_owned()),
    }
}

fn group_versions(catalog: &Catalog, group: &str) -> Vec<String> {
    let mut versions: Vec<String> = catalog
        .group_versions()
        .into_iter()
        .filter(|(g, _)| g == group)
        .map(|(_, v)| v)
        .collect();
    versions.sort_by_key(|v| version_priority(v));
    versions
}

fn group_document(catalog: &Catalog, group: &str) -> Value {
    let versions: Vec<Value> = group_versions(catalog, group)
        .into_iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`: every named group.
pub fn groups(catalog: &Catalog) -> Value {
    let mut names: Vec<String> = catalog
        .group_versions()
        .into_iter()
        .map(|(g, _)| g)
        .filter(|g| !g.is_empty())
        .collect();
    names.dedup();
    let groups: Vec<Value> = names.iter().map(|g| group_document(catalog, g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, if served.
pub fn group(catalog: &Catalog, group: &str) -> Option<Value> {
    (!group_versions(catalog, group).is_empty()).then(|| group_document(catalog, group))
}

fn subresources(info: &ResourceInfo) -> Vec<(&'static str, String, Vec<&'static str>)> {
    let mut subs = Vec::new();
    if info.status_subresource {
        subs.push(("status", info.kind.clone(), vec!["get", "patch", "update"]));
    }
    if info.scale_subresource {
        subs.push(("scale", "Scale".to_owned(), vec!["get", "patch", "update"]));
    }
    for sub in info.subresources {
        subs.push((sub.name, sub.kind.to_owned(), sub.verbs.to_vec()));
    }
    subs
}

/// `/api/v1` or `/apis/<group>/<version>`, if served.
pub fn resource_list(catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
    if !catalog.serves(group, version) {
        return None;
    }
    let mut resources = Vec::new();
    for info in catalog
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": STANDARD_VERBS,
            "shortNames": info.short_names,
            "categories": info.categories,
        }));
        for (sub, kind, verbs) in subresources(info) {
            let mut entry = json!({
                "name": format!("{}/{sub}", info.plural),
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if sub == "scale" {
                entry["group"] = json!("autoscaling");
                entry["version"] = json!("v1");
            }
            if sub == "token" {
                entry["group"] = json!("authentication.k8s.io");
                entry["version"] = json!("v1");
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn aggregated_group(catalog: &Catalog, group: &str) -> Value {
    let versions: Vec<Value> = group_versions(catalog, group)
        .into_iter()
        .map(|version| {
            let resources: Vec<Value> = catalog
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .map(|info| {
                    let subs: Vec<Value> = subresources(info)
                        .into_iter()
                        .map(|(sub, kind, verbs)| {
                            let response = if sub == "scale" {
                                gvk("autoscaling", "v1", &kind)
                            } else if sub == "token" {
                                gvk("authentication.k8s.io", "v1", &kind)
                            } else {
                                gvk(group, &version, &kind)
                            };
                            json!({"subresource": sub, "responseKind": response, "verbs": verbs})
                        })
                        .collect();
                    json!({
                        "resource": info.plural,
                        "responseKind": gvk(group, &version, &info.kind),
                        "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": info.singular,
                        "verbs": STANDARD_VERBS,
                        "shortNames": info.short_names,
                        "categories": info.categories,
                        "subresources": subs,
                    })
                })
                .collect();
            json!({"version": version, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
}

/// The aggregated document of `/api` (`core` true) or `/apis`.
pub fn aggregated(catalog: &Catalog, core: bool) -> Value {
    let mut names: Vec<String> = catalog
        .group_versions()
        .into_iter()
        .map(|(g, _)| g)
        .filter(|g| g.is_empty() == core)
        .collect();
    names.dedup();
    let items: Vec<Value> = names.iter().map(|g| aggregated_group(catalog, g)).collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_carry_subresources_and_short_names() {
        let catalog = Catalog::builtin();
        let core = resource_list(&catalog, "", "v1").expect("core served");
        let resources = core["resources"].as_array().expect("array");
        let pods = resources
            .iter()
            .find(|r| r["name"] == "pods")
            .expect("pods");
        assert_eq!(pods["shortNames"][0], "po");
        assert!(resources.iter().any(|r| r["name"] == "pods/status"));
        assert!(resource_list(&catalog, "apps", "v2").is_none());
        let apps = resource_list(&catalog, "apps", "v1").expect("apps");
        let scale = apps["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "deployments/scale"))
            .cloned()
            .expect("scale");
        assert_eq!(scale["group"], "autoscaling");
    }

    #[test]
    fn preferred_versions_follow_kubernetes_priority() {
        let mut versions = vec![
            "v1alpha1", "v2beta1", "v1", "foo", "v1beta2", "v2", "v1beta1", "bar",
        ];
        versions.sort_by_key(|v| version_priority(v));
        assert_eq!(
            versions,
            ["v2", "v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1", "bar", "foo"]
        );
    }

    #[test]
    fn aggregated_discovery_splits_core_and_named_groups() {
        let catalog = Catalog::builtin();
        let core = aggregated(&catalog, true);
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let named = aggregated(&catalog, false);
        let names: Vec<&str> = named["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|g| g["metadata"]["name"].as_str())
            .collect();
        assert!(names.contains(&"apps") && names.contains(&"events.k8s.io"));
        assert!(!names.contains(&""));
        let groups = groups(&catalog);
        assert_eq!(groups["groups"].as_array().map(Vec::len), Some(names.len()));
    }
}
