//! End to end: a tenant's PodDisruptionBudget reaches the host (when
//! asked for) selecting the host copies of its pods, follows changes, and
//! goes with the virtual one. Every wait has a deadline.

mod common;

use common::{eventually, object, Environment, HostKind};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vcluster_core::markers::NAMESPACE_LABEL;
use vcluster_testkit::eventually_gone;

on_both_hosts!(a_disruption_budget_protects_the_host_pods);

async fn a_disruption_budget_protects_the_host_pods(host: HostKind) {
    let env =
        Environment::start_with(host, "pdb1", |c| c.syncers.pod_disruption_budgets = true).await;
    env.virtual_cluster.create_namespace("shop").await;
    let vbudgets = env.virtual_cluster.api::<PodDisruptionBudget>("shop");
    let hbudgets = env.host.api::<PodDisruptionBudget>(&env.host_namespace);
    vbudgets
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "web"},
                "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
            })),
        )
        .await
        .expect("budget");
    let host_name = env.host_name("shop", "web");
    let copy = eventually("the host budget", || async {
        hbudgets.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    let spec = copy.spec.expect("spec");
    let labels = spec
        .selector
        .expect("selector")
        .match_labels
        .expect("labels");
    assert_eq!(labels["app"], "web");
    assert_eq!(labels[NAMESPACE_LABEL], "shop");
    assert_eq!(spec.min_available, Some(IntOrString::Int(2)));

    vbudgets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"minAvailable": 1}})),
        )
        .await
        .expect("change");
    eventually("the change follows", || async {
        let b = hbudgets.get(&host_name).await.ok()?;
        (b.spec?.min_available == Some(IntOrString::Int(1))).then_some(())
    })
    .await;

    vbudgets
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually_gone("the host budget gone", &hbudgets, &host_name).await;
}
