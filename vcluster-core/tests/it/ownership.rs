//! Which host objects are ours, and that tenants cannot fake it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use vcluster_core::markers::{
    MANAGED_BY_LABEL, NAMESPACE_LABEL, OBJECT_HOST_NAME_ANNOTATION, OBJECT_NAMESPACE_ANNOTATION,
    OBJECT_NAME_ANNOTATION, OBJECT_UID_ANNOTATION,
};
use vcluster_core::{
    GroupVersionKind, MetadataTranslator, OwnershipTranslator, SingleNamespaceTranslator,
    VirtualKey,
};

use crate::{labels, meta, translator, HOST_NS, VC};

fn pod_kind() -> GroupVersionKind {
    GroupVersionKind::new("", "v1", "Pod")
}

fn host_meta(t: &SingleNamespaceTranslator, virtual_meta: &ObjectMeta) -> ObjectMeta {
    t.host_metadata(virtual_meta, &pod_kind(), None)
        .expect("valid object")
}

#[test]
fn translated_objects_are_managed_and_owned_by_their_key() {
    let t = translator();
    let host = host_meta(&t, &meta(Some("default"), "web"));
    let key = VirtualKey::namespaced("default", "web");
    assert!(t.is_managed(&host));
    assert_eq!(t.owner_of(&host), Some(key.clone()));
    assert!(t.is_owned_by(&host, &key));
    assert!(!t.is_owned_by(&host, &VirtualKey::namespaced("default", "web2")));

    let cluster = host_meta(&t, &meta(None, "fast-ssd"));
    assert_eq!(t.owner_of(&cluster), Some(VirtualKey::cluster("fast-ssd")));
}

#[test]
fn objects_without_our_managed_by_label_are_not_managed() {
    let t = translator();
    let mut host = host_meta(&t, &meta(Some("default"), "web"));
    for labels in [
        None,
        Some(labels(&[])),
        Some(labels(&[(MANAGED_BY_LABEL, "")])),
    ] {
        host.labels = labels;
        assert!(!t.is_managed(&host));
    }
    // A plain host object that merely has a matching name.
    let plain = ObjectMeta {
        name: Some("web-x-default-x-my-vc".into()),
        namespace: Some(HOST_NS.into()),
        ..Default::default()
    };
    assert!(!t.is_managed(&plain));
}

#[test]
fn objects_of_another_vcluster_in_the_same_host_namespace_are_not_managed() {
    let ours = translator();
    let theirs = SingleNamespaceTranslator::new("other-vc", HOST_NS).expect("valid names");
    let their_pod = host_meta(&theirs, &meta(Some("default"), "web"));
    assert!(theirs.is_managed(&their_pod));
    assert!(!ours.is_managed(&their_pod));
    let their_volume = host_meta(&theirs, &meta(None, "data"));
    assert!(!ours.is_managed(&their_volume));

    // Same virtual cluster name, other host namespace: namespaced objects live
    // elsewhere, and cluster-scoped objects carry a different marker.
    let twin = SingleNamespaceTranslator::new(VC, "other-host-ns").expect("valid names");
    assert!(!ours.is_managed(&host_meta(&twin, &meta(Some("default"), "web"))));
    assert!(!ours.is_managed(&host_meta(&twin, &meta(None, "data"))));
}

#[test]
fn edited_markers_do_not_count() {
    let t = translator();
    let host = host_meta(&t, &meta(Some("default"), "web"));

    let mut renamed = host.clone();
    renamed.name = Some("something-else".into());
    assert!(
        !t.is_managed(&renamed),
        "name no longer matches the annotations"
    );

    let mut moved = host.clone();
    moved.namespace = Some("another-host-namespace".into());
    assert!(!t.is_managed(&moved));

    for annotation in [OBJECT_NAME_ANNOTATION, OBJECT_NAMESPACE_ANNOTATION] {
        let mut stripped = host.clone();
        if let Some(a) = stripped.annotations.as_mut() {
            a.remove(annotation);
        }
        assert!(!t.is_managed(&stripped), "without {annotation}");
    }

    let mut retargeted = host.clone();
    if let Some(a) = retargeted.annotations.as_mut() {
        a.insert(OBJECT_NAME_ANNOTATION.into(), "victim".into());
    }
    assert!(!t.is_managed(&retargeted));
}

#[test]
fn tenants_cannot_imitate_markers() {
    let t = translator();
    let mut virtual_meta = meta(Some("default"), "web");
    virtual_meta.uid = Some("real-uid".into());
    virtual_meta.labels = Some(labels(&[
        (MANAGED_BY_LABEL, "other-vc"),
        (NAMESPACE_LABEL, "kube-system"),
        ("release", "fake"),
    ]));
    virtual_meta.annotations = Some(labels(&[
        (OBJECT_NAME_ANNOTATION, "victim"),
        (OBJECT_NAMESPACE_ANNOTATION, "kube-system"),
        (OBJECT_UID_ANNOTATION, "fake-uid"),
        (OBJECT_HOST_NAME_ANNOTATION, "victim-x-kube-system-x-my-vc"),
        ("vcluster.loft.sh/managed-annotations", "everything"),
    ]));
    let host = host_meta(&t, &virtual_meta);
    let host_labels = host.labels.clone().unwrap_or_default();
    let host_annotations = host.annotations.clone().unwrap_or_default();

    assert_eq!(host_labels[MANAGED_BY_LABEL], VC);
    assert_eq!(host_labels[NAMESPACE_LABEL], "default");
    // The tenant's values survive only under hashed keys.
    assert_eq!(
        host_labels["vcluster.loft.sh/label-my-vc-x-101dcd4e86"],
        "kube-system"
    );
    assert_eq!(host_annotations[OBJECT_NAME_ANNOTATION], "web");
    assert_eq!(host_annotations[OBJECT_NAMESPACE_ANNOTATION], "default");
    assert_eq!(host_annotations[OBJECT_UID_ANNOTATION], "real-uid");
    assert_eq!(
        host_annotations[OBJECT_HOST_NAME_ANNOTATION],
        "web-x-default-x-my-vc"
    );
    assert!(!host_annotations.contains_key("vcluster.loft.sh/managed-annotations"));

    assert_eq!(
        t.owner_of(&host),
        Some(VirtualKey::namespaced("default", "web"))
    );
    let other = SingleNamespaceTranslator::new("other-vc", HOST_NS).expect("valid names");
    assert!(!other.is_managed(&host));
}

/// `a-x-b` in `c` and `a` in `b-x-c` share a host name; the annotations tell
/// which of them a host object belongs to, so the syncer of the other one
/// sees a foreign object and refuses to overwrite or delete it.
#[test]
fn collision_is_detected_by_the_ownership_check() {
    let t = translator();
    let first = VirtualKey::namespaced("c", "a-x-b");
    let second = VirtualKey::namespaced("b-x-c", "a");
    let host = host_meta(&t, &meta(Some("c"), "a-x-b"));
    assert_eq!(host.name.as_deref(), Some("a-x-b-x-c-x-my-vc"));
    let second_host = host_meta(&t, &meta(Some("b-x-c"), "a"));
    assert_eq!(second_host.name, host.name);

    assert!(t.is_owned_by(&host, &first));
    assert!(!t.is_owned_by(&host, &second));
    assert!(t.is_owned_by(&second_host, &second));
    assert!(!t.is_owned_by(&second_host, &first));
}
