//! Translated selectors select exactly the translated objects that the
//! original selector selected, and never another tenant's objects.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vcluster_core::markers::{MANAGED_BY_LABEL, NAMESPACE_LABEL};
use vcluster_core::{
    LabelTranslator, MarkerScope, Operator, Requirement, Selector, SelectorTranslator,
    SingleNamespaceTranslator,
};

use crate::{translator, HOST_NS};

const KEYS: &[&str] = &[
    "app",
    "tier",
    "n",
    "release",
    "vcluster.loft.sh/namespace",
    "vcluster.loft.sh/managed-by",
    "vcluster.loft.sh/controlled-by",
    "example.com/team",
];
const VALUES: &[&str] = &["a", "b", "c", "1", "2", "10", ""];
const NUMBERS: &[&str] = &["0", "1", "2", "10"];

fn label_set() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(KEYS).prop_map(str::to_owned),
        prop::sample::select(VALUES).prop_map(str::to_owned),
        0..6,
    )
}

fn requirement(with_numeric: bool) -> impl Strategy<Value = Requirement> {
    let mut ops = vec![
        Operator::In,
        Operator::NotIn,
        Operator::Equals,
        Operator::NotEquals,
        Operator::Exists,
        Operator::DoesNotExist,
    ];
    if with_numeric {
        ops.extend([Operator::Gt, Operator::Lt]);
    }
    (
        prop::sample::select(KEYS),
        prop::sample::select(ops),
        prop::sample::subsequence(VALUES, 1..4),
        prop::sample::select(NUMBERS),
    )
        .prop_filter_map("valid requirement", |(key, op, values, number)| {
            let values: Vec<&str> = match op {
                Operator::In | Operator::NotIn => values,
                Operator::Equals | Operator::NotEquals => values.into_iter().take(1).collect(),
                Operator::Exists | Operator::DoesNotExist => Vec::new(),
                Operator::Gt | Operator::Lt => vec![number],
            };
            Requirement::new(key, op, values).ok()
        })
}

pub fn selector(with_numeric: bool) -> impl Strategy<Value = Selector> {
    prop::collection::vec(requirement(with_numeric), 0..5).prop_map(Selector::new)
}

fn other_vcluster() -> SingleNamespaceTranslator {
    SingleNamespaceTranslator::new("other-vc", HOST_NS).expect("valid names")
}

proptest! {
    #[test]
    fn translated_selector_matches_exactly_the_translated_labels(
        s in selector(true),
        labels in label_set(),
    ) {
        let t = translator();
        let host_selector = t.host_selector(&s, MarkerScope::Namespace("default")).expect("valid");
        let host_labels = t.host_labels(&labels, Some("default")).expect("valid");
        prop_assert_eq!(s.matches(&labels), host_selector.matches(&host_labels));

        // Never another namespace, another virtual cluster, or cluster-scoped objects.
        let elsewhere = t.host_labels(&labels, Some("kube-system")).expect("valid");
        prop_assert!(!host_selector.matches(&elsewhere));
        let foreign = other_vcluster().host_labels(&labels, Some("default")).expect("valid");
        prop_assert!(!host_selector.matches(&foreign));
        let cluster = t.host_labels(&labels, None).expect("valid");
        prop_assert!(!host_selector.matches(&cluster));
        // Nor the untranslated labels themselves (a host object not synced by us).
        prop_assert!(!host_selector.matches(&labels));

        // Across namespaces: still only this virtual cluster.
        let all = t.host_selector(&s, MarkerScope::AllNamespaces).expect("valid");
        prop_assert_eq!(s.matches(&labels), all.matches(&elsewhere));
        prop_assert!(!all.matches(&foreign));
    }

    #[test]
    fn translated_label_selector_matches_exactly_the_translated_labels(
        s in selector(false),
        labels in label_set(),
    ) {
        let t = translator();
        let virtual_ls = s.to_label_selector().expect("representable");
        let host_ls = t
            .host_label_selector(&virtual_ls, MarkerScope::Namespace("default"))
            .expect("valid");
        let host = Selector::from_label_selector(&host_ls).expect("valid host selector");
        let host_labels = t.host_labels(&labels, Some("default")).expect("valid");
        prop_assert_eq!(s.matches(&labels), host.matches(&host_labels));
        let foreign = other_vcluster().host_labels(&labels, Some("default")).expect("valid");
        prop_assert!(!host.matches(&foreign));
    }

    #[test]
    fn translated_map_selector_matches_exactly_the_translated_labels(
        map in label_set(),
        labels in label_set(),
    ) {
        prop_assume!(!map.is_empty());
        let t = translator();
        let host_map = t.host_map_selector(&map, MarkerScope::Namespace("default")).expect("valid");
        let host = Selector::from_map(&host_map).expect("valid host selector");
        let virtual_selector = Selector::from_map(&map).expect("valid selector");
        let host_labels = t.host_labels(&labels, Some("default")).expect("valid");
        prop_assert_eq!(virtual_selector.matches(&labels), host.matches(&host_labels));
        let elsewhere = t.host_labels(&labels, Some("kube-system")).expect("valid");
        prop_assert!(!host.matches(&elsewhere));
    }

    #[test]
    fn translated_namespace_selector_matches_pods_of_matching_namespaces(
        s in selector(false),
        namespace_labels in label_set(),
        pod_labels in label_set(),
    ) {
        let t = translator();
        let host_ls = t
            .host_namespace_selector(&s.to_label_selector().expect("representable"))
            .expect("valid");
        let host = Selector::from_label_selector(&host_ls).expect("valid host selector");
        let mut host_pod = t.host_labels(&pod_labels, Some("default")).expect("valid");
        host_pod.extend(t.namespace_labels(&namespace_labels).expect("valid"));
        prop_assert_eq!(s.matches(&namespace_labels), host.matches(&host_pod));
        let mut foreign = other_vcluster().host_labels(&pod_labels, Some("default")).expect("valid");
        foreign.extend(other_vcluster().namespace_labels(&namespace_labels).expect("valid"));
        prop_assert!(!host.matches(&foreign));
    }
}

#[test]
fn map_selector_markers_and_empty_selector() {
    let t = translator();
    let host = t
        .host_map_selector(
            &crate::labels(&[("app", "web"), ("release", "v1")]),
            MarkerScope::Namespace("shop"),
        )
        .expect("valid");
    assert_eq!(
        host,
        crate::labels(&[
            ("app", "web"),
            ("vcluster.loft.sh/label-my-vc-x-a4d451ec23", "v1"),
            (MANAGED_BY_LABEL, "my-vc"),
            (NAMESPACE_LABEL, "shop"),
        ])
    );
    // A Service without selector must not start selecting every tenant pod.
    assert!(t
        .host_map_selector(&BTreeMap::new(), MarkerScope::Namespace("shop"))
        .expect("valid")
        .is_empty());
}

#[test]
fn selectors_on_bookkeeping_keys_are_refused() {
    let t = translator();
    let forged = t.namespace_label_key("team").expect("valid key");
    let s = Selector::parse(&format!("{forged}=a")).expect("syntactically valid");
    assert!(t.host_selector(&s, MarkerScope::AllNamespaces).is_err());
    assert!(t
        .host_map_selector(
            &crate::labels(&[(forged.as_str(), "a")]),
            MarkerScope::Cluster
        )
        .is_err());
    assert!(t
        .host_selector(&Selector::everything(), MarkerScope::Namespace("Bad_NS"))
        .is_err());
}

#[test]
fn empty_label_selector_selects_the_whole_tenant_namespace() {
    let t = translator();
    let host = t
        .host_label_selector(&Default::default(), MarkerScope::Namespace("shop"))
        .expect("valid");
    assert_eq!(
        Selector::from_label_selector(&host)
            .expect("valid")
            .to_string(),
        "vcluster.loft.sh/managed-by=my-vc,vcluster.loft.sh/namespace=shop"
    );
}
