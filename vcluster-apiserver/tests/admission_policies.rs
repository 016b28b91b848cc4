//! ValidatingAdmissionPolicy with CEL, as kube-apiserver enforces it:
//! policies and bindings created through kube-rs, writes refused (Deny) or
//! answered with a warning (Warn) through kube-rs and the real kubectl.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use kube::Api;
use serde_json::{json, Value};
use vcluster_testkit::cluster::Cluster;

async fn policy(cluster: &Cluster, name: &str, spec: Value) {
    let api: Api<ValidatingAdmissionPolicy> = cluster.cluster_api();
    let policy = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
        .expect("a policy");
    api.create(&PostParams::default(), &policy)
        .await
        .expect("create the policy");
}

async fn binding(cluster: &Cluster, name: &str, spec: Value) {
    let api: Api<ValidatingAdmissionPolicyBinding> = cluster.cluster_api();
    let binding = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
        .expect("a binding");
    api.create(&PostParams::default(), &binding)
        .await
        .expect("create the binding");
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            },
        },
    }))
    .expect("a deployment")
}

fn deployments_rule() -> Value {
    json!({"resourceRules": [{
        "apiGroups": ["apps"], "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"], "resources": ["deployments"],
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_denies_with_its_message_and_variables() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team").await;
    policy(
        &cluster,
        "replicas",
        json!({
            "matchConstraints": deployments_rule(),
            "variables": [
                {"name": "replicas", "expression": "object.spec.replicas"},
                {"name": "odd", "expression": "variables.replicas % 2 == 1"},
            ],
            "validations": [
                {"expression": "variables.replicas > 1",
                 "messageExpression": "'wants replicas > 1, got ' + string(variables.replicas)"},
                {"expression": "variables.odd", "message": "an odd count please", "reason": "Forbidden"},
                {"expression": "namespaceObject.metadata.name == 'team'"},
            ],
        }),
    )
    .await;
    binding(
        &cluster,
        "replicas-binding",
        json!({"policyName": "replicas", "validationActions": ["Deny"]}),
    )
    .await;
    let api: Api<Deployment> = cluster.api("team");
    let refused = api
        .create(&PostParams::default(), &deployment("one", 1))
        .await;
    let Err(kube::Error::Api(status)) = refused else {
        panic!("expected a denial, got {refused:?}");
    };
    assert_eq!(status.code, 422);
    assert_eq!(status.reason, "Invalid");
    assert_eq!(
        status.message,
        "deployments.apps \"one\" is forbidden: ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding' denied request: wants replicas > 1, got 1"
    );
    assert!(api.get_opt("one").await.expect("read").is_none());

    // The second validation's own reason and message.
    let refused = api
        .create(&PostParams::default(), &deployment("two", 2))
        .await;
    let Err(kube::Error::Api(status)) = refused else {
        panic!("expected a denial, got {refused:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert!(
        status
            .message
            .ends_with("denied request: an odd count please"),
        "{}",
        status.message
    );

    api.create(&PostParams::default(), &deployment("three", 3))
        .await
        .expect("three replicas pass");
    // Outside the policy's rules: a configmap is not looked at.
    let configmaps: Api<ConfigMap> = cluster.api("team");
    let cm = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("cm");
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .expect("not matched");

    // kubectl shows the denial as upstream words it.
    let stderr = cluster
        .kubectl_err(&[
            "create",
            "deployment",
            "kubectl-one",
            "-n",
            "team",
            "--image=nginx",
            "--replicas=1",
        ])
        .await;
    assert!(
        stderr.contains("ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding' denied request: wants replicas > 1, got 1"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warn_binding_admits_with_a_warning_and_params_come_from_the_binding() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team").await;
    // The parameter: the name nobody may use, in a configmap.
    let configmaps: Api<ConfigMap> = cluster.api("team");
    let params = serde_json::from_value(
        json!({"metadata": {"name": "rules"}, "data": {"forbidden": "bad"}}),
    )
    .expect("params");
    configmaps
        .create(&PostParams::default(), &params)
        .await
        .expect("params");
    policy(
        &cluster,
        "names",
        json!({
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": deployments_rule(),
            "validations": [{"expression": "object.metadata.name != params.data.forbidden", "message": "that name is taken"}],
        }),
    )
    .await;
    binding(
        &cluster,
        "names-warn",
        json!({
            "policyName": "names",
            "validationActions": ["Warn", "Audit"],
            "paramRef": {"name": "rules", "parameterNotFoundAction": "Deny"},
        }),
    )
    .await;
    let output = cluster
        .kubectl(&["create", "deployment", "bad", "-n", "team", "--image=nginx"])
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: Validation failed for ValidatingAdmissionPolicy 'names' with binding 'names-warn': that name is taken"),
        "{stderr}"
    );
    let deployments: Api<Deployment> = cluster.api("team");
    assert!(deployments.get_opt("bad").await.expect("read").is_some());

    // In a namespace without the parameter, `Deny` on a missing one denies
    // (the binding only warns, so the warning says so).
    cluster.create_namespace("other").await;
    let output = cluster
        .kubectl(&[
            "create",
            "deployment",
            "fine",
            "-n",
            "other",
            "--image=nginx",
        ])
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no params found for policy binding with `Deny` parameterNotFoundAction"),
        "{stderr}"
    );
}
