//! Every scenario of the suite.

mod admission;
mod behaviour;
mod kinds;

use serde_json::json;

use crate::case::{Scenario, Step, APPLY, JSON, JSON_PATCH, MERGE, STRATEGIC, TABLE};

/// All scenarios, in the order they run.
pub fn all() -> Vec<Scenario> {
    let mut scenarios = kinds::lifecycles();
    scenarios.extend([
        behaviour::pagination(),
        behaviour::watches(),
        behaviour::finalizers(),
        behaviour::delete_options(),
        behaviour::namespace_life(),
        behaviour::subresources(),
        errors(),
        discovery(),
        authorization(),
        custom_resources(),
        admission::admission(),
    ]);
    scenarios.extend(behaviour::propagation());
    scenarios
}

const CMS: &str = "/api/v1/namespaces/{ns}/configmaps";

/// Every error path a client meets: 400, 404, 405, 406, 409, 413, 415, 422.
fn errors() -> Scenario {
    let big = "x".repeat(3 * 1024 * 1024 + 10);
    let cm = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}).to_string()
    };
    Scenario::new(
        "errors",
        vec![
            Step::post("errors/malformed-json", CMS, "{not json"),
            Step::post("errors/wrong-kind", CMS, r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}"#),
            Step::post("errors/wrong-version", CMS, r#"{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"s"}}"#),
            Step::post("errors/no-kind", CMS, r#"{"apiVersion":"v1","metadata":{"name":"s"}}"#),
            Step::post("errors/no-name", CMS, r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#),
            Step::post("errors/namespace-mismatch", CMS, r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s","namespace":"elsewhere"}}"#),
            Step::post("errors/unknown-field-strict", format!("{CMS}?fieldValidation=Strict"), r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"strict"},"bogus":1}"#),
            Step::post("errors/unknown-field-warn", format!("{CMS}?fieldValidation=Warn"), r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"warned"},"bogus":1}"#),
            Step::post("errors/bad-field-validation", format!("{CMS}?fieldValidation=Loud"), cm("loud")),
            Step::post("errors/duplicate-field-strict", format!("{CMS}?fieldValidation=Strict"), r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"bogus":1,"data":{"a":"1","a":"2"}}"#),
            Step::post("errors/duplicate-field-warn", format!("{CMS}?fieldValidation=Warn"), r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup-warned","name":"dup-warned"},"data":{"a":"1"}}"#),
            Step::post("errors/bad-dry-run", format!("{CMS}?dryRun=Some"), cm("dry")),
            Step::post("errors/too-large", CMS, format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"k":"{big}"}}}}"#)).status_only(),
            Step::post("errors/unsupported-media", CMS, cm("media")).body("text/plain", cm("media")),
            Step::get("errors/not-acceptable", format!("{CMS}/none")).accept("text/html"),
            Step::get("errors/unknown-resource", "/api/v1/namespaces/{ns}/widgets"),
            Step::get("errors/unknown-group", "/apis/example.com/v1/widgets"),
            Step::get("errors/unknown-version", "/apis/apps/v7/deployments"),
            Step::get("errors/missing-object", format!("{CMS}/none")),
            Step::get("errors/missing-namespace-object", "/api/v1/namespaces/diff-absent/configmaps/none"),
            Step::get("errors/unknown-path", "/nonsense/path"),
            Step::post("errors/method-not-allowed", format!("{CMS}/none"), cm("none")),
            Step::patch("errors/patch-missing", format!("{CMS}/none"), MERGE, "{}"),
            Step::patch("errors/patch-bad-type", format!("{CMS}/none"), "application/xml", "<x/>"),
            Step::post("errors/create-target", CMS, cm("target")).setup(),
            Step::patch("errors/patch-malformed", format!("{CMS}/target"), MERGE, "{oops"),
            Step::patch("errors/patch-json-bad-op", format!("{CMS}/target"), JSON_PATCH, r#"[{"op":"jump","path":"/data"}]"#),
            Step::patch("errors/patch-json-missing-path", format!("{CMS}/target"), JSON_PATCH, r#"[{"op":"remove","path":"/data/absent"}]"#),
            Step::patch("errors/patch-strategic-list", format!("{CMS}/target"), STRATEGIC, "[1,2]"),
            Step::patch("errors/patch-change-name", format!("{CMS}/target"), MERGE, r#"{"metadata":{"name":"renamed"}}"#),
            Step::patch("errors/apply-no-manager", format!("{CMS}/target"), APPLY, cm("target")),
            Step::patch("errors/apply-malformed", format!("{CMS}/target?fieldManager=x"), APPLY, "a: [b"),
            Step::put("errors/update-name-mismatch", format!("{CMS}/target"), cm("other")),
            Step::put("errors/update-missing", format!("{CMS}/none"), cm("none")),
            Step::put("errors/update-no-rv", format!("{CMS}/target"), cm("target")),
            Step::get("errors/bad-limit", format!("{CMS}?limit=-1")),
            Step::get("errors/bad-timeout", format!("{CMS}?watch=1&timeoutSeconds=abc")),
            Step::get("errors/bad-label-selector", format!("{CMS}?labelSelector=a%20b")),
            Step::get("errors/bad-field-selector", format!("{CMS}?fieldSelector=metadata.name")),
            Step::post("errors/invalid-labels", CMS, r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"lbl","labels":{"bad key!":"v"}}}"#),
            Step::post("errors/invalid-annotations", CMS, r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ann","annotations":{"":"v"}}}"#),
            Step::post("errors/long-name", CMS, cm(&"a".repeat(254))),
        ],
    )
}

/// Discovery documents and the server's non-resource paths.
fn discovery() -> Scenario {
    let mut steps = vec![
        Step::get("discovery/api", "/api"),
        Step::get("discovery/apis", "/apis"),
        Step::get("discovery/api-v1", "/api/v1"),
        Step::get("discovery/version", "/version").status_only(),
        Step::get("discovery/healthz", "/healthz"),
        Step::get("discovery/livez", "/livez"),
        Step::get("discovery/readyz", "/readyz"),
        Step::get("discovery/openapi-v2", "/openapi/v2").status_only(),
        Step::get("discovery/openapi-v3", "/openapi/v3").status_only(),
        Step::get(
            "discovery/openapi-v3-unknown-group",
            "/openapi/v3/apis/policy.example.com/v1",
        ),
        Step::get("discovery/aggregated", "/apis").accept(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        ),
        Step::get("discovery/aggregated-core", "/api").accept(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        ),
    ];
    for group in [
        "apps/v1",
        "batch/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "events.k8s.io/v1",
        "networking.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
        "storage.k8s.io/v1",
        "apiextensions.k8s.io/v1",
        "authorization.k8s.io/v1",
        "authentication.k8s.io/v1",
        "policy/v1",
        "autoscaling/v2",
        "scheduling.k8s.io/v1",
    ] {
        let name = group.replace('/', "-");
        steps.push(Step::get(
            format!("discovery/group-{name}"),
            format!("/apis/{}", group.split('/').next().unwrap_or_default()),
        ));
        steps.push(Step::get(
            format!("discovery/resources-{name}"),
            format!("/apis/{group}"),
        ));
    }
    Scenario::new("discovery", steps)
}

/// RBAC as users see it: denials with upstream's words, and the review
/// APIs that `kubectl auth can-i` and `whoami` use.
fn authorization() -> Scenario {
    let review = |verb: &str, resource: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
               "spec": {"resourceAttributes": {"namespace": "{ns}", "verb": verb, "resource": resource}}})
        .to_string()
    };
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "alice-reads"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]});
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles";
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings";
    let ssar = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    Scenario::new(
        "authorization",
        vec![
            Step::get("rbac/list-denied", CMS).by_user("alice"),
            Step::get("rbac/get-denied", format!("{CMS}/x")).by_user("alice"),
            Step::get("rbac/cluster-list-denied", "/api/v1/nodes").by_user("alice"),
            Step::get("rbac/all-namespaces-denied", "/api/v1/pods").by_user("alice"),
            Step::post("rbac/create-denied", CMS, r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#).by_user("alice"),
            Step::get("rbac/subresource-denied", "/api/v1/namespaces/{ns}/pods/x/log").by_user("alice"),
            Step::get("rbac/group-denied", "/apis/apps/v1/namespaces/{ns}/deployments").by_user("alice"),
            Step::get("rbac/nonresource-denied", "/metrics").by_user("alice"),
            Step::get("rbac/discovery-allowed", "/api").by_user("alice"),
            Step::post("rbac/role", roles, role.to_string()),
            Step::post("rbac/binding", bindings, binding.to_string()),
            Step::get("rbac/list-allowed", CMS).by_user("alice").until(200),
            Step::delete("rbac/delete-still-denied", format!("{CMS}/x")).by_user("alice"),
            Step::post("rbac/review-allowed", ssar, review("list", "configmaps")).by_user("alice"),
            Step::post("rbac/review-denied", ssar, review("delete", "configmaps")).by_user("alice"),
            Step::post("rbac/review-admin", ssar, review("delete", "pods")),
            Step::post("rbac/review-as-table", ssar, review("delete", "pods")).accept("application/json;as=Table;v=v1;g=meta.k8s.io"),
            Step::post("rbac/review-invalid", ssar, r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{}}"#),
            Step::post("rbac/rules-review", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","spec":{"namespace":"{ns}"}}"#).by_user("alice").status_only(),
            Step::post("rbac/whoami", "/apis/authentication.k8s.io/v1/selfsubjectreviews", r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#).by_user("alice"),
            Step::post("rbac/escalation-denied", roles, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "escalate"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}).to_string()).by_user("alice"),
        ],
    )
}

/// A CRD with a schema, defaults and pruning, and its custom resources.
fn custom_resources() -> Scenario {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.diff.example.com"},
        "spec": {
            "group": "diff.example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                        "color": {"type": "string", "enum": ["red", "blue"]},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    }, "required": ["color"]},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                }}},
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                ],
            }],
        },
    });
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let crd_item = format!("{crds}/widgets.diff.example.com");
    let widgets = "/apis/diff.example.com/v1/namespaces/{ns}/widgets";
    let widget = |name: &str, spec: serde_json::Value| {
        json!({"apiVersion": "diff.example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}).to_string()
    };
    Scenario::new(
        "custom-resources",
        vec![
            Step::post("crd/create", crds, crd.to_string()),
            Step::post("crd/create-again", crds, crd.to_string()),
            Step::get("crd/established", &crd_item).setup(),
            Step::get("crd/list-empty", widgets).until(200),
            Step::post("crd/create-defaulted", widgets, widget("one", json!({"color": "red"}))),
            Step::post("crd/create-pruned", widgets, widget("two", json!({"color": "blue", "unknown": 1, "size": 4}))),
            Step::post("crd/create-below-minimum", widgets, widget("bad-size", json!({"color": "red", "size": 0}))),
            Step::post("crd/create-not-in-enum", widgets, widget("bad-color", json!({"color": "green"}))),
            Step::post("crd/create-missing-required", widgets, widget("no-color", json!({"size": 2}))),
            Step::post("crd/create-wrong-type", widgets, widget("wrong-type", json!({"color": "red", "size": "big"}))),
            Step::get("crd/get", format!("{widgets}/one")),
            Step::get("crd/get-table", format!("{widgets}/one")).accept(TABLE),
            Step::get("crd/list-table", widgets).accept(TABLE),
            Step::patch("crd/patch-merge", format!("{widgets}/one"), MERGE, r#"{"spec":{"size":5}}"#),
            Step::patch("crd/patch-strategic-refused", format!("{widgets}/one"), STRATEGIC, r#"{"spec":{"size":6}}"#),
            Step::patch("crd/patch-json", format!("{widgets}/one"), JSON_PATCH, r#"[{"op":"add","path":"/spec/tags","value":["a"]}]"#),
            Step::patch("crd/apply", format!("{widgets}/three?fieldManager=diff"), APPLY, widget("three", json!({"color": "blue"}))),
            Step::post("crd/create-unknown-meta-warn", format!("{widgets}?fieldValidation=Warn"), r#"{"apiVersion":"diff.example.com/v1","kind":"Widget","metadata":{"name":"five","unknownMeta":"x"},"spec":{"color":"red"}}"#),
            Step::patch("crd/apply-unknown-strict", format!("{widgets}/four?fieldManager=diff&fieldValidation=Strict"), APPLY, "apiVersion: diff.example.com/v1\nkind: Widget\nmetadata:\n  name: four\nunknownField: x\nspec:\n  color: red\n"),
            Step::patch("crd/apply-unknown-meta-strict", format!("{widgets}/four?fieldManager=diff&fieldValidation=Strict"), APPLY, "apiVersion: diff.example.com/v1\nkind: Widget\nmetadata:\n  name: four\n  unknownMeta: x\nspec:\n  color: red\n"),
            Step::patch("crd/apply-duplicate-strict", format!("{widgets}/four?fieldManager=diff&fieldValidation=Strict"), APPLY, "apiVersion: diff.example.com/v1\nkind: Widget\nmetadata:\n  name: four\nspec:\n  color: red\n  color: blue\n"),
            Step::patch("crd/apply-unknown-ignore", format!("{widgets}/four?fieldManager=diff&fieldValidation=Ignore"), APPLY, "apiVersion: diff.example.com/v1\nkind: Widget\nmetadata:\n  name: four\nunknownField: x\nspec:\n  color: red\n"),
            Step::patch("crd/apply-unknown-warn", format!("{widgets}/four?fieldManager=diff&fieldValidation=Warn"), APPLY, "apiVersion: diff.example.com/v1\nkind: Widget\nmetadata:\n  name: four\nunknownField: x\nspec:\n  color: red\n"),
            Step::patch("crd/status", format!("{widgets}/one/status"), MERGE, r#"{"status":{"ready":true}}"#),
            Step::patch("crd/status-ignores-spec", format!("{widgets}/one/status"), MERGE, r#"{"spec":{"size":9}}"#),
            Step::patch("crd/status-ignores-metadata", format!("{widgets}/one/status"), MERGE, r#"{"metadata":{"labels":{"tier":"web"}}}"#),
            Step::get("crd/all-namespaces", "/apis/diff.example.com/v1/widgets?limit=1").status_only(),
            Step::get("crd/group-discovery", "/apis/diff.example.com/v1"),
            Step::delete("crd/delete-widget", format!("{widgets}/two")),
            Step::post("crd/invalid-crd", crds, json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "wrong.name"}, "spec": {"group": "diff.example.com", "names": {"plural": "things", "kind": "Thing"}, "scope": "Namespaced", "versions": []}}).to_string()),
            Step::delete("crd/delete", &crd_item),
            Step::get("crd/resources-gone", widgets).until(404),
            Step::post("crd/json-content", widgets, widget("late", json!({"color": "red"}))).body(JSON, widget("late", json!({"color": "red"}))),
        ],
    )
}
