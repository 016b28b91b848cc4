//! What every namespace gets (service account, root CA) and deletion
//! (cascading, and the orphan collector without the server's garbage
//! collector).

use super::*;

#[tokio::test]
async fn every_namespace_gets_a_default_service_account_and_the_root_ca() {
    let cluster = ControlPlane::start().await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team-a"}})).expect("ns"),
        )
        .await
        .expect("create namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), "team-a");
    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "team-a");
    eventually_within(DEADLINE, "the default service account", || async {
        accounts.get_opt("default").await.ok()?.map(|_| ())
    })
    .await;
    let ca = eventually_within(DEADLINE, "kube-root-ca.crt", || async {
        config_maps.get_opt("kube-root-ca.crt").await.ok()?
    })
    .await;
    assert!(ca
        .data
        .as_ref()
        .and_then(|d| d.get("ca.crt"))
        .is_some_and(|pem| pem.contains("BEGIN CERTIFICATE")));
    // Also in the namespaces that existed before.
    let default_accounts: Api<ServiceAccount> = cluster.api();
    eventually_within(DEADLINE, "default/default", || async {
        default_accounts.get_opt("default").await.ok()?.map(|_| ())
    })
    .await;
    // Deleted or tampered with: restored.
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .expect("delete");
    config_maps
        .patch(
            "kube-root-ca.crt",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"ca.crt": "forged"}})),
        )
        .await
        .expect("tamper");
    eventually_within(DEADLINE, "the account back", || async {
        accounts.get_opt("default").await.ok()?.map(|_| ())
    })
    .await;
    eventually_within(DEADLINE, "the CA restored", || async {
        let cm = config_maps.get("kube-root-ca.crt").await.ok()?;
        cm.data?
            .get("ca.crt")?
            .contains("BEGIN CERTIFICATE")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn deleting_a_deployment_deletes_its_replica_sets_and_pods() {
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    let created: Deployment = cluster
        .create(
            &api,
            deployment("web", 3, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&api, "web", 3).await;
    api.delete("web", &DeleteParams::background())
        .await
        .expect("delete");
    let uid = created.metadata.uid.expect("uid");
    eventually_within(DEADLINE, "no replica sets", || async {
        owned_replica_sets(&cluster.api(), &uid)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    eventually_within(DEADLINE, "no pods", || async {
        pods(&cluster.client, "app=web")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents_and_drops_dangling_references() {
    // The API server's garbage collector (the only one): dependents of the
    // controllers' objects go with their owner.
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    cluster
        .create(
            &api,
            deployment("web", 2, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&api, "web", 2).await;
    // Config maps owned by the deployment: one only by it (collected),
    // one also by an owner of a kind the server does not serve, which
    // cannot be checked (only the dangling reference goes).
    let config_maps: Api<ConfigMap> = cluster.api();
    let d = api.get("web").await.expect("get");
    let by_deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d.metadata.uid});
    let by_other = json!({"apiVersion": "example.com/v1", "kind": "Thing", "name": "thing", "uid": "0000-thing"});
    cluster.create(&config_maps, json!({"metadata": {"name": "doomed", "namespace": "default", "ownerReferences": [by_deployment]}})).await;
    cluster.create(&config_maps, json!({"metadata": {"name": "shared", "namespace": "default", "ownerReferences": [by_deployment, by_other]}})).await;
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually_within(DEADLINE, "the pods collected", || async {
        pods(&cluster.client, "app=web")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let rss = cluster
        .api::<ReplicaSet>()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    assert!(rss.is_empty(), "replica sets collected: {rss:?}");
    eventually_within(
        DEADLINE,
        "the config map owned by the deployment alone collected",
        || async {
            config_maps
                .get_opt("doomed")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    let shared = eventually_within(DEADLINE, "the dangling reference removed", || async {
        let cm = config_maps.get_opt("shared").await.ok()??;
        (cm.metadata.owner_references.as_ref()?.len() == 1).then_some(cm)
    })
    .await;
    assert_eq!(
        shared.metadata.owner_references.unwrap_or_default()[0].kind,
        "Thing"
    );
}
