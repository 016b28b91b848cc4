//! Properties of host names: valid, deterministic, injective where the
//! vCluster scheme allows it, and the documented collision where it does not.

use std::collections::HashMap;

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use vcluster_core::naming::{safe_concat_name, safe_concat_name_eq};
use vcluster_core::validation::{is_dns1123_label, is_dns1123_subdomain};
use vcluster_core::{NameTranslator, SingleNamespaceTranslator, VirtualKey};

use crate::{translator, HOST_NS};

/// Independent transcription of vCluster's Go `SafeConcatName` (ASCII input).
fn go_safe_concat_name(parts: &[&str]) -> String {
    let full = parts.join("-");
    if full.len() <= 63 {
        return full;
    }
    let hex: String = Sha256::digest(full.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{}", &full[..52], &hex[..10]).replace(".-", "-")
}

fn dns_label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
}

fn dns_subdomain() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", 1..6).prop_map(|p| p.join("."))
}

/// Where the "-x-" separator could be found in more than one place, so
/// `name-x-namespace` does not determine `(name, namespace)`.
fn is_ambiguous(name: &str, namespace: &str) -> bool {
    name.contains("-x-")
        || namespace.contains("-x-")
        || name.ends_with("-x")
        || namespace.starts_with("x-")
}

fn host_name(t: &SingleNamespaceTranslator, namespace: &str, name: &str) -> String {
    t.host_key(&VirtualKey::namespaced(namespace, name))
        .expect("valid key")
        .name()
        .to_owned()
}

proptest! {
    #[test]
    fn safe_concat_matches_the_go_code(parts in prop::collection::vec("[a-z0-9.-]{0,40}", 0..6)) {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let got = safe_concat_name(&parts);
        prop_assert_eq!(&got, &go_safe_concat_name(&parts));
        prop_assert!(got.len() <= 63);
        prop_assert!(safe_concat_name_eq(&parts, &got));
    }

    #[test]
    fn safe_concat_never_panics(parts in prop::collection::vec(any::<String>(), 0..5)) {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        prop_assert!(safe_concat_name(&parts).len() <= 63);
    }

    #[test]
    fn label_names_give_dns_label_host_names(name in dns_label(), ns in dns_label(), vc in dns_label()) {
        let t = SingleNamespaceTranslator::new(&vc, HOST_NS).expect("valid names");
        let host = host_name(&t, &ns, &name);
        prop_assert!(is_dns1123_label(&host), "{host:?}");
        // Deterministic, also across translator instances.
        let again = SingleNamespaceTranslator::new(&vc, HOST_NS).expect("valid names");
        prop_assert_eq!(host, host_name(&again, &ns, &name));
    }

    #[test]
    fn subdomain_names_give_dns_subdomain_host_names(name in dns_subdomain(), ns in dns_label()) {
        let t = translator();
        let host = host_name(&t, &ns, &name);
        prop_assert!(is_dns1123_subdomain(&host), "{host:?}");
        prop_assert!(host.len() <= 63);
        let cluster = t.host_key(&VirtualKey::cluster(name.as_str())).expect("valid key");
        prop_assert!(is_dns1123_subdomain(cluster.name()), "{cluster}");
        prop_assert!(cluster.name().len() <= 63);
    }

    #[test]
    fn unambiguous_keys_are_injective(
        a in (dns_label(), dns_label()),
        b in (dns_label(), dns_label()),
    ) {
        prop_assume!(a != b && !is_ambiguous(&a.0, &a.1) && !is_ambiguous(&b.0, &b.1));
        let t = translator();
        prop_assert_ne!(host_name(&t, &a.1, &a.0), host_name(&t, &b.1, &b.0));
    }

    /// Long names that share their first 52 characters only differ by hash.
    #[test]
    fn hashed_names_with_a_shared_prefix_stay_distinct(
        prefix in "[a-z][a-z0-9]{51}",
        s1 in "[a-z0-9]{1,11}",
        s2 in "[a-z0-9]{1,11}",
        ns in "[a-z][a-z0-9]{0,20}",
    ) {
        prop_assume!(s1 != s2);
        let t = translator();
        let (n1, n2) = (format!("{prefix}{s1}"), format!("{prefix}{s2}"));
        let (h1, h2) = (host_name(&t, &ns, &n1), host_name(&t, &ns, &n2));
        prop_assert_eq!(h1.len(), 63);
        prop_assert_eq!(&h1[..52], &h2[..52]);
        prop_assert_ne!(h1, h2);
    }

    #[test]
    fn cluster_scoped_names_are_injective(a in dns_subdomain(), b in dns_subdomain()) {
        prop_assume!(a != b);
        let t = translator();
        let ha = t.host_key(&VirtualKey::cluster(a.as_str())).expect("valid key");
        let hb = t.host_key(&VirtualKey::cluster(b.as_str())).expect("valid key");
        prop_assert_ne!(ha, hb);
    }
}

/// Every DNS label of up to 5 characters over `a`, `x` and `-`.
fn tiny_labels() -> Vec<String> {
    let mut all = vec![String::new()];
    let mut out = Vec::new();
    for _ in 0..5 {
        all = all
            .iter()
            .flat_map(|p| ['a', 'x', '-'].map(|c| format!("{p}{c}")))
            .collect();
        out.extend(all.iter().filter(|s| is_dns1123_label(s)).cloned());
    }
    out
}

/// Exhaustively, over an alphabet full of 'x' and '-': collisions do
/// happen, and every key involved in one is ambiguous. So unambiguous keys
/// never share a host name with any other key.
#[test]
fn collisions_need_ambiguous_names() {
    let t = translator();
    let names = tiny_labels();
    let mut by_host: HashMap<String, Vec<(&str, &str)>> = HashMap::new();
    for name in &names {
        for ns in &names {
            by_host
                .entry(host_name(&t, ns, name))
                .or_default()
                .push((name, ns));
        }
    }
    let collisions: Vec<_> = by_host.values().filter(|keys| keys.len() > 1).collect();
    assert!(
        collisions.len() > 100,
        "the alphabet should produce collisions"
    );
    for keys in collisions {
        for (name, ns) in keys {
            assert!(is_ambiguous(name, ns), "{keys:?}");
        }
    }
}

/// The vCluster scheme cannot tell these apart; ownership checks can (see
/// `ownership::collision_is_detected_by_the_ownership_check`).
#[test]
fn known_collisions_of_the_vcluster_scheme() {
    let t = translator();
    // "-x-" inside a name or namespace.
    assert_eq!(host_name(&t, "c", "a-x-b"), "a-x-b-x-c-x-my-vc");
    assert_eq!(host_name(&t, "b-x-c", "a"), "a-x-b-x-c-x-my-vc");
    // No "-x-" anywhere, but a name ending in "-x" / a namespace starting with "x-".
    assert_eq!(host_name(&t, "b", "a-x"), "a-x-x-b-x-my-vc");
    assert_eq!(host_name(&t, "x-b", "a"), "a-x-x-b-x-my-vc");
}

#[test]
fn invalid_names_are_errors_not_panics() {
    let t = translator();
    for (ns, name) in [
        (Some("default"), ""),
        (Some("default"), "Web"),
        (Some("default"), "web_1"),
        (Some("default"), "-web"),
        (Some("Default"), "web"),
        (Some("a.b"), "web"),
        (None, "a..b"),
    ] {
        let key = VirtualKey::new(ns, name);
        assert!(t.host_key(&key).is_err(), "{key}");
    }
    assert!(t.host_namespace("Bad").is_err());
    assert_eq!(t.host_namespace("default").as_deref(), Ok(HOST_NS));
    for (vc, host_ns) in [
        ("", "h"),
        ("vc", ""),
        ("My-VC", "h"),
        ("vc", "h_ns"),
        ("vc", "a.b"),
    ] {
        assert!(
            SingleNamespaceTranslator::new(vc, host_ns).is_err(),
            "{vc:?} {host_ns:?}"
        );
    }
}
