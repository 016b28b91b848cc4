//! Round trips: labels, annotations and keys survive virtual → host → virtual.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::prelude::*;
use vcluster_core::markers::{self, RESERVED_LABEL_KEYS};
use vcluster_core::validation::{is_label_key, is_label_value};
use vcluster_core::{
    Error, GroupVersionKind, LabelTranslator, MetadataTranslator, OwnershipTranslator, VirtualKey,
};

use crate::{translator, VC};

pub fn label_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(RESERVED_LABEL_KEYS.to_vec()).prop_map(str::to_owned),
        "[a-z]([a-z0-9._-]{0,10}[a-zA-Z0-9])?",
        "(example\\.com|vcluster\\.loft\\.sh|app\\.kubernetes\\.io)/[A-Za-z]([a-z0-9_.-]{0,8}[a-z0-9])?",
    ]
}

pub fn label_value() -> impl Strategy<Value = String> {
    "([A-Za-z0-9]([A-Za-z0-9_.-]{0,12}[A-Za-z0-9])?)?"
}

pub fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(label_key(), label_value(), 0..8)
}

fn annotation_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("([a-z.]{1,8}/)?[a-z][a-z0-9-]{0,8}", any::<String>(), 0..5)
}

fn kind() -> GroupVersionKind {
    GroupVersionKind::new("", "v1", "ConfigMap")
}

proptest! {
    #[test]
    fn labels_round_trip(labels in label_map(), ns in "[a-z][a-z0-9-]{0,10}[a-z0-9]") {
        let t = translator();
        for namespace in [Some(ns.as_str()), None] {
            let host = t.host_labels(&labels, namespace).expect("valid labels");
            for (k, v) in &host {
                prop_assert!(is_label_key(k), "{k:?}");
                prop_assert!(is_label_value(v), "{v:?}");
            }
            let marker = host.get(markers::MANAGED_BY_LABEL).cloned();
            match namespace {
                Some(ns) => {
                    prop_assert_eq!(marker.as_deref(), Some(VC));
                    prop_assert_eq!(host.get(markers::NAMESPACE_LABEL), Some(&ns.to_owned()));
                }
                None => {
                    prop_assert_eq!(marker.as_deref(), Some(t.cluster_marker()));
                    prop_assert!(!host.contains_key(markers::NAMESPACE_LABEL));
                }
            }
            prop_assert_eq!(&t.virtual_labels(&host), &labels);
        }
    }

    #[test]
    fn metadata_round_trips(
        labels in label_map(),
        annotations in annotation_map(),
        name in "[a-z0-9]([a-z0-9.-]{0,70}[a-z0-9])?",
        ns in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
        namespaced in any::<bool>(),
    ) {
        prop_assume!(!name.contains("..") && !name.contains(".-") && !name.contains("-."));
        let t = translator();
        let virtual_meta = ObjectMeta {
            name: Some(name.clone()),
            namespace: namespaced.then(|| ns.clone()),
            labels: Some(labels.clone()),
            annotations: Some(annotations.clone()),
            uid: Some("uid-1".into()),
            ..Default::default()
        };
        let host = t.host_metadata(&virtual_meta, &kind(), None).expect("valid object");
        let key = VirtualKey::new(namespaced.then_some(ns.as_str()), &name);
        prop_assert_eq!(t.owner_of(&host), Some(key.clone()));
        prop_assert!(t.is_owned_by(&host, &key));
        prop_assert_eq!(&t.virtual_labels(host.labels.as_ref().expect("labels")), &labels);
        let back = t.virtual_annotations(host.annotations.as_ref().expect("annotations"));
        let expected: BTreeMap<_, _> = annotations
            .into_iter()
            .filter(|(k, _)| !markers::is_marker_annotation(k))
            .collect();
        prop_assert_eq!(back, expected);
    }
}

#[test]
fn virtual_labels_drop_bookkeeping_and_foreign_markers() {
    let t = translator();
    let ns_label = t.namespace_label_key("team").expect("valid key");
    let host = crate::labels(&[
        ("app", "web"),
        (markers::MANAGED_BY_LABEL, VC),
        (markers::NAMESPACE_LABEL, "default"),
        (markers::CONTROLLED_BY_LABEL, "some-controller"),
        ("release", "host-helm-release"),
        (ns_label.as_str(), "a"),
        // Hashed key of *another* virtual cluster: an ordinary label to us.
        ("vcluster.loft.sh/label-other-x-a4d451ec23", "x"),
        // Our label key space, but not the hash of a reserved key.
        ("vcluster.loft.sh/label-my-vc-x-0000000000", "x"),
    ]);
    assert_eq!(
        t.virtual_labels(&host),
        crate::labels(&[
            ("app", "web"),
            ("vcluster.loft.sh/label-other-x-a4d451ec23", "x")
        ])
    );
}

#[test]
fn virtual_labels_that_forge_bookkeeping_keys_are_refused() {
    let t = translator();
    let forged_ns_label = t.namespace_label_key("team").expect("valid key");
    let forged_reserved = t.host_label_key("release").expect("valid key").into_owned();
    for key in [forged_ns_label, forged_reserved] {
        let labels = crate::labels(&[(key.as_str(), "x")]);
        assert_eq!(
            t.host_labels(&labels, Some("default")),
            Err(Error::ReservedLabelKey {
                key: key.clone(),
                vcluster: VC.into()
            })
        );
    }
    let bad_key = crate::labels(&[("not a key", "x")]);
    assert!(matches!(
        t.host_labels(&bad_key, Some("default")),
        Err(Error::InvalidLabelKey { .. })
    ));
    let bad_value = crate::labels(&[("app", "not a value")]);
    assert!(matches!(
        t.host_labels(&bad_value, Some("default")),
        Err(Error::InvalidLabelValue { .. })
    ));
}

#[test]
fn namespace_labels_go_onto_pods_and_never_come_back() {
    let t = translator();
    let ns_labels = crate::labels(&[("team", "a"), ("kubernetes.io/metadata.name", "default")]);
    let host = t.namespace_labels(&ns_labels).expect("valid labels");
    assert_eq!(
        host.get("vcluster.loft.sh/ns-label-my-vc-x-ca8b22d0db")
            .map(String::as_str),
        Some("a")
    );
    assert_eq!(host.len(), 2);
    assert!(t.virtual_labels(&host).is_empty());
}
