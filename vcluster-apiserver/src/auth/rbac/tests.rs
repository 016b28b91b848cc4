//! RBAC end to end: rules, bindings, aggregation, escalation prevention.

use super::escalation::*;
use super::policy::*;
use super::rules::*;
use super::*;
use crate::auth::{Attributes, UserInfo, SYSTEM_MASTERS};
use proptest::prelude::*;
use serde_json::json;
use serde_json::Value;

fn alice() -> UserInfo {
    UserInfo::new("alice", &["team"])
}

fn pods(verb: &str, namespace: &str) -> Attributes {
    Attributes::resource(verb, "", "pods", namespace, "")
}

#[test]
fn rules_match_verbs_groups_resources_and_names() {
    let rule = PolicyRule::resources(&["get", "list"], &[""], &["pods"]);
    assert!(rule.allows(&pods("list", "team")));
    assert!(!rule.allows(&pods("create", "team")));
    assert!(!rule.allows(&Attributes::resource("list", "apps", "pods", "team", "")));
    assert!(!rule.allows(&Attributes::resource("get", "", "pods/status", "team", "p")));
    let named = PolicyRule::resources(&["get"], &[""], &["configmaps"]).named(&["settings"]);
    assert!(named.allows(&Attributes::resource(
        "get",
        "",
        "configmaps",
        "t",
        "settings"
    )));
    assert!(!named.allows(&Attributes::resource("get", "", "configmaps", "t", "other")));
    assert!(!named.allows(&Attributes::resource("get", "", "configmaps", "t", "")));
    let status = PolicyRule::resources(&["update"], &["*"], &["*/status"]);
    assert!(status.allows(&Attributes::resource(
        "update",
        "apps",
        "deployments/status",
        "t",
        "d"
    )));
    assert!(!status.allows(&Attributes::resource(
        "update",
        "apps",
        "deployments",
        "t",
        "d"
    )));
    let urls = PolicyRule::urls(&["get"], &["/apis/*", "/healthz"]);
    assert!(urls.allows(&Attributes::non_resource("get", "/apis/apps/v1")));
    assert!(urls.allows(&Attributes::non_resource("get", "/healthz")));
    assert!(!urls.allows(&Attributes::non_resource("get", "/healthz/x")));
    assert!(!urls.allows(&Attributes::non_resource("post", "/apis")));
    assert!(!urls.allows(&pods("get", "")));
}

fn policy() -> Policy {
    Policy::from_objects(
        &[
            json!({"metadata": {"name": "view", "labels": {"agg": "admin"}}, "rules": [
                {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}]}),
            json!({"metadata": {"name": "edit-extra", "labels": {"agg": "admin"}}, "rules": [
                {"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}]}),
            json!({"metadata": {"name": "admin"}, "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"agg": "admin"}}]}}),
            json!({"metadata": {"name": "nodes-reader"}, "rules": [
                {"verbs": ["list"], "apiGroups": [""], "resources": ["nodes"]}]}),
        ],
        &[
            json!({"metadata": {"name": "cm", "namespace": "team"}, "rules": [
            {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]}),
        ],
        &[
            json!({"metadata": {"name": "nodes"}, "roleRef": {"kind": "ClusterRole", "name": "nodes-reader", "apiGroup": GROUP},
            "subjects": [{"kind": "Group", "name": "team", "apiGroup": GROUP}]}),
        ],
        &[
            json!({"metadata": {"name": "alice-view", "namespace": "team"}, "roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": GROUP},
                "subjects": [{"kind": "User", "name": "alice", "apiGroup": GROUP}]}),
            json!({"metadata": {"name": "cm", "namespace": "team"}, "roleRef": {"kind": "Role", "name": "cm", "apiGroup": GROUP},
                "subjects": [{"kind": "ServiceAccount", "name": "builder"}]}),
            json!({"metadata": {"name": "bob-admin", "namespace": "ops"}, "roleRef": {"kind": "ClusterRole", "name": "admin", "apiGroup": GROUP},
                "subjects": [{"kind": "User", "name": "bob", "apiGroup": GROUP}]}),
        ],
    )
}

#[test]
fn bindings_grant_in_their_namespace_only() {
    let policy = policy();
    let allowed = policy.authorize(&alice(), &pods("list", "team"));
    assert_eq!(
        allowed,
        Decision::Allow(
            "RBAC: allowed by RoleBinding \"alice-view/team\" of ClusterRole \"view\" to User \"alice\"".into()
        )
    );
    assert!(!policy
        .authorize(&alice(), &pods("list", "default"))
        .allowed());
    assert!(!policy.authorize(&alice(), &pods("list", "")).allowed());
    assert!(!policy
        .authorize(&alice(), &pods("create", "team"))
        .allowed());
    // Cluster-wide through the group.
    let nodes = Attributes::resource("list", "", "nodes", "", "");
    assert!(policy.authorize(&alice(), &nodes).allowed());
    // Service accounts, namespace defaulted from the binding.
    let builder = UserInfo::new("system:serviceaccount:team:builder", &[]);
    let cm = Attributes::resource("get", "", "configmaps", "team", "x");
    assert!(policy.authorize(&builder, &cm).allowed());
    let other = UserInfo::new("system:serviceaccount:ops:builder", &[]);
    assert!(!policy.authorize(&other, &cm).allowed());
    // Masters bypass.
    let admin = UserInfo::new("root", &[SYSTEM_MASTERS]);
    assert!(policy.authorize(&admin, &pods("delete", "x")).allowed());
}

#[test]
fn aggregated_roles_collect_matching_rules() {
    let policy = policy();
    let bob = UserInfo::new("bob", &[]);
    assert!(policy.authorize(&bob, &pods("create", "ops")).allowed());
    assert!(policy.authorize(&bob, &pods("watch", "ops")).allowed());
    assert!(!policy.authorize(&bob, &pods("delete", "ops")).allowed());
}

#[test]
fn escalation_lists_what_is_missing() {
    let policy = policy();
    let grant = [PolicyRule::resources(
        &["get", "list"],
        &[""],
        &["pods", "secrets"],
    )];
    let err = policy
        .confirm_no_escalation(&alice(), "team", &grant)
        .expect_err("secrets are not held");
    assert!(err.starts_with(
        "user \"alice\" (groups=[\"team\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n"
    ), "{err}");
    assert!(
        err.ends_with("{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\", \"list\"]}"),
        "{err}"
    );
    let subset = [PolicyRule::resources(&["get"], &[""], &["pods"])];
    assert!(policy
        .confirm_no_escalation(&alice(), "team", &subset)
        .is_ok());
    assert!(policy
        .confirm_no_escalation(&alice(), "default", &subset)
        .is_err());
}

#[test]
fn covering_follows_upstream() {
    let owner = [
        PolicyRule::resources(&["*"], &[""], &["*/status", "pods"]),
        PolicyRule::urls(&["get"], &["/apis/*"]),
    ];
    assert!(covers(
        &owner,
        &[PolicyRule::resources(&["get"], &[""], &["services/status"])]
    ));
    assert!(covers(
        &owner,
        &[PolicyRule::resources(&["*"], &[""], &["pods"]).named(&["a"])]
    ));
    assert!(!covers(
        &owner,
        &[PolicyRule::resources(&["get"], &[""], &["*"])]
    ));
    assert!(!covers(
        &owner,
        &[PolicyRule::resources(&["get"], &["*"], &["pods"])]
    ));
    assert!(covers(
        &owner,
        &[PolicyRule::urls(&["get"], &["/apis/apps*"])]
    ));
    assert!(!covers(&owner, &[PolicyRule::urls(&["get"], &["/api"])]));
    let named_owner = [PolicyRule::resources(&["get"], &[""], &["pods"]).named(&["a"])];
    assert!(!covers(
        &named_owner,
        &[PolicyRule::resources(&["get"], &[""], &["pods"])]
    ));
}

#[test]
fn forbidden_messages_read_like_upstream() {
    let err = forbidden(&alice(), &pods("list", "default"), "");
    assert_eq!(err.code.as_u16(), 403);
    assert_eq!(
        err.message,
        "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let nodes = Attributes::resource("get", "", "nodes", "", "n1");
    assert_eq!(
        forbidden(&alice(), &nodes, "").message,
        "nodes \"n1\" is forbidden: User \"alice\" cannot get resource \"nodes\" in API group \"\" at the cluster scope"
    );
    let path = Attributes::non_resource("get", "/metrics");
    assert_eq!(
        forbidden(&alice(), &path, "").message,
        "forbidden: User \"alice\" cannot get path \"/metrics\""
    );
    let deploy = Attributes::resource("update", "apps", "deployments/scale", "t", "web");
    assert_eq!(
        forbidden(&alice(), &deploy, "").message,
        "deployments.apps \"web\" is forbidden: User \"alice\" cannot update resource \"deployments/scale\" in API group \"apps\" in the namespace \"t\""
    );
}

#[test]
fn admission_validates_and_prevents_escalation() {
    let policy = policy();
    let catalog = crate::resources::Catalog::builtin();
    let roles = catalog.get(GROUP, "v1", "roles").expect("roles");
    let bindings = catalog
        .get(GROUP, "v1", "rolebindings")
        .expect("rolebindings");
    let role =
        |rules: Value| json!({"metadata": {"name": "r", "namespace": "team"}, "rules": rules});
    let ok = role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]));
    assert!(admit(Some(&policy), &alice(), &roles, &ok, None).is_ok());
    let escalating = role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]));
    let err = admit(Some(&policy), &alice(), &roles, &escalating, None).expect_err("escalates");
    assert_eq!(err.code.as_u16(), 403);
    assert!(
        err.message
            .starts_with("roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"alice\""),
        "{}",
        err.message
    );
    // Without enforcement only validation applies.
    assert!(admit(None, &alice(), &roles, &escalating, None).is_ok());
    let invalid = role(json!([{"verbs": [], "apiGroups": [""], "resources": ["pods"]}]));
    assert_eq!(
        admit(None, &alice(), &roles, &invalid, None).map_err(|e| e.code.as_u16()),
        Err(422)
    );
    let binding = |role: &str| {
        json!({"metadata": {"name": "b", "namespace": "team"},
        "roleRef": {"kind": "ClusterRole", "name": role, "apiGroup": GROUP},
        "subjects": [{"kind": "User", "name": "carol", "apiGroup": GROUP}]})
    };
    assert!(admit(Some(&policy), &alice(), &bindings, &binding("view"), None).is_ok());
    let err =
        admit(Some(&policy), &alice(), &bindings, &binding("admin"), None).expect_err("admin");
    assert_eq!(err.code.as_u16(), 403);
    let missing =
        admit(Some(&policy), &alice(), &bindings, &binding("nope"), None).expect_err("missing");
    assert_eq!(missing.code.as_u16(), 404);
    let changed = admit(
        None,
        &alice(),
        &bindings,
        &binding("view"),
        Some(&binding("admin")),
    );
    assert_eq!(changed.map_err(|e| e.code.as_u16()), Err(422));
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        Just("".to_owned()),
        "[a-c]{1,2}",
        "[a-c]{1,2}/[a-c]{1,2}",
        Just("*/a".to_owned()),
        Just("/a*".to_owned()),
        Just("/a/b".to_owned()),
    ]
}

fn verb() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        Just("get".to_owned()),
        Just("list".to_owned()),
        Just("create".to_owned()),
        Just("delete".to_owned()),
    ]
}

fn rule() -> impl Strategy<Value = PolicyRule> {
    (
        prop::collection::vec(verb(), 0..3),
        prop::collection::vec(word(), 0..3),
        prop::collection::vec(word(), 0..3),
        prop::collection::vec(word(), 0..2),
        prop::collection::vec(word(), 0..2),
    )
        .prop_map(
            |(verbs, api_groups, resources, resource_names, non_resource_urls)| PolicyRule {
                verbs,
                api_groups,
                resources,
                resource_names,
                non_resource_urls,
            },
        )
}

fn request() -> impl Strategy<Value = Attributes> {
    (
        prop_oneof![
            Just("get"),
            Just("list"),
            Just("create"),
            Just("delete"),
            Just("patch")
        ],
        any::<bool>(),
        word(),
        "[a-c]{1,2}",
        prop_oneof![Just(String::new()), "[a-c]{1,2}"],
        prop_oneof![Just(String::new()), "[a-c]{1,2}"],
        prop_oneof![
            Just("/a".to_owned()),
            Just("/a/b".to_owned()),
            Just("/b".to_owned())
        ],
    )
        .prop_map(
            |(verb, resource_request, group, resource, sub, name, path)| Attributes {
                verb: verb.to_owned(),
                resource_request,
                api_group: group,
                resource,
                subresource: sub,
                name,
                path,
                ..Attributes::default()
            },
        )
}

proptest! {
    /// A rule set never grants a verb none of its rules lists.
    #[test]
    fn rules_never_grant_unlisted_verbs(rules in prop::collection::vec(rule(), 0..4), request in request()) {
        if rules.iter().any(|r| r.allows(&request)) {
            prop_assert!(rules.iter().any(|r| r.verbs.iter().any(|v| v == "*" || *v == request.verb)));
        }
    }

    /// What a covered rule set allows, its owner allows too: escalation
    /// checks never let a role grant more than its writer holds.
    #[test]
    fn covered_rules_allow_nothing_more(
        owner in prop::collection::vec(rule(), 0..4),
        servant in prop::collection::vec(rule(), 0..3),
        request in request(),
    ) {
        if covers(&owner, &servant) && servant.iter().any(|r| r.allows(&request)) {
            prop_assert!(owner.iter().any(|r| r.allows(&request)), "owner {owner:?} servant {servant:?}");
        }
    }

    /// Every rule set covers itself.
    #[test]
    fn rules_cover_themselves(rules in prop::collection::vec(rule(), 0..4)) {
        prop_assert!(covers(&rules, &rules));
    }
}
