//! End to end, on both hosts: with `service_account_tokens`, a host pod
//! reads the virtual API server's token for its virtual pod from a host
//! Secret the syncer writes (owned by the host pod), never a host token;
//! the token authenticates at the virtual API server (TokenReview) as the
//! pod's service account until the virtual pod is deleted, and the Secret
//! goes with the host pod. Every wait has a deadline.

mod common;

use common::{eventually, object, Environment, HostKind};
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

on_both_hosts!(host_pods_hold_the_virtual_pods_token,);

/// Whether the virtual API server takes `token` (and as whom).
async fn review(client: &kube::Client, token: &str) -> Option<String> {
    let reviews: Api<TokenReview> = Api::all(client.clone());
    let review: TokenReview = object(json!({"spec": {"token": token}}));
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .expect("token review");
    let status = answer.status.expect("status");
    if status.authenticated == Some(true) {
        status.user.and_then(|u| u.username)
    } else {
        None
    }
}

async fn host_pods_hold_the_virtual_pods_token(host: HostKind) {
    let env = Environment::start_with(host, "tok", |c| {
        c.pod_environment.service_account_tokens = true;
    })
    .await;
    // What the virtual cluster's controllers would have made.
    env.virtual_cluster
        .api::<ServiceAccount>("default")
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "default"}})),
        )
        .await
        .expect("account");
    env.virtual_cluster
        .api::<ConfigMap>("default")
        .create(
            &PostParams::default(),
            &object(
                json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "test CA"}}),
            ),
        )
        .await
        .expect("root CA configmap");
    let vpods = env.virtual_cluster.api::<Pod>("default");
    let hpods = env.host.api::<Pod>(&env.host_namespace);
    let hsecrets = env.host.api::<Secret>(&env.host_namespace);
    vpods
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "web"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            })),
        )
        .await
        .expect("pod");
    let virtual_pod = vpods.get("web").await.expect("virtual pod");

    let host_name = env.host_name("default", "web");
    let host_pod = eventually("the host pod", || async {
        hpods.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    let spec = host_pod.spec.clone().expect("spec");
    assert_eq!(spec.automount_service_account_token, Some(false));
    let secret_name = format!("{host_name}-sa-token");
    let projected = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.starts_with("kube-api-access-"))
        .and_then(|v| v.projected.clone())
        .expect("the token volume");
    let key = projected
        .sources
        .iter()
        .flatten()
        .find_map(|s| {
            assert!(s.service_account_token.is_none(), "no host token source");
            let secret = s.secret.as_ref().filter(|s| s.name == secret_name)?;
            Some(secret.items.as_ref()?[0].key.clone())
        })
        .expect("a source reading the token secret");

    let secret = eventually("the token secret", || async {
        hsecrets.get_opt(&secret_name).await.ok().flatten()
    })
    .await;
    let owner = &secret.metadata.owner_references.clone().expect("owner")[0];
    assert_eq!(owner.kind, "Pod");
    assert_eq!(Some(&owner.uid), host_pod.metadata.uid.as_ref());
    let token = String::from_utf8(secret.data.expect("data")[&key].0.clone()).expect("utf-8");
    let client = env.virtual_cluster.client();
    assert_eq!(
        review(&client, &token).await.as_deref(),
        Some("system:serviceaccount:default:default")
    );
    assert!(virtual_pod.metadata.uid.is_some());

    // The virtual pod deleted: the token is refused, the secret goes.
    vpods
        .delete("web", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    eventually("the virtual pod gone", || async {
        vpods
            .get_opt("web")
            .await
            .ok()
            .and_then(|p| p.is_none().then_some(()))
    })
    .await;
    assert_eq!(review(&client, &token).await, None);
    eventually("the token secret gone", || async {
        hsecrets
            .get_opt(&secret_name)
            .await
            .ok()
            .and_then(|s| s.is_none().then_some(()))
    })
    .await;
}
