//! Behaviour across objects and requests: pagination, watches, finalizers,
//! the three propagation policies, namespace deletion, subresources.

use serde_json::json;

use crate::case::{Scenario, Step, MERGE, TABLE};

fn config_map(name: &str, extra: serde_json::Value) -> String {
    let mut object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"page": "yes"}},
        "data": {"k": "v"},
    });
    if let (Some(object), serde_json::Value::Object(extra)) = (object.as_object_mut(), extra) {
        for (k, v) in extra {
            object.insert(k, v);
        }
    }
    object.to_string()
}

const CMS: &str = "/api/v1/namespaces/{ns}/configmaps";

pub fn pagination() -> Scenario {
    let mut steps: Vec<Step> = (1..=5)
        .map(|i| {
            Step::post(
                format!("paging/create-{i}"),
                CMS,
                config_map(&format!("cm-{i}"), json!({})),
            )
            .setup()
        })
        .collect();
    steps.extend([
        Step::get(
            "paging/first-page",
            format!("{CMS}?labelSelector=page%3Dyes&limit=2"),
        ),
        Step::get(
            "paging/second-page",
            format!("{CMS}?labelSelector=page%3Dyes&limit=2&continue={{continue}}"),
        ),
        Step::get(
            "paging/last-page",
            format!("{CMS}?labelSelector=page%3Dyes&limit=2&continue={{continue}}"),
        ),
        Step::get(
            "paging/limit-zero",
            format!("{CMS}?labelSelector=page%3Dyes&limit=0"),
        ),
        Step::get(
            "paging/bad-continue",
            format!("{CMS}?limit=2&continue=not-a-token"),
        ),
        Step::get(
            "paging/table-page",
            format!("{CMS}?labelSelector=page%3Dyes&limit=3"),
        )
        .accept(TABLE),
        Step::get(
            "paging/selector-in",
            format!("{CMS}?labelSelector=page%20in%20(yes,no)"),
        ),
        Step::get(
            "paging/selector-notin",
            format!("{CMS}?labelSelector=page%20notin%20(yes)"),
        ),
        Step::get(
            "paging/selector-exists",
            format!("{CMS}?labelSelector=page"),
        ),
        Step::get(
            "paging/selector-not-exists",
            format!("{CMS}?labelSelector=!page"),
        ),
        Step::get(
            "paging/selector-invalid",
            format!("{CMS}?labelSelector=page%3D%3D%3Dyes"),
        ),
        Step::get(
            "paging/field-selector-name",
            format!("{CMS}?fieldSelector=metadata.name%3Dcm-2"),
        ),
        Step::get(
            "paging/field-selector-ne",
            format!("{CMS}?fieldSelector=metadata.name!%3Dcm-2&labelSelector=page%3Dyes"),
        ),
        Step::get(
            "paging/field-selector-unknown",
            format!("{CMS}?fieldSelector=data.k%3Dv"),
        ),
        Step::get(
            "paging/all-namespaces-selected",
            "/api/v1/configmaps?labelSelector=page%3Dyes&limit=1",
        ),
    ]);
    Scenario::new("paging", steps)
}

pub fn watches() -> Scenario {
    let watch = |name: &str, query: &str| {
        Step::get(name, format!("{CMS}?watch=1&timeoutSeconds=1&{query}"))
    };
    Scenario::new(
        "watch",
        vec![
            Step::get("watch/list-before", CMS),
            Step::post("watch/create-a", CMS, config_map("a", json!({}))).setup(),
            Step::post(
                "watch/create-b",
                CMS,
                config_map(
                    "b",
                    json!({"metadata": {"name": "b", "labels": {"page": "no"}}}),
                ),
            )
            .setup(),
            Step::patch(
                "watch/modify-a",
                format!("{CMS}/a"),
                MERGE,
                r#"{"data":{"k":"changed"}}"#,
            )
            .setup(),
            Step::delete("watch/delete-b", format!("{CMS}/b")).setup(),
            Step::get("watch/list-for-rv", format!("{CMS}?labelSelector=nothing")).setup(),
            Step::post("watch/create-c", CMS, config_map("c", json!({}))).setup(),
            watch("watch/from-list", "resourceVersion={rv}"),
            watch(
                "watch/selected",
                "labelSelector=page%3Dyes&resourceVersion=0",
            ),
            watch(
                "watch/field-selected",
                "fieldSelector=metadata.name%3Dc&resourceVersion=0",
            ),
            watch(
                "watch/bookmarks",
                "allowWatchBookmarks=true&resourceVersion=0&labelSelector=page%3Dyes",
            ),
            watch("watch/bad-rv", "resourceVersion=not-a-number"),
            Step::get(
                "watch/single-object",
                format!("{CMS}?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Da"),
            ),
        ],
    )
}

pub fn finalizers() -> Scenario {
    let item = format!("{CMS}/held");
    Scenario::new(
        "finalizers",
        vec![
            Step::post(
                "finalizers/create",
                CMS,
                config_map(
                    "held",
                    json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
                ),
            ),
            Step::delete("finalizers/delete", &item),
            Step::get("finalizers/get-terminating", &item),
            Step::patch(
                "finalizers/patch-while-terminating",
                &item,
                MERGE,
                r#"{"data":{"k":"late"}}"#,
            ),
            Step::patch(
                "finalizers/add-new-finalizer-refused",
                &item,
                MERGE,
                r#"{"metadata":{"finalizers":["example.com/hold","example.com/other"]}}"#,
            ),
            Step::delete("finalizers/delete-again", &item),
            Step::patch(
                "finalizers/release",
                &item,
                MERGE,
                r#"{"metadata":{"finalizers":null}}"#,
            ),
            Step::get("finalizers/gone", &item).until(404),
            Step::post(
                "finalizers/create-bad",
                CMS,
                config_map(
                    "bad-finalizer",
                    json!({"metadata": {"name": "bad-finalizer", "finalizers": ["no-domain"]}}),
                ),
            ),
        ],
    )
}

fn owned(name: &str) -> String {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "{uid}",
            "blockOwnerDeletion": true,
        }]},
    })
    .to_string()
}

pub fn propagation() -> Vec<Scenario> {
    ["Foreground", "Background", "Orphan"]
        .into_iter()
        .map(|policy| {
            let p = policy.to_ascii_lowercase();
            Scenario::new(
                format!("propagation-{p}"),
                vec![
                    Step::post(format!("propagation/{p}/owner"), CMS, config_map("owner", json!({}))),
                    Step::post(format!("propagation/{p}/dependent"), CMS, owned("dependent")),
                    Step::delete(
                        format!("propagation/{p}/delete-owner"),
                        format!("{CMS}/owner"),
                    )
                    .body(
                        "application/json",
                        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy}).to_string(),
                    ),
                    Step::get(format!("propagation/{p}/owner-gone"), format!("{CMS}/owner")).until(404).status_only(),
                    Step::get(
                        format!("propagation/{p}/dependent-after"),
                        format!("{CMS}/dependent"),
                    )
                    .until(if policy == "Orphan" { 200 } else { 404 }),
                ],
            )
        })
        .collect()
}

pub fn delete_options() -> Scenario {
    let item = format!("{CMS}/opts");
    Scenario::new(
        "delete-options",
        vec![
            Step::post("delete-options/create", CMS, config_map("opts", json!({}))).setup(),
            Step::delete("delete-options/wrong-uid", &item).body(
                "application/json",
                r#"{"preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}}"#,
            ),
            Step::delete("delete-options/wrong-rv", &item).body(
                "application/json",
                r#"{"preconditions":{"resourceVersion":"1"}}"#,
            ),
            Step::delete("delete-options/bad-policy", &item)
                .body("application/json", r#"{"propagationPolicy":"Sometimes"}"#),
            Step::delete("delete-options/negative-grace", &item)
                .body("application/json", r#"{"gracePeriodSeconds":-5}"#),
            Step::delete(
                "delete-options/grace-zero",
                format!("{item}?gracePeriodSeconds=0"),
            ),
            Step::post(
                "delete-options/create-many-1",
                CMS,
                config_map("many-1", json!({})),
            )
            .setup(),
            Step::post(
                "delete-options/create-many-2",
                CMS,
                config_map("many-2", json!({})),
            )
            .setup(),
            Step::delete(
                "delete-options/collection",
                format!("{CMS}?labelSelector=page%3Dyes"),
            ),
            Step::get(
                "delete-options/collection-gone",
                format!("{CMS}?labelSelector=page%3Dyes"),
            )
            .until(200),
        ],
    )
}

pub fn namespace_life() -> Scenario {
    let ns = "/api/v1/namespaces/diff-doomed";
    Scenario::new(
        "namespace-life",
        vec![
            Step::post(
                "namespaces/create",
                "/api/v1/namespaces",
                r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"diff-doomed","labels":{"team":"a"}}}"#,
            ),
            Step::post(
                "namespaces/create-again",
                "/api/v1/namespaces",
                r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"diff-doomed"}}"#,
            ),
            Step::get("namespaces/get", ns),
            Step::get("namespaces/get-table", ns).accept(TABLE),
            Step::get(
                "namespaces/list-selected",
                "/api/v1/namespaces?labelSelector=team%3Da",
            ),
            Step::post(
                "namespaces/create-invalid",
                "/api/v1/namespaces",
                r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"Not_Valid"}}"#,
            ),
            Step::post(
                "namespaces/object-in-missing",
                "/api/v1/namespaces/diff-nowhere/configmaps",
                config_map("x", json!({})),
            ),
            Step::post(
                "namespaces/object-in-doomed",
                "/api/v1/namespaces/diff-doomed/configmaps",
                config_map("x", json!({})),
            )
            .setup(),
            Step::patch(
                "namespaces/status-writes-metadata",
                format!("{ns}/status"),
                MERGE,
                r#"{"metadata":{"annotations":{"patched":"yes"}},"status":{"conditions":[{"type":"StatusUpdate","status":"True","reason":"E2E"}]}}"#,
            ),
            Step::delete("namespaces/delete", ns),
            Step::post(
                "namespaces/create-in-terminating",
                "/api/v1/namespaces/diff-doomed/configmaps",
                config_map("y", json!({})),
            )
            .status_only(),
            Step::delete("namespaces/delete-default", "/api/v1/namespaces/default"),
            Step::delete(
                "namespaces/delete-kube-system",
                "/api/v1/namespaces/kube-system",
            ),
            Step::get("namespaces/gone", ns).until(404),
            Step::put(
                "namespaces/finalize-missing",
                format!("{ns}/finalize"),
                r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"diff-doomed"}}"#,
            ),
        ],
    )
}

const DEPLOYS: &str = "/apis/apps/v1/namespaces/{ns}/deployments";

pub fn subresources() -> Scenario {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}},
    });
    let item = format!("{DEPLOYS}/web");
    Scenario::new(
        "subresources",
        vec![
            Step::post("subresources/create", DEPLOYS, deployment.to_string()).setup(),
            Step::get("subresources/scale", format!("{item}/scale")),
            Step::patch(
                "subresources/scale-patch",
                format!("{item}/scale"),
                MERGE,
                r#"{"spec":{"replicas":3}}"#,
            ),
            Step::patch(
                "subresources/scale-negative",
                format!("{item}/scale"),
                MERGE,
                r#"{"spec":{"replicas":-1}}"#,
            ),
            Step::get("subresources/status", format!("{item}/status")),
            Step::patch(
                "subresources/status-patch",
                format!("{item}/status"),
                MERGE,
                r#"{"status":{"replicas":1,"observedGeneration":1}}"#,
            ),
            Step::patch(
                "subresources/status-ignores-spec",
                format!("{item}/status"),
                MERGE,
                r#"{"spec":{"replicas":7}}"#,
            ),
            // Metadata comes with a status write for most built-in kinds;
            // a deployment's labels do not.
            Step::patch(
                "subresources/status-writes-metadata",
                format!("{item}/status"),
                MERGE,
                r#"{"metadata":{"labels":{"tier":"web"},"annotations":{"seen":"yes"}}}"#,
            ),
            Step::patch(
                "subresources/spec-ignores-status",
                &item,
                MERGE,
                r#"{"status":{"replicas":9}}"#,
            ),
            Step::get("subresources/after", &item),
            Step::get("subresources/unknown", format!("{item}/nonsense")),
            Step::get(
                "subresources/scale-missing",
                format!("{DEPLOYS}/absent/scale"),
            ),
        ],
    )
}
