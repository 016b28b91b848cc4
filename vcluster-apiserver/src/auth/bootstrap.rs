//! The RBAC objects every cluster starts with, as upstream's bootstrap
//! policy has them: `cluster-admin`; `admin`, `edit` and `view`
//! (aggregated from the `system:aggregate-to-*` roles, and `admin` ⊇
//! `edit` ⊇ `view` through the same labels); `system:discovery`,
//! `system:basic-user` and `system:public-info-viewer` bound to every
//! authenticated user; `cluster-admin` bound to `system:masters`.
//!
//! Created when missing on every start; roles annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"` (all of these,
//! unless someone set it to `false`) get their rules reconciled back.

use serde_json::{json, Value};

use super::rbac::{PolicyRule, GROUP};
use super::{AUTHENTICATED, SYSTEM_MASTERS, UNAUTHENTICATED};
use crate::error::ApiError;
use crate::registry::{ObjectAddress, Registry, UpdateTarget, WriteOptions};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";
const AGGREGATE_TO: &str = "rbac.authorization.k8s.io/aggregate-to-";

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> PolicyRule {
    PolicyRule::resources(verbs, &[group], resources)
}

/// Upstream's `system:aggregate-to-view` rules.
fn view_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            "",
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            "",
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        rule(READ, "", &["namespaces"]),
        rule(READ, "discovery.k8s.io", &["endpointslices"]),
        rule(
            READ,
            "apps",
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
            ],
        ),
        rule(
            READ,
            "autoscaling",
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            "batch",
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            "policy",
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            "networking.k8s.io",
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
        rule(READ, "events.k8s.io", &["events"]),
    ]
}

/// Upstream's `system:aggregate-to-edit` rules.
fn edit_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            "",
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], "", &["serviceaccounts"]),
        rule(
            WRITE,
            "",
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], "", &["pods/eviction"]),
        rule(
            WRITE,
            "",
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ],
        ),
        rule(&["create"], "", &["serviceaccounts/token"]),
        rule(
            WRITE,
            "apps",
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, "autoscaling", &["horizontalpodautoscalers"]),
        rule(WRITE, "batch", &["jobs", "cronjobs"]),
        rule(WRITE, "policy", &["poddisruptionbudgets"]),
        rule(
            WRITE,
            "networking.k8s.io",
            &["networkpolicies", "ingresses"],
        ),
        rule(READ_WRITE, "coordination.k8s.io", &["leases"]),
        rule(WRITE, "events.k8s.io", &["events"]),
    ]
}

/// Upstream's `system:aggregate-to-admin` rules.
fn admin_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["create"],
            "authorization.k8s.io",
            &["localsubjectaccessreviews"],
        ),
        rule(READ_WRITE, GROUP, &["roles", "rolebindings"]),
    ]
}

fn metadata(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut all = serde_json::Map::new();
    all.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for (key, value) in labels {
        all.insert((*key).to_owned(), json!(value));
    }
    json!({"name": name, "labels": all, "annotations": {AUTOUPDATE: "true"}})
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> Value {
    json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "ClusterRole",
        "metadata": metadata(name, labels),
        "rules": rules,
    })
}

fn aggregated_role(
    name: &str,
    labels: &[(&str, &str)],
    from: &str,
    rules: Vec<PolicyRule>,
) -> Value {
    let mut role = cluster_role(name, labels, rules);
    role["aggregationRule"] = json!({"clusterRoleSelectors": [
        {"matchLabels": {format!("{AGGREGATE_TO}{from}"): "true"}}
    ]});
    role
}

fn cluster_role_binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": GROUP, "name": g}))
        .collect();
    json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, &[]),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// The bootstrap ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let view = view_rules();
    let mut edit = edit_rules();
    edit.extend(view.iter().cloned());
    let mut admin = admin_rules();
    admin.extend(edit.iter().cloned());
    let to_admin = format!("{AGGREGATE_TO}admin");
    let to_edit = format!("{AGGREGATE_TO}edit");
    let to_view = format!("{AGGREGATE_TO}view");
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![
                PolicyRule::resources(&["*"], &["*"], &["*"]),
                PolicyRule::urls(&["*"], &["*"]),
            ],
        ),
        aggregated_role("admin", &[], "admin", admin),
        aggregated_role("edit", &[(&to_admin, "true")], "edit", edit),
        aggregated_role("view", &[(&to_edit, "true")], "view", view.clone()),
        cluster_role(
            "system:aggregate-to-admin",
            &[(&to_admin, "true")],
            admin_rules(),
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(&to_edit, "true")],
            edit_rules(),
        ),
        cluster_role("system:aggregate-to-view", &[(&to_view, "true")], view),
        cluster_role(
            "system:discovery",
            &[],
            vec![PolicyRule::urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    "authentication.k8s.io",
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![PolicyRule::urls(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
    ]
}

/// The bootstrap ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        cluster_role_binding("cluster-admin", "cluster-admin", &[SYSTEM_MASTERS]),
        cluster_role_binding("system:discovery", "system:discovery", &[AUTHENTICATED]),
        cluster_role_binding("system:basic-user", "system:basic-user", &[AUTHENTICATED]),
        cluster_role_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[AUTHENTICATED, UNAUTHENTICATED],
        ),
    ]
}

/// Creates the bootstrap roles and bindings that are missing and
/// reconciles the rules of auto-updated roles. Safe to run on every start.
pub async fn bootstrap_policy(registry: &Registry) -> Result<(), ApiError> {
    let catalog = registry.catalog();
    let (Some(roles), Some(bindings)) = (
        catalog.get(GROUP, "v1", "clusterroles"),
        catalog.get(GROUP, "v1", "clusterrolebindings"),
    ) else {
        return Err(ApiError::internal("the RBAC resources are not served"));
    };
    for role in cluster_roles() {
        let address = ObjectAddress {
            resource: roles.clone(),
            namespace: None,
            name: crate::object::name(&role).to_owned(),
        };
        match registry.get(&address).await {
            Ok(mut stored) => {
                let autoupdate = stored
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(AUTOUPDATE))
                    .and_then(Value::as_str)
                    != Some("false");
                let same = stored.get("rules") == role.get("rules")
                    && stored.get("aggregationRule") == role.get("aggregationRule");
                if autoupdate && !same {
                    stored["rules"] = role["rules"].clone();
                    match role.get("aggregationRule") {
                        Some(rule) => stored["aggregationRule"] = rule.clone(),
                        None => {
                            if let Some(map) = stored.as_object_mut() {
                                map.remove("aggregationRule");
                            }
                        }
                    }
                    // Another replica sharing the store may have
                    // updated it first (to the same rules).
                    let updated = registry
                        .update(
                            &address,
                            stored,
                            UpdateTarget::Main,
                            &WriteOptions::default(),
                        )
                        .await;
                    match updated {
                        Err(err) if err.reason != "Conflict" => return Err(err),
                        _ => {}
                    }
                }
            }
            Err(err) if err.reason == "NotFound" => ignore_exists(
                registry
                    .create(&roles, None, role, &WriteOptions::default())
                    .await,
            )?,
            Err(err) => return Err(err),
        }
    }
    for binding in cluster_role_bindings() {
        ignore_exists(
            registry
                .create(&bindings, None, binding, &WriteOptions::default())
                .await,
        )?;
    }
    Ok(())
}

fn ignore_exists<T>(result: Result<T, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.reason == "AlreadyExists" => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rbac::Policy;
    use super::super::{Attributes, UserInfo};
    use super::*;

    #[test]
    fn bootstrap_policy_grants_as_upstream() {
        let policy = Policy::from_objects(&cluster_roles(), &[], &cluster_role_bindings(), &[]);
        let anyone = UserInfo::new("alice", &[]);
        for path in ["/api", "/apis/apps/v1", "/openapi/v3", "/version"] {
            assert!(
                policy
                    .authorize(&anyone, &Attributes::non_resource("get", path))
                    .allowed(),
                "{path}"
            );
        }
        let review = Attributes::resource(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
            "",
        );
        assert!(policy.authorize(&anyone, &review).allowed());
        let pods = Attributes::resource("list", "", "pods", "default", "");
        assert!(!policy.authorize(&anyone, &pods).allowed());
        // Every authenticated user: discovery, health, self reviews only.
        let basic = policy.rules_for(&UserInfo::new("x", &[]), "");
        assert!(basic
            .iter()
            .all(|r| r.resources.iter().all(|res| res.starts_with("self"))));
        // admin ⊇ edit ⊇ view, through aggregation.
        let bound = Policy::from_objects(
            &cluster_roles(),
            &[],
            &cluster_role_bindings(),
            &[json!({"metadata": {"name": "a", "namespace": "team"},
                "roleRef": {"kind": "ClusterRole", "name": "admin", "apiGroup": GROUP},
                "subjects": [{"kind": "User", "name": "alice", "apiGroup": GROUP}]})],
        );
        for (verb, group, resource) in [
            ("list", "", "pods"),
            ("create", "apps", "deployments"),
            ("create", GROUP, "rolebindings"),
            ("get", "", "secrets"),
        ] {
            let request = Attributes::resource(verb, group, resource, "team", "");
            assert!(
                bound.authorize(&anyone, &request).allowed(),
                "{verb} {resource}"
            );
        }
        let nodes = Attributes::resource("list", "", "nodes", "", "");
        assert!(!bound.authorize(&anyone, &nodes).allowed());
    }
}
