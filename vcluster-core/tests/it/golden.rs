//! Golden values computed by hand, outside this crate.
//!
//! Each hash below comes from the shell command written next to it
//! (`h10` is `printf %s "$1" | sha256sum | cut -c1-10`); lengths were
//! checked with `${#var}` in bash. Nothing here is produced by the code
//! under test.

use vcluster_core::naming::{hash_hex10, hashed_label_key, safe_concat_name};
use vcluster_core::{LabelTranslator, NameTranslator, SingleNamespaceTranslator, VirtualKey};

use crate::{translator, HOST_NS, VC};

fn host_name(namespace: &str, name: &str) -> String {
    let key = VirtualKey::namespaced(namespace, name);
    translator()
        .host_key(&key)
        .expect("valid key")
        .name()
        .to_owned()
}

#[test]
fn short_name_is_plain_concatenation() {
    // No hashing below 64 characters: "web" "x" "default" "x" "my-vc" joined by "-".
    assert_eq!(host_name("default", "web"), "web-x-default-x-my-vc");
}

#[test]
fn joined_name_of_exactly_63_characters_is_kept() {
    // n=checkout-frontend-canary-release-2024-eu-west (45 chars);
    // "$n-x-default-x-my-vc" has ${#j} = 63, so it is the name unchanged.
    let name = "checkout-frontend-canary-release-2024-eu-west";
    assert_eq!(
        host_name("default", name),
        "checkout-frontend-canary-release-2024-eu-west-x-default-x-my-vc"
    );
}

#[test]
fn joined_name_of_64_characters_is_hashed() {
    // j=checkout-frontend-canary-release-2024-eu-west1-x-default-x-my-vc (64 chars)
    // ${j:0:52} = checkout-frontend-canary-release-2024-eu-west1-x-def
    // h10 "$j"  = ff5d0c6ba5
    let name = "checkout-frontend-canary-release-2024-eu-west1";
    let got = host_name("default", name);
    assert_eq!(
        got,
        "checkout-frontend-canary-release-2024-eu-west1-x-def-ff5d0c6ba5"
    );
    assert_eq!(got.len(), 63);
}

#[test]
fn dot_before_the_hash_is_cleaned_up() {
    // j=payments-exporter-with-a-rather-long-name-in-region.eu1-x-default-x-my-vc (73)
    // ${j:0:52} = payments-exporter-with-a-rather-long-name-in-region.   (ends with '.')
    // h10 "$j"  = 65063889a9
    // "<52 chars>-65063889a9" contains ".-", which becomes "-".
    let name = "payments-exporter-with-a-rather-long-name-in-region.eu1";
    assert_eq!(
        host_name("default", name),
        "payments-exporter-with-a-rather-long-name-in-region-65063889a9"
    );
}

#[test]
fn dot_dash_inside_a_long_name_is_cleaned_but_not_in_a_short_one() {
    // j=v1.-beta-x-a-namespace-with-a-deliberately-long-name-for-tests-x-my-vc (70)
    // ${j:0:52} = v1.-beta-x-a-namespace-with-a-deliberately-long-name
    // h10 "$j"  = 2cab9ca4bf
    let long = [
        "v1.-beta",
        "x",
        "a-namespace-with-a-deliberately-long-name-for-tests",
        "x",
        "my-vc",
    ];
    assert_eq!(
        safe_concat_name(&long),
        "v1-beta-x-a-namespace-with-a-deliberately-long-name-2cab9ca4bf"
    );
    // vCluster only cleans up shortened names.
    assert_eq!(
        safe_concat_name(&["v1.-beta", "x", "ns", "x", "my-vc"]),
        "v1.-beta-x-ns-x-my-vc"
    );
}

#[test]
fn cluster_scoped_names() {
    // "vcluster" "my-storage" "x" "vcluster-my-vc" "x" "my-vc": 44 chars, kept.
    let t = translator();
    let key = t
        .host_key(&VirtualKey::cluster("my-storage"))
        .expect("valid key");
    assert_eq!(key.namespace(), None);
    assert_eq!(key.name(), "vcluster-my-storage-x-vcluster-my-vc-x-my-vc");

    // j=vcluster-pvc-0a1b2c3d-4e5f-6789-abcd-ef0123456789-x-vcluster-my-vc-x-my-vc (74)
    // ${j:0:52} = vcluster-pvc-0a1b2c3d-4e5f-6789-abcd-ef0123456789-x-
    // h10 "$j"  = aa6789bcf2
    let key = t
        .host_key(&VirtualKey::cluster(
            "pvc-0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        ))
        .expect("valid key");
    assert_eq!(
        key.name(),
        "vcluster-pvc-0a1b2c3d-4e5f-6789-abcd-ef0123456789-x--aa6789bcf2"
    );
}

#[test]
fn hashes_of_label_keys() {
    // h10 release = a4d451ec23 ; h10 team = ca8b22d0db
    // h10 vcluster.loft.sh/namespace = 101dcd4e86
    assert_eq!(hash_hex10("release").as_str(), "a4d451ec23");
    assert_eq!(hash_hex10("team").as_str(), "ca8b22d0db");
    assert_eq!(
        hash_hex10("vcluster.loft.sh/namespace").as_str(),
        "101dcd4e86"
    );
}

#[test]
fn reserved_label_key_is_hashed() {
    // "vcluster.loft.sh/label" "my-vc" "x" "a4d451ec23": 41 chars, kept.
    let t = translator();
    assert_eq!(
        t.host_label_key("release").expect("valid key"),
        "vcluster.loft.sh/label-my-vc-x-a4d451ec23"
    );
    assert_eq!(
        t.host_label_key("vcluster.loft.sh/namespace")
            .expect("valid key"),
        "vcluster.loft.sh/label-my-vc-x-101dcd4e86"
    );
    // h10 vcluster.loft.sh/managed-by = e5f1b28ab2
    // h10 vcluster.loft.sh/controlled-by = 2080cec00f
    assert_eq!(
        t.host_label_key("vcluster.loft.sh/managed-by")
            .expect("valid key"),
        "vcluster.loft.sh/label-my-vc-x-e5f1b28ab2"
    );
    assert_eq!(
        t.host_label_key("vcluster.loft.sh/controlled-by")
            .expect("valid key"),
        "vcluster.loft.sh/label-my-vc-x-2080cec00f"
    );
    assert_eq!(
        hashed_label_key("vcluster.loft.sh/label", VC, "release"),
        "vcluster.loft.sh/label-my-vc-x-a4d451ec23"
    );
    // Ordinary keys are copied unchanged.
    assert_eq!(t.host_label_key("app").expect("valid key"), "app");
}

#[test]
fn reserved_label_key_with_a_long_vcluster_name() {
    // vc=a-very-long-virtual-cluster-nm (30 chars)
    // j=vcluster.loft.sh/label-$vc-x-a4d451ec23 (66 chars)
    // ${j:0:52} = vcluster.loft.sh/label-a-very-long-virtual-cluster-n
    // h10 "$j"  = 7e3d886bf0
    let t = SingleNamespaceTranslator::new("a-very-long-virtual-cluster-nm", HOST_NS)
        .expect("valid names");
    assert_eq!(
        t.host_label_key("release").expect("valid key"),
        "vcluster.loft.sh/label-a-very-long-virtual-cluster-n-7e3d886bf0"
    );
    // And it still maps back.
    assert_eq!(
        t.virtual_label_key("vcluster.loft.sh/label-a-very-long-virtual-cluster-n-7e3d886bf0")
            .as_deref(),
        Some("release")
    );
}

#[test]
fn namespace_label_key_and_cluster_marker() {
    // "vcluster.loft.sh/ns-label" "my-vc" "x" "ca8b22d0db": 44 chars, kept.
    let t = translator();
    assert_eq!(
        t.namespace_label_key("team").expect("valid key"),
        "vcluster.loft.sh/ns-label-my-vc-x-ca8b22d0db"
    );
    // h10 kubernetes.io/metadata.name = cf1227b7b2
    assert_eq!(
        t.namespace_label_key("kubernetes.io/metadata.name")
            .expect("valid key"),
        "vcluster.loft.sh/ns-label-my-vc-x-cf1227b7b2"
    );
    // "vcluster-my-vc" "x" "my-vc": 22 chars, kept.
    assert_eq!(t.cluster_marker(), "vcluster-my-vc-x-my-vc");
}
