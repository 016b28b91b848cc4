//! ReplicationControllers, PodDisruptionBudgets and `pods/eviction` as
//! kube-apiserver serves them: the real kubectl creates, lists, describes
//! and deletes them; evictions spend a budget and are refused (429) when
//! none is left, through kube-rs' `Api::<Pod>::evict` and raw POSTs. The
//! budgets' status is written here as the disruption controller would
//! (its own tests are in vcluster-controllers).

use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::http::{pod_json, raw_request};
use vcluster_testkit::kubectl::Table;

const NS: &str = "default";

/// Creates a pod and makes it Running and Ready (as its kubelet would).
async fn running_pod(pods: &Api<Pod>, name: &str, ready: bool) {
    let pod: Pod = serde_json::from_value(pod_json(name, &[("app", "db")])).expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("pod status");
}

/// Creates a budget over `app=db` and sets its status as the disruption
/// controller would, allowing `allowed` disruptions.
async fn budget(budgets: &Api<PodDisruptionBudget>, name: &str, allowed: i32) {
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
    }))
    .expect("pdb");
    budgets
        .create(&PostParams::default(), &pdb)
        .await
        .expect("create pdb");
    let status = json!({"status": {
        "observedGeneration": 1, "disruptionsAllowed": allowed,
        "currentHealthy": 1 + allowed, "desiredHealthy": 1, "expectedPods": 1 + allowed,
    }});
    budgets
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pdb status");
}

async fn post_eviction(cluster: &Cluster, pod: &str, query: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": NS}});
    if let (Some(map), Value::Object(more)) = (body.as_object_mut(), extra) {
        map.extend(more);
    }
    let response = raw_request(
        cluster.addr,
        "POST",
        &format!("/api/v1/namespaces/{NS}/pods/{pod}/eviction{query}"),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    (response.status, response.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_spend_the_budget_and_are_refused_when_none_is_left() {
    let cluster = Cluster::start().await;
    let client = cluster.server.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), NS);
    running_pod(&pods, "a", true).await;
    running_pod(&pods, "b", true).await;
    budget(&budgets, "db", 1).await;

    // Discovery lists the subresource, as a policy/v1 Eviction.
    let discovery = raw_request(cluster.addr, "GET", "/api/v1", &[], b"")
        .await
        .json();
    let eviction = discovery["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "pods/eviction"))
        .cloned()
        .expect("pods/eviction in discovery");
    assert_eq!(
        (&eviction["group"], &eviction["version"], &eviction["kind"]),
        (&json!("policy"), &json!("v1"), &json!("Eviction"))
    );

    // A dry run changes nothing.
    let (code, answer) = post_eviction(&cluster, "a", "?dryRun=All", json!({})).await;
    assert_eq!(
        (code, &answer["status"]),
        (201, &json!("Success")),
        "{answer}"
    );
    assert!(pods.get_opt("a").await.expect("get").is_some());
    let pdb = budgets.get("db").await.expect("pdb");
    assert_eq!(pdb.status.as_ref().map(|s| s.disruptions_allowed), Some(1));

    // The eviction spends the one disruption allowed and records the pod.
    pods.evict("a", &EvictParams::default())
        .await
        .expect("evict a");
    assert!(pods.get_opt("a").await.expect("get").is_none());
    let status = budgets
        .get("db")
        .await
        .expect("pdb")
        .status
        .expect("status");
    assert_eq!(status.disruptions_allowed, 0);
    assert!(status
        .disrupted_pods
        .as_ref()
        .is_some_and(|d| d.contains_key("a")));
    let condition = status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionAllowed"))
        .expect("the DisruptionAllowed condition");
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "InsufficientPods")
    );

    // None left: 429 with upstream's words and a DisruptionBudget cause.
    let (code, answer) = post_eviction(&cluster, "b", "", json!({})).await;
    assert_eq!(code, 429, "{answer}");
    assert_eq!(answer["reason"], "TooManyRequests");
    assert_eq!(
        answer["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        answer["details"]["causes"],
        json!([{"reason": "DisruptionBudget", "message": "The disruption budget db needs 1 healthy pods and has 2 currently"}])
    );
    let refused = pods
        .evict("b", &EvictParams::default())
        .await
        .expect_err("kube-rs sees the refusal");
    assert!(
        matches!(refused, kube::Error::Api(ref s) if s.code == 429),
        "{refused:?}"
    );
    assert!(pods.get_opt("b").await.expect("get").is_some());

    // A pod that is not running yet ignores budgets.
    let pending: Pod = serde_json::from_value(pod_json("c", &[("app", "db")])).expect("pod");
    pods.create(&PostParams::default(), &pending)
        .await
        .expect("create c");
    let (code, _) = post_eviction(
        &cluster,
        "c",
        "",
        json!({"deleteOptions": {"gracePeriodSeconds": 0}}),
    )
    .await;
    assert_eq!(code, 201);
    assert!(pods.get_opt("c").await.expect("get").is_none());

    // The URL names the pod.
    let (code, answer) = post_eviction(&cluster, "b", "", json!({"metadata": {"name": "x"}})).await;
    assert_eq!(code, 400, "{answer}");
    assert_eq!(
        answer["message"],
        "name in URL does not match name in Eviction object"
    );

    // A budget its controller has not seen yet cannot be spent.
    budgets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": 0}})),
        )
        .await
        .expect("change the budget");
    let (code, answer) = post_eviction(&cluster, "b", "", json!({})).await;
    assert_eq!(code, 429, "{answer}");
    assert_eq!(
        answer["details"]["causes"][0]["message"],
        "The disruption budget db is still being processed by the server."
    );
    assert_eq!(answer["details"]["retryAfterSeconds"], 10);

    // Two budgets over one pod: the eviction API does not support it.
    budget(&budgets, "db-too", 1).await;
    let (code, answer) = post_eviction(&cluster, "b", "", json!({})).await;
    assert_eq!(code, 500, "{answer}");
    assert_eq!(
        answer["message"],
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );

    // A pod that is not ready may go when its budget is healthy anyway.
    running_pod(&pods, "d", false).await;
    budgets
        .delete("db-too", &Default::default())
        .await
        .expect("delete");
    budgets
        .patch_status(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 2, "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1}})),
        )
        .await
        .expect("status");
    pods.evict("d", &EvictParams::default())
        .await
        .expect("an unready pod of a healthy budget goes");
    assert!(pods.get_opt("d").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_lists_describes_and_deletes_the_kinds() {
    let cluster = Cluster::start().await;
    let manifest = cluster.dir.path().join("kinds.yaml");
    std::fs::write(
        &manifest,
        r#"apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  maxUnavailable: 25%
  selector:
    matchLabels:
      app: web
"#,
    )
    .expect("write manifest");
    let path = manifest.display().to_string();
    let out = cluster.kubectl_ok(&["create", "-f", &path]).await;
    assert!(out.contains("replicationcontroller/web created"), "{out}");
    assert!(
        out.contains("poddisruptionbudget.policy/web created"),
        "{out}"
    );
    let out = cluster
        .kubectl_ok(&[
            "create",
            "pdb",
            "db",
            "--selector=app=db",
            "--min-available=1",
        ])
        .await;
    assert!(
        out.contains("poddisruptionbudget.policy/db created"),
        "{out}"
    );

    let rcs: Api<ReplicationController> = Api::namespaced(cluster.server.client(), NS);
    let rc = rcs.get("web").await.expect("rc");
    assert_eq!(
        rc.spec.as_ref().and_then(|s| s.selector.clone()),
        Some([("app".to_owned(), "web".to_owned())].into())
    );

    let table = Table::parse(&cluster.kubectl_ok(&["get", "rc", "-o", "wide"]).await);
    let row = table.row("web");
    assert_eq!(table.cell(row, "DESIRED"), "2");
    assert_eq!(table.cell(row, "CURRENT"), "0");
    assert_eq!(table.cell(row, "IMAGES"), "nginx:1.27");
    assert_eq!(table.cell(row, "SELECTOR"), "app=web");
    let table = Table::parse(&cluster.kubectl_ok(&["get", "pdb"]).await);
    let row = table.row("web");
    assert_eq!(table.cell(row, "MIN AVAILABLE"), "N/A");
    assert_eq!(table.cell(row, "MAX UNAVAILABLE"), "25%");
    assert_eq!(table.cell(row, "ALLOWED DISRUPTIONS"), "0");
    let row = table.row("db");
    assert_eq!(table.cell(row, "MIN AVAILABLE"), "1");
    assert!(cluster
        .kubectl_ok(&["get", "all"])
        .await
        .contains("replicationcontroller/web"));

    let described = cluster.kubectl_ok(&["describe", "rc", "web"]).await;
    assert!(
        described.contains("Selector:") && described.contains("app=web"),
        "{described}"
    );
    assert!(described.contains("Replicas:"), "{described}");
    let described = cluster.kubectl_ok(&["describe", "pdb", "web"]).await;
    assert!(described.contains("Max unavailable:  25%"), "{described}");

    // Invalid objects are refused with upstream's causes.
    let err = cluster
        .kubectl_err(&[
            "create",
            "pdb",
            "bad",
            "--selector=app=x",
            "--max-unavailable=120%",
        ])
        .await;
    assert!(err.contains("must not be greater than 100%"), "{err}");

    let out = cluster.kubectl_ok(&["delete", "rc/web", "pdb/db"]).await;
    assert!(
        out.contains("replicationcontroller \"web\" deleted"),
        "{out}"
    );
    let out = cluster.kubectl_ok(&["delete", "pdb", "web"]).await;
    assert!(out.contains("deleted"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscalers_are_served_at_v2_and_v1_and_kubectl_autoscale_works() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::{v1, v2};
    let cluster = Cluster::start().await;
    let client = cluster.server.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let web: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    }))
    .expect("deployment");
    deployments
        .create(&PostParams::default(), &web)
        .await
        .expect("create deployment");

    let out = cluster
        .kubectl_ok(&[
            "autoscale",
            "deployment",
            "web",
            "--min=1",
            "--max=5",
            "--cpu-percent=50",
        ])
        .await;
    assert!(
        out.contains("horizontalpodautoscaler.autoscaling/web autoscaled"),
        "{out}"
    );
    let table = Table::parse(&cluster.kubectl_ok(&["get", "hpa"]).await);
    let row = table.row("web");
    assert_eq!(table.cell(row, "REFERENCE"), "Deployment/web");
    assert_eq!(table.cell(row, "TARGETS"), "cpu: <unknown>/50%");
    assert_eq!(table.cell(row, "MINPODS"), "1");
    assert_eq!(table.cell(row, "MAXPODS"), "5");
    let described = cluster.kubectl_ok(&["describe", "hpa", "web"]).await;
    assert!(described.contains("Deployment/web"), "{described}");
    assert!(described.contains("Max replicas:"), "{described}");

    // One object, two versions: v2's metrics are v1's CPU target.
    let at_v2: Api<v2::HorizontalPodAutoscaler> = Api::namespaced(client.clone(), NS);
    let at_v1: Api<v1::HorizontalPodAutoscaler> = Api::namespaced(client.clone(), NS);
    let hpa = at_v2.get("web").await.expect("v2");
    let metric = &hpa
        .spec
        .as_ref()
        .and_then(|s| s.metrics.clone())
        .expect("metrics")[0];
    assert_eq!(
        metric
            .resource
            .as_ref()
            .and_then(|r| r.target.average_utilization),
        Some(50)
    );
    let old = at_v1.get("web").await.expect("v1");
    assert_eq!(
        old.spec
            .as_ref()
            .and_then(|s| s.target_cpu_utilization_percentage),
        Some(50)
    );

    // A watch at v1 sees the stored (v2) object converted.
    let watched = raw_request(
        cluster.addr,
        "GET",
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers?watch=1&timeoutSeconds=1",
        &[],
        b"",
    )
    .await;
    let events = vcluster_testkit::http::watch_lines(&watched.body);
    let first = events.first().expect("the ADDED event");
    assert_eq!(first["object"]["apiVersion"], "autoscaling/v1");
    assert_eq!(
        first["object"]["spec"]["targetCPUUtilizationPercentage"],
        50
    );

    // A v2-only field survives an update through v1 (in an annotation).
    at_v2
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}}}),
            ),
        )
        .await
        .expect("set behavior");
    let mut old = at_v1.get("web").await.expect("v1");
    assert!(old
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("autoscaling.alpha.kubernetes.io/behavior")));
    if let Some(spec) = old.spec.as_mut() {
        spec.max_replicas = 7;
    }
    at_v1
        .replace("web", &PostParams::default(), &old)
        .await
        .expect("update through v1");
    let hpa = at_v2.get("web").await.expect("v2");
    let spec = hpa.spec.expect("spec");
    assert_eq!(spec.max_replicas, 7);
    assert_eq!(
        spec.behavior
            .and_then(|b| b.scale_down)
            .and_then(|d| d.stabilization_window_seconds),
        Some(30)
    );
    assert!(hpa.metadata.annotations.is_none_or(|a| a.is_empty()));

    // Both versions list the same object; v1 is in `kubectl get all`.
    let listed = cluster
        .kubectl_ok(&[
            "get",
            "horizontalpodautoscalers.v1.autoscaling",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(listed.trim(), "horizontalpodautoscaler.autoscaling/web");
    let err = cluster
        .kubectl_err(&["autoscale", "deployment", "web", "--name=bad", "--max=0"])
        .await;
    assert!(
        err.contains("must be greater than 0") || err.contains("--max=MAXPODS is required"),
        "{err}"
    );
    // Both versions are in the OpenAPI documents kubectl reads.
    let explained = cluster.kubectl_ok(&["explain", "hpa.spec.metrics"]).await;
    assert!(explained.contains("autoscaling"), "{explained}");
    let explained = cluster
        .kubectl_ok(&[
            "explain",
            "hpa.spec.targetCPUUtilizationPercentage",
            "--api-version=autoscaling/v1",
        ])
        .await;
    assert!(
        explained.contains("targetCPUUtilizationPercentage"),
        "{explained}"
    );
    let out = cluster.kubectl_ok(&["delete", "hpa", "web"]).await;
    assert!(out.contains("deleted"), "{out}");
    assert!(at_v1.get_opt("web").await.expect("get").is_none());
}
