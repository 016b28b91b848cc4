//! Discovery documents, generated from the catalog: the legacy per-group
//! documents and the aggregated `APIGroupDiscoveryList` that lets kubectl
//! learn every resource in two requests.

use serde_json::{json, Value};

use crate::resources::{Catalog, ResourceInfo};

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

/// The create-only review resources the server answers outside the
/// catalog (`auth::reviews`): group, plural, kind, namespaced.
const REVIEWS: &[(&str, &str, &str, bool)] = &[
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    (
        "authentication.k8s.io",
        "tokenreviews",
        "TokenReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
];

/// The order kube-apiserver lists its built-in groups in (their API
/// service priorities); other groups (custom resources) follow by name.
const GROUP_ORDER: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "resource.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

/// Sorts group names in [`GROUP_ORDER`], then by name; drops repeats.
fn sort_groups(names: &mut Vec<String>) {
    let rank = |g: &str| {
        GROUP_ORDER
            .iter()
            .position(|o| *o == g)
            .unwrap_or(usize::MAX)
    };
    names.sort_by(|a, b| (rank(a), a).cmp(&(rank(b), b)));
    names.dedup();
}

fn is_review_group(group: &str) -> bool {
    REVIEWS.iter().any(|(g, ..)| *g == group)
}

fn group_versions(catalog: &Catalog, group: &str) -> Vec<String> {
    if is_review_group(group) {
        return vec!["v1".to_owned()];
    }
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
        .chain(REVIEWS.iter().map(|(g, ..)| (*g).to_owned()))
        .collect();
    sort_groups(&mut names);
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
    if is_review_group(group) && version == "v1" {
        let resources: Vec<Value> = REVIEWS
            .iter()
            .filter(|(g, ..)| *g == group)
            .map(|(_, plural, kind, namespaced)| {
                json!({
                    "name": plural,
                    "singularName": kind.to_ascii_lowercase(),
                    "namespaced": namespaced,
                    "kind": kind,
                    "verbs": ["create"],
                })
            })
            .collect();
        return Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": format!("{group}/v1"),
            "resources": resources,
        }));
    }
    if !catalog.serves(group, version) {
        return None;
    }
    let mut resources = Vec::new();
    for info in catalog
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": info.verbs,
            "shortNames": info.short_names,
            "categories": info.categories,
            "storageVersionHash": storage_version_hash(info),
        });
        drop_empty_lists(&mut entry);
        resources.push(entry);
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
            if sub == "eviction" {
                entry["group"] = json!("policy");
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

/// What upstream's discovery publishes so that clients (the storage
/// version migrator, kube-controller-manager) notice when a resource's
/// storage version changes: the first 8 bytes of the SHA-256 of
/// `<group>/<version>/<kind>` of the version objects are stored at, base64.
fn storage_version_hash(info: &ResourceInfo) -> String {
    use base64::Engine as _;
    let version = info
        .custom
        .as_ref()
        .map_or(info.version.as_str(), |c| c.storage_version.as_str());
    let gvk = format!("{}/{}/{}", info.group, version, info.kind);
    let digest = ring::digest::digest(&ring::digest::SHA256, gvk.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// Go omits empty `shortNames` and `categories` (`omitempty`).
fn drop_empty_lists(entry: &mut Value) {
    if let Some(map) = entry.as_object_mut() {
        for field in ["shortNames", "categories"] {
            if map
                .get(field)
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                map.remove(field);
            }
        }
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn aggregated_group(catalog: &Catalog, group: &str) -> Value {
    if is_review_group(group) {
        let resources: Vec<Value> = REVIEWS
            .iter()
            .filter(|(g, ..)| *g == group)
            .map(|(_, plural, kind, namespaced)| {
                json!({
                    "resource": plural,
                    "responseKind": gvk(group, "v1", kind),
                    "scope": if *namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": kind.to_ascii_lowercase(),
                    "verbs": ["create"],
                })
            })
            .collect();
        let version = json!({"version": "v1", "resources": resources, "freshness": "Current"});
        return json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": [version]});
    }
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
                            } else if sub == "eviction" {
                                gvk("policy", "v1", &kind)
                            } else {
                                gvk(group, &version, &kind)
                            };
                            json!({"subresource": sub, "responseKind": response, "verbs": verbs})
                        })
                        .collect();
                    let mut entry = json!({
                        "resource": info.plural,
                        "responseKind": gvk(group, &version, &info.kind),
                        "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": info.singular,
                        "verbs": info.verbs,
                        "shortNames": info.short_names,
                        "categories": info.categories,
                        "subresources": subs,
                    });
                    drop_empty_lists(&mut entry);
                    entry
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
        .chain(
            REVIEWS
                .iter()
                .filter(|_| !core)
                .map(|(g, ..)| (*g).to_owned()),
        )
        .collect();
    sort_groups(&mut names);
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
