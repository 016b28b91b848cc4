//! End to end: host events about a tenant's objects appear in the virtual
//! cluster, pointed at the virtual objects; events about anything else do
//! not. Every wait has a deadline.

mod common;

use common::{eventually, object, Environment, HostKind};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vcluster_testkit::eventually_gone;

on_both_hosts!(host_events_about_tenant_objects_reach_the_virtual_cluster,);

fn host_event(env: &Environment, name: &str, pod: &str, uid: Option<&str>, count: i32) -> Event {
    object(json!({
        "metadata": {"name": name},
        "involvedObject": {
            "apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": env.host_namespace,
            "uid": uid, "fieldPath": "spec.containers{app}",
        },
        "reason": "BackOff",
        "message": format!("Back-off restarting failed container app in pod {pod}"),
        "type": "Warning",
        "count": count,
        "firstTimestamp": "2024-05-01T10:00:00Z",
        "lastTimestamp": "2024-05-01T10:00:00Z",
        "source": {"component": "kubelet", "host": "worker-1"},
    }))
}

async fn host_events_about_tenant_objects_reach_the_virtual_cluster(host: HostKind) {
    let env = Environment::start_with(host, "ev1", |_| {}).await;
    let vpods = env.virtual_cluster.api::<Pod>("default");
    let hpods = env.host.api::<Pod>(&env.host_namespace);
    let vevents = env.virtual_cluster.api::<Event>("default");
    let hevents = env.host.api::<Event>(&env.host_namespace);

    let virtual_pod = vpods
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}})),
        )
        .await
        .expect("pod");
    let host_pod_name = env.host_name("default", "web");
    let host_pod = eventually("the host pod", || async {
        hpods.get_opt(&host_pod_name).await.ok().flatten()
    })
    .await;
    // A host pod that is not the tenant's, in the same namespace.
    hpods
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "infra"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})),
        )
        .await
        .expect("unmanaged pod");
    hevents
        .create(
            &PostParams::default(),
            &host_event(&env, "infra.17a0000000000001", "infra", None, 1),
        )
        .await
        .expect("foreign event");
    let event_name = format!("{host_pod_name}.17a0000000000002");
    hevents
        .create(
            &PostParams::default(),
            &host_event(
                &env,
                &event_name,
                &host_pod_name,
                host_pod.metadata.uid.as_deref(),
                1,
            ),
        )
        .await
        .expect("event");

    let virtual_event = eventually("the virtual event", || async {
        vevents.get_opt("web.17a0000000000002").await.ok().flatten()
    })
    .await;
    let involved = &virtual_event.involved_object;
    assert_eq!(involved.name.as_deref(), Some("web"));
    assert_eq!(involved.namespace.as_deref(), Some("default"));
    assert_eq!(involved.uid, virtual_pod.metadata.uid);
    assert_eq!(involved.kind.as_deref(), Some("Pod"));
    assert_eq!(involved.api_version.as_deref(), Some("v1"));
    assert_eq!(involved.field_path.as_deref(), Some("spec.containers{app}"));
    assert_eq!(virtual_event.reason.as_deref(), Some("BackOff"));
    assert_eq!(virtual_event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        virtual_event.message.as_deref(),
        Some("Back-off restarting failed container app in pod web")
    );
    assert_eq!(virtual_event.count, Some(1));

    // The host counts a repeat: the virtual event follows.
    hevents
        .patch(
            &event_name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"count": 5, "lastTimestamp": "2024-05-01T10:05:00Z"})),
        )
        .await
        .expect("repeat");
    eventually("the virtual event counted", || async {
        let e = vevents.get("web.17a0000000000002").await.ok()?;
        (e.count == Some(5)).then_some(e)
    })
    .await;

    // Only the tenant's event arrived, in every namespace.
    let all: kube::Api<Event> = kube::Api::all(env.virtual_cluster.client());
    let names: Vec<String> = all
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|e| e.metadata.name)
        .collect();
    assert_eq!(names, vec!["web.17a0000000000002".to_owned()]);

    // The host event expires: so does the virtual one.
    hevents
        .delete(&event_name, &DeleteParams::default())
        .await
        .expect("delete");
    eventually_gone("the virtual event gone", &vevents, "web.17a0000000000002").await;
}
