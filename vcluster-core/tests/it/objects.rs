//! Whole-object translation of typed and dynamic objects.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PersistentVolume, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ManagedFieldsEntry, ObjectMeta, OwnerReference, Time,
};
use kube_core::{ApiResource, DynamicObject, GroupVersionKind as KubeGvk};
use serde_json::json;
use vcluster_core::markers::{
    MANAGED_ANNOTATIONS_ANNOTATION, MANAGED_BY_LABEL, MANAGED_LABELS_ANNOTATION, NAMESPACE_LABEL,
    OBJECT_HOST_NAMESPACE_ANNOTATION, OBJECT_HOST_NAME_ANNOTATION, OBJECT_KIND_ANNOTATION,
    OBJECT_NAMESPACE_ANNOTATION, OBJECT_NAME_ANNOTATION, OBJECT_UID_ANNOTATION,
};
use vcluster_core::prelude::*;
use vcluster_core::{merge_host_metadata, Error, VirtualKey};

use crate::{labels, meta, translator, HOST_NS, VC};

fn full_pod() -> Pod {
    let mut metadata = meta(Some("default"), "web");
    metadata.uid = Some("uid-123".into());
    metadata.resource_version = Some("42".into());
    metadata.generation = Some(3);
    metadata.creation_timestamp = Some(Time(Default::default()));
    metadata.deletion_timestamp = Some(Time(Default::default()));
    metadata.deletion_grace_period_seconds = Some(30);
    metadata.finalizers = Some(vec!["example.com/keep".into()]);
    metadata.generate_name = Some("web-".into());
    metadata.self_link = Some("/api/v1/namespaces/default/pods/web".into());
    metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: "web-abc".into(),
        uid: "rs-uid".into(),
        ..Default::default()
    }]);
    metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
    metadata.labels = Some(labels(&[("app", "web"), ("release", "v1")]));
    metadata.annotations = Some(labels(&[("note", "hello"), ("a.example.com/x", "y")]));
    Pod {
        metadata,
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn typed_pod_gets_host_metadata_and_keeps_its_body() {
    let t = translator();
    let pod = full_pod();
    let host = t.host_object(&pod).expect("valid pod");

    let expected_meta = ObjectMeta {
        name: Some("web-x-default-x-my-vc".into()),
        namespace: Some(HOST_NS.into()),
        labels: Some(labels(&[
            ("app", "web"),
            ("vcluster.loft.sh/label-my-vc-x-a4d451ec23", "v1"),
            (MANAGED_BY_LABEL, VC),
            (NAMESPACE_LABEL, "default"),
        ])),
        annotations: Some(labels(&[
            ("a.example.com/x", "y"),
            ("note", "hello"),
            (MANAGED_ANNOTATIONS_ANNOTATION, "a.example.com/x\nnote"),
            (
                MANAGED_LABELS_ANNOTATION,
                "app\nvcluster.loft.sh/label-my-vc-x-a4d451ec23",
            ),
            (OBJECT_NAME_ANNOTATION, "web"),
            (OBJECT_NAMESPACE_ANNOTATION, "default"),
            (OBJECT_UID_ANNOTATION, "uid-123"),
            (OBJECT_KIND_ANNOTATION, "/v1, Kind=Pod"),
            (OBJECT_HOST_NAME_ANNOTATION, "web-x-default-x-my-vc"),
            (OBJECT_HOST_NAMESPACE_ANNOTATION, HOST_NS),
        ])),
        // uid, resourceVersion, generation, timestamps, finalizers,
        // generateName, selfLink, ownerReferences, managedFields: all unset.
        ..Default::default()
    };
    assert_eq!(host.metadata, expected_meta);
    assert_eq!(host.spec, pod.spec);
    assert_eq!(t.virtual_key_of(&host), VirtualKey::of(&pod));
}

#[test]
fn kind_annotation_uses_the_go_format() {
    let t = translator();
    let deployment = Deployment {
        metadata: meta(Some("shop"), "api"),
        ..Default::default()
    };
    let host = t.host_object(&deployment).expect("valid deployment");
    let annotations = host.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations[OBJECT_KIND_ANNOTATION],
        "apps/v1, Kind=Deployment"
    );
    // No labels, no annotations on the virtual side: no bookkeeping keys.
    assert!(!annotations.contains_key(MANAGED_LABELS_ANNOTATION));
    assert!(!annotations.contains_key(MANAGED_ANNOTATIONS_ANNOTATION));
    assert_eq!(annotations[OBJECT_UID_ANNOTATION], "");
}

#[test]
fn dynamic_custom_resource_translates_like_a_typed_one() {
    let t = translator();
    let ar = ApiResource::from_gvk(&KubeGvk::gvk("example.com", "v1alpha1", "Widget"));
    let mut widget = DynamicObject::new("gear", &ar)
        .within("factory")
        .data(json!({ "spec": { "teeth": 12 } }));
    widget.metadata.uid = Some("w-1".into());
    widget.metadata.resource_version = Some("7".into());
    widget.metadata.labels = Some(labels(&[("vcluster.loft.sh/controlled-by", "me")]));

    let host = t
        .host_object_with(&widget, &ar, None)
        .expect("valid widget");
    assert_eq!(
        host.metadata.name.as_deref(),
        Some("gear-x-factory-x-my-vc")
    );
    assert_eq!(host.metadata.namespace.as_deref(), Some(HOST_NS));
    assert_eq!(host.metadata.resource_version, None);
    assert_eq!(host.data, widget.data);
    assert_eq!(host.types, widget.types);
    let annotations = host.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations[OBJECT_KIND_ANNOTATION],
        "example.com/v1alpha1, Kind=Widget"
    );
    let host_labels = host.metadata.labels.clone().unwrap_or_default();
    assert!(!host_labels.contains_key("vcluster.loft.sh/controlled-by"));
    assert_eq!(
        t.virtual_labels(&host_labels),
        labels(&[("vcluster.loft.sh/controlled-by", "me")])
    );
    assert_eq!(
        t.virtual_key_of(&host),
        Some(VirtualKey::namespaced("factory", "gear"))
    );
}

#[test]
fn cluster_scoped_object() {
    let t = translator();
    let pv = PersistentVolume {
        metadata: ObjectMeta {
            labels: Some(labels(&[("tier", "fast")])),
            ..meta(None, "pv-1")
        },
        ..Default::default()
    };
    let host = t.host_object(&pv).expect("valid volume");
    assert_eq!(
        host.metadata.name.as_deref(),
        Some("vcluster-pv-1-x-vcluster-my-vc-x-my-vc")
    );
    assert_eq!(host.metadata.namespace, None);
    assert_eq!(
        host.metadata.labels,
        Some(labels(&[
            ("tier", "fast"),
            (MANAGED_BY_LABEL, "vcluster-my-vc-x-my-vc")
        ]))
    );
    let annotations = host.metadata.annotations.clone().unwrap_or_default();
    assert!(!annotations.contains_key(OBJECT_NAMESPACE_ANNOTATION));
    assert!(!annotations.contains_key(OBJECT_HOST_NAMESPACE_ANNOTATION));
    assert_eq!(t.virtual_key_of(&host), Some(VirtualKey::cluster("pv-1")));
}

#[test]
fn pods_carry_their_namespace_labels() {
    let t = translator();
    let pod = Pod {
        metadata: meta(Some("default"), "web"),
        ..Default::default()
    };
    let ns_labels = labels(&[("team", "a")]);
    let host = t
        .host_object_with(&pod, &(), Some(&ns_labels))
        .expect("valid pod");
    let host_labels = host.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        host_labels["vcluster.loft.sh/ns-label-my-vc-x-ca8b22d0db"],
        "a"
    );
    let annotations = host.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations[MANAGED_LABELS_ANNOTATION],
        "vcluster.loft.sh/ns-label-my-vc-x-ca8b22d0db"
    );
    assert!(t.virtual_labels(&host_labels).is_empty());
}

#[test]
fn invalid_objects_are_errors_with_context() {
    let t = translator();
    let nameless = Pod {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match t.host_object(&nameless) {
        Err(Error::Object { object, error }) => {
            assert_eq!(object, "/v1, Kind=Pod default/");
            assert!(matches!(*error, Error::InvalidName { .. }), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let mut bad_label = full_pod();
    bad_label.metadata.labels = Some(labels(&[("bad key", "x")]));
    let err = t.host_object(&bad_label).expect_err("invalid label key");
    assert!(err
        .to_string()
        .starts_with("cannot translate /v1, Kind=Pod default/web: invalid label key"));
    let mut upper = full_pod();
    upper.metadata.name = Some("Web".into());
    assert!(t.host_object(&upper).is_err());
}

#[test]
fn translators_are_usable_as_trait_objects() {
    let t: Arc<dyn Translator> = Arc::new(translator());
    let host = t.host_object(&full_pod()).expect("valid pod");
    assert!(t.is_managed(&host.metadata));
    assert_eq!(
        t.virtual_key_of(&host),
        Some(VirtualKey::namespaced("default", "web"))
    );
}

#[test]
fn merge_keeps_foreign_keys_and_drops_stale_own_keys() {
    let t = translator();
    let mut pod = full_pod();
    let first = t.host_object(&pod).expect("valid pod").metadata;

    // Someone else labels and annotates the host object...
    let mut existing = first.clone();
    existing.uid = Some("host-uid".into());
    existing.resource_version = Some("100".into());
    if let Some(l) = existing.labels.as_mut() {
        l.insert("host-team".into(), "ops".into());
    }
    if let Some(a) = existing.annotations.as_mut() {
        a.insert("host.example.com/checked".into(), "yes".into());
    }
    // ...and the tenant removes a label and an annotation.
    pod.metadata.labels = Some(labels(&[("app", "web")]));
    pod.metadata.annotations = Some(labels(&[("note", "hello")]));
    let desired = t.host_object(&pod).expect("valid pod").metadata;

    let merged = merge_host_metadata(&existing, &desired);
    assert_eq!(merged.uid.as_deref(), Some("host-uid"));
    assert_eq!(merged.resource_version.as_deref(), Some("100"));
    let l = merged.labels.clone().unwrap_or_default();
    assert_eq!(l.get("host-team").map(String::as_str), Some("ops"));
    assert!(!l.contains_key("vcluster.loft.sh/label-my-vc-x-a4d451ec23"));
    assert_eq!(l.get("app").map(String::as_str), Some("web"));
    let a = merged.annotations.clone().unwrap_or_default();
    assert_eq!(
        a.get("host.example.com/checked").map(String::as_str),
        Some("yes")
    );
    assert!(!a.contains_key("a.example.com/x"));
    assert_eq!(a[MANAGED_ANNOTATIONS_ANNOTATION], "note");
    assert_eq!(a[MANAGED_LABELS_ANNOTATION], "app");
    assert!(t.is_owned_by(&merged, &VirtualKey::namespaced("default", "web")));
}
