//! End to end: persistent volume claims go to the host and their binding
//! comes back; the host's storage classes are shown to tenants. Every wait
//! has a deadline.

mod common;

use common::{eventually, object, Environment, HostKind};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vcluster_syncer::syncers::FROM_HOST_LABEL;
use vcluster_testkit::eventually_gone;

on_both_hosts!(
    a_claim_is_provisioned_on_the_host_and_pods_wait_for_it,
    host_storage_classes_are_shown_to_tenants,
);

async fn a_claim_is_provisioned_on_the_host_and_pods_wait_for_it(host: HostKind) {
    let env = Environment::start_with(host, "pvc1", |_| {}).await;
    let vclaims = env.virtual_cluster.api::<PersistentVolumeClaim>("default");
    let hclaims = env.host.api::<PersistentVolumeClaim>(&env.host_namespace);
    let vpods = env.virtual_cluster.api::<Pod>("default");
    let hpods = env.host.api::<Pod>(&env.host_namespace);
    // A class that can expand volumes (a real host refuses to resize a
    // claim of any other; this test plays its provisioner).
    let expandable: StorageClass = object(json!({
        "metadata": {"name": "expandable"},
        "provisioner": "example.com/test",
        "allowVolumeExpansion": true,
    }));
    match env
        .host
        .cluster_api::<StorageClass>()
        .create(&PostParams::default(), &expandable)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => panic!("host storage class: {err}"),
    }

    // The pod comes first: it waits for its claim on the host.
    vpods
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "db"},
                "spec": {
                    "containers": [{"name": "pg", "image": "postgres:16"}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                },
            })),
        )
        .await
        .expect("pod");
    vclaims
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "data", "labels": {"app": "db"}},
                "spec": {
                    "storageClassName": "expandable",
                    "accessModes": ["ReadWriteOnce"],
                    "volumeMode": "Filesystem",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            })),
        )
        .await
        .expect("claim");

    let claim_name = env.host_name("default", "data");
    let host_pod = eventually("the host pod, after its claim", || async {
        hpods
            .get_opt(&env.host_name("default", "db"))
            .await
            .ok()
            .flatten()
    })
    .await;
    let host_claim = hclaims
        .get(&claim_name)
        .await
        .expect("the claim was on the host before the pod");
    let volume = host_pod
        .spec
        .and_then(|s| s.volumes)
        .and_then(|v| v.into_iter().next())
        .and_then(|v| v.persistent_volume_claim)
        .expect("claim volume");
    assert_eq!(volume.claim_name, claim_name);
    let spec = host_claim.spec.expect("spec");
    assert_eq!(spec.storage_class_name.as_deref(), Some("expandable"));
    assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_owned()]));
    assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
    assert_eq!(host_claim.metadata.labels.expect("labels")["app"], "db");

    // The host binds it: the status comes back.
    hclaims
        .patch_status(
            &claim_name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {
                "phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
            }})),
        )
        .await
        .expect("host status");
    eventually("the virtual claim bound", || async {
        let c = vclaims.get("data").await.ok()?;
        let status = c.status?;
        (status.phase.as_deref() == Some("Bound") && status.capacity?.contains_key("storage"))
            .then_some(())
    })
    .await;

    // A bigger request follows (volume expansion).
    vclaims
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})),
        )
        .await
        .expect("resize");
    eventually("the host claim resized", || async {
        let c = hclaims.get(&claim_name).await.ok()?;
        let requests = c.spec?.resources?.requests?;
        (requests.get("storage")?.0 == "2Gi").then_some(())
    })
    .await;

    vpods
        .delete("db", &DeleteParams::default())
        .await
        .expect("delete pod");
    vclaims
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete claim");
    eventually_gone("the host claim gone", &hclaims, &claim_name).await;
}

fn class(name: &str, provisioner: &str, expansion: bool) -> StorageClass {
    object(json!({
        "metadata": {
            "name": name,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": provisioner,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": expansion,
    }))
}

async fn host_storage_classes_are_shown_to_tenants(host: HostKind) {
    let env = Environment::start_with(host, "sc1", |c| c.syncers.storage_classes = true).await;
    let vclasses = env.virtual_cluster.cluster_api::<StorageClass>();
    let hclasses = env.host.cluster_api::<StorageClass>();

    // A tenant's own class with a host class's name is never touched.
    vclasses
        .create(
            &PostParams::default(),
            &class("mine", "tenant.example.com", false),
        )
        .await
        .expect("tenant class");
    hclasses
        .create(
            &PostParams::default(),
            &class("mine", "host.example.com", true),
        )
        .await
        .expect("host class with the same name");
    hclasses
        .create(
            &PostParams::default(),
            &class("fast", "ebs.csi.aws.com", false),
        )
        .await
        .expect("host class");

    let copy = eventually("the virtual copy", || async {
        vclasses.get_opt("fast").await.ok().flatten()
    })
    .await;
    assert_eq!(copy.provisioner, "ebs.csi.aws.com");
    assert_eq!(
        copy.metadata.labels.expect("labels")[FROM_HOST_LABEL],
        "true"
    );
    assert_eq!(
        copy.metadata.annotations.expect("annotations")
            ["storageclass.kubernetes.io/is-default-class"],
        "true"
    );

    // A mutable change is patched; an immutable one re-creates the copy.
    hclasses
        .patch(
            "fast",
            &PatchParams::default(),
            &Patch::Merge(&json!({"allowVolumeExpansion": true})),
        )
        .await
        .expect("host change");
    eventually("the copy expands", || async {
        let c = vclasses.get("fast").await.ok()?;
        (c.allow_volume_expansion == Some(true)).then_some(())
    })
    .await;
    hclasses
        .delete("fast", &DeleteParams::default())
        .await
        .expect("host delete");
    hclasses
        .create(
            &PostParams::default(),
            &class("fast", "pd.csi.storage.gke.io", true),
        )
        .await
        .expect("host re-create");
    eventually("the copy re-created", || async {
        let c = vclasses.get("fast").await.ok()?;
        (c.provisioner == "pd.csi.storage.gke.io").then_some(())
    })
    .await;

    let mine = vclasses.get("mine").await.expect("tenant class");
    assert_eq!(mine.provisioner, "tenant.example.com");
    assert_eq!(mine.metadata.labels, None);

    // The host class goes: so does the copy (and only the copy).
    hclasses
        .delete("fast", &DeleteParams::default())
        .await
        .expect("host delete");
    hclasses
        .delete("mine", &DeleteParams::default())
        .await
        .expect("host delete");
    eventually_gone("the copy gone", &vclasses, "fast").await;
    assert!(vclasses.get_opt("mine").await.expect("get").is_some());
}
