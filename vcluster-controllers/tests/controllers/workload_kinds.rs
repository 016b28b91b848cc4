//! The kinds of issue 20's workload half: ReplicationControllers kept at
//! their replicas (scaled with the real `kubectl scale rc`).

use super::*;
use k8s_openapi::api::core::v1::ReplicationController;

fn replication_controller(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    })
}

#[tokio::test]
async fn kubectl_scale_rc_makes_pods_and_status_follows() {
    let cluster = ControlPlane::start().await;
    let rcs: Api<ReplicationController> = cluster.api();
    let rc = cluster.create(&rcs, replication_controller("web", 1)).await;
    // The selector defaulted from the template's labels.
    let selector = rc.spec.and_then(|s| s.selector).unwrap_or_default();
    assert_eq!(selector.get("app").map(String::as_str), Some("web"));
    eventually_within(DEADLINE, "one pod", || async {
        (pods(&cluster.client, "app=web").await.len() == 1).then_some(())
    })
    .await;

    let out = cluster
        .cluster
        .kubectl_ok(&["scale", "rc", "web", "--replicas", "3"])
        .await;
    assert!(out.contains("replicationcontroller/web scaled"), "{out}");
    let owned = eventually_within(DEADLINE, "three ready pods and the status", || async {
        let rc = rcs.get("web").await.ok()?;
        let status = rc.status.clone()?;
        (status.replicas == 3
            && status.ready_replicas == Some(3)
            && status.available_replicas == Some(3)
            && status.observed_generation == rc.metadata.generation)
            .then_some(())?;
        let pods = pods(&cluster.client, "app=web").await;
        (pods.len() == 3).then_some(pods)
    })
    .await;
    let uid = rcs.get("web").await.expect("rc").metadata.uid;
    for pod in &owned {
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
            .expect("a controller");
        assert_eq!(
            (owner.kind.as_str(), Some(&owner.uid)),
            ("ReplicationController", uid.as_ref())
        );
    }
    let table = cluster
        .cluster
        .kubectl_ok(&["get", "rc", "web", "-o", "wide"])
        .await;
    let table = vcluster_testkit::kubectl::Table::parse(&table);
    let row = table.row("web");
    assert_eq!(table.cell(row, "DESIRED"), "3");
    assert_eq!(table.cell(row, "READY"), "3");
    assert_eq!(table.cell(row, "SELECTOR"), "app=web");

    cluster
        .cluster
        .kubectl_ok(&["scale", "rc", "web", "--replicas", "1"])
        .await;
    eventually_within(DEADLINE, "back to one pod", || async {
        let rc = rcs.get("web").await.ok()?;
        (rc.status?.replicas == 1 && pods(&cluster.client, "app=web").await.len() == 1)
            .then_some(())
    })
    .await;
}

async fn budget_status(
    api: &Api<k8s_openapi::api::policy::v1::PodDisruptionBudget>,
    name: &str,
    want: (i32, i32, i32, i32),
) -> k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus {
    eventually_within(DEADLINE, &format!("budget {name} at {want:?}"), || async {
        let pdb = api.get(name).await.ok()?;
        let status = pdb.status?;
        let got = (
            status.expected_pods,
            status.current_healthy,
            status.desired_healthy,
            status.disruptions_allowed,
        );
        (got == want && status.observed_generation == pdb.metadata.generation).then_some(status)
    })
    .await
}

#[tokio::test]
async fn the_disruption_controller_counts_pods_and_kubectl_drain_respects_it() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let cluster = ControlPlane::start().await;
    let rcs: Api<ReplicationController> = cluster.api();
    cluster.create(&rcs, replication_controller("web", 2)).await;
    let budgets: Api<PodDisruptionBudget> = cluster.api();
    // A percentage counts the controller's replicas (its scale).
    cluster
        .create(
            &budgets,
            json!({"metadata": {"name": "web", "namespace": "default"},
                   "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}}),
        )
        .await;
    let status = budget_status(&budgets, "web", (2, 2, 1, 1)).await;
    let condition = status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionAllowed"))
        .expect("condition");
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("True", "SufficientPods")
    );
    // Deployments count through their ReplicaSets.
    let deployments: Api<Deployment> = cluster.api();
    cluster
        .create(
            &deployments,
            deployment("api", 3, "nginx", rolling(json!(1), json!(0))),
        )
        .await;
    cluster
        .create(
            &budgets,
            json!({"metadata": {"name": "api", "namespace": "default"},
                   "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "api"}}}}),
        )
        .await;
    budget_status(&budgets, "api", (3, 3, 2, 1)).await;

    // `kubectl drain` evicts the node's web pods one at a time: the
    // second waits (429) until the first one's replacement is ready.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client.clone());
    if nodes
        .get_opt(vcluster_testkit::kubelet::NODE)
        .await
        .expect("get node")
        .is_none()
    {
        cluster
            .add_node(vcluster_testkit::kubelet::NODE, json!({}))
            .await;
    }
    let before: Vec<String> = pods(&cluster.client, "app=web")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(before.len(), 2);
    let drained = cluster
        .cluster
        .kubectl(&[
            "drain",
            vcluster_testkit::kubelet::NODE,
            "--pod-selector=app=web",
            "--timeout=60s",
        ])
        .await;
    let out = String::from_utf8_lossy(&drained.stdout);
    let err = String::from_utf8_lossy(&drained.stderr);
    assert!(drained.status.success(), "{out}\n{err}");
    assert!(out.contains("drained"), "{out}");
    // Both evictions were asked at once: the budget refused one (kubectl
    // retried it once the first pod's replacement was ready).
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );
    assert!(out.contains("evicting pod default/"), "{out}");
    let after: Vec<String> = pods(&cluster.client, "app=web")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(
        before.iter().all(|p| !after.contains(p)),
        "every drained pod was replaced: {before:?} -> {after:?}"
    );
    // The evictions were recorded, then pruned as the pods went.
    let status = budget_status(&budgets, "web", (2, 2, 1, 1)).await;
    assert!(status.disrupted_pods.is_none(), "{status:?}");
}

/// A metrics source a test turns up and down: every running container
/// uses `millicores` of CPU.
#[derive(Debug, Default)]
struct Dial(std::sync::atomic::AtomicI64);

impl vcluster_controllers::MetricsSource for Dial {
    fn pod_usage(
        &self,
        pod: &Pod,
        resource: &str,
    ) -> Option<std::collections::BTreeMap<String, i64>> {
        let fixed =
            vcluster_controllers::FixedUsage::cpu(self.0.load(std::sync::atomic::Ordering::SeqCst));
        vcluster_controllers::MetricsSource::pod_usage(&fixed, pod, resource)
    }
}

#[tokio::test]
async fn an_autoscaler_scales_a_deployment_up_under_load_and_back_down() {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    let dial = Arc::new(Dial::default());
    dial.0.store(200, std::sync::atomic::Ordering::SeqCst);
    let source = dial.clone();
    let cluster = ControlPlane::start_with(move |_, options| {
        options.metrics = Some(source);
        options.hpa_sync_period = std::time::Duration::from_millis(200);
        options.hpa_downscale_stabilization = std::time::Duration::from_secs(1);
    })
    .await;
    let deployments: Api<Deployment> = cluster.api();
    let mut web = deployment("web", 1, "nginx", rolling(json!(1), json!(0)));
    web["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "100m"}});
    cluster.create(&deployments, web).await;
    // What `kubectl autoscale deployment web --min=1 --max=5 --cpu-percent=50` creates.
    let out = cluster
        .cluster
        .kubectl_ok(&[
            "autoscale",
            "deployment",
            "web",
            "--min=1",
            "--max=5",
            "--cpu-percent=50",
        ])
        .await;
    assert!(out.contains("autoscaled"), "{out}");

    // 200% of the request against 50%: up, at most doubling (or +4) per
    // step, to the maximum.
    let hpas: Api<HorizontalPodAutoscaler> = cluster.api();
    let status = eventually_within(DEADLINE, "scaled up to the maximum", || async {
        let d = deployments.get("web").await.ok()?;
        let status = hpas.get("web").await.ok()?.status?;
        (d.spec?.replicas == Some(5) && status.current_replicas == Some(5)).then_some(status)
    })
    .await;
    let utilization = status
        .current_metrics
        .as_ref()
        .and_then(|m| m[0].resource.as_ref())
        .and_then(|r| r.current.average_utilization);
    assert_eq!(utilization, Some(200));
    let conditions = status.conditions.clone().unwrap_or_default();
    let reason = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t)
            .and_then(|c| c.reason.clone())
    };
    assert_eq!(reason("ScalingActive").as_deref(), Some("ValidMetricFound"));
    assert_eq!(reason("ScalingLimited").as_deref(), Some("TooManyReplicas"));
    assert!(status.last_scale_time.is_some());
    let table =
        vcluster_testkit::kubectl::Table::parse(&cluster.cluster.kubectl_ok(&["get", "hpa"]).await);
    let row = table.row("web");
    assert_eq!(table.cell(row, "TARGETS"), "cpu: 200%/50%");
    assert_eq!(table.cell(row, "REPLICAS"), "5");

    // The load goes: after the stabilization window, back to the minimum.
    dial.0.store(10, std::sync::atomic::Ordering::SeqCst);
    eventually_within(DEADLINE, "scaled down to the minimum", || async {
        let d = deployments.get("web").await.ok()?;
        (d.spec?.replicas == Some(1)).then_some(())
    })
    .await;
}
