//! Pod template hashes: the `pod-template-hash` label of a Deployment's
//! ReplicaSets (and the revision hashes of StatefulSets and DaemonSets).
//!
//! Upstream hashes the Go struct dump of the template with FNV-32a, mixes
//! in the collision count, and spells the 32-bit number with a
//! vowel-free alphabet (`SafeEncodeString`). Go's struct dump cannot be
//! reproduced outside Go, so the same recipe runs over the template's
//! canonical JSON (keys sorted): the hash looks and behaves like
//! upstream's (short, stable, changes with the template, bumped by the
//! collision count) without being bit-identical. Nothing depends on the
//! value itself: which ReplicaSet is "new" is decided by comparing
//! templates, as upstream does.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Serialize;
use serde_json::Value;

/// The label carrying the template hash on a Deployment's ReplicaSets and
/// their pods.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Upstream's alphabet for hashes in names (no vowels, no look-alikes).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The hash of `template`, with `collision_count` mixed in (upstream's
/// `ComputeHash`): at most 10 characters of `bcdfghjklmnpqrstvwxz2456789`.
pub(crate) fn template_hash<T: Serialize>(template: &T, collision_count: Option<i32>) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    let mut hash = fnv32a(FNV_OFFSET, canonical.as_bytes());
    if let Some(count) = collision_count {
        hash = fnv32a(hash, &(count as u32).to_le_bytes());
    }
    safe_encode(&hash.to_string())
}

const FNV_OFFSET: u32 = 0x811c_9dc5;

fn fnv32a(mut hash: u32, bytes: &[u8]) -> u32 {
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Upstream's `rand.SafeEncodeString`: each character mapped into
/// upstream's vowel-free alphabet, so decimal digits never spell words.
pub(crate) fn safe_encode(text: &str) -> String {
    text.chars()
        .map(|c| char::from(ALPHANUMS[(c as usize) % ALPHANUMS.len()]))
        .collect()
}

/// Writes `value` as JSON with object keys sorted, whatever order the map
/// type keeps.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Whether two pod templates are the same once the `pod-template-hash`
/// label is ignored (upstream's `EqualIgnoreHash`): how a Deployment finds
/// the ReplicaSet of its current template, including an old one it rolls
/// back to. Like upstream's semantic equality, an empty list or map equals
/// a missing one.
pub(crate) fn templates_equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    normalized_template(a) == normalized_template(b)
}

fn normalized_template(template: &PodTemplateSpec) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    let mut value = serde_json::to_value(&template).unwrap_or(Value::Null);
    strip_empty(&mut value);
    value
}

/// Removes nulls, empty lists and empty maps, recursively.
fn strip_empty(value: &mut Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => {
            items.iter_mut().for_each(|v| {
                strip_empty(v);
            });
            items.is_empty()
        }
        Value::Object(map) => {
            map.retain(|_, v| !strip_empty(v));
            map.is_empty()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use proptest::prelude::*;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        }
    }

    #[test]
    fn hashes_change_with_the_template_and_the_collision_count() {
        let a = template_hash(&template("nginx:1"), None);
        assert_eq!(a, template_hash(&template("nginx:1"), None), "stable");
        assert_ne!(a, template_hash(&template("nginx:2"), None));
        assert_ne!(a, template_hash(&template("nginx:1"), Some(1)));
        assert_ne!(
            template_hash(&template("nginx:1"), Some(1)),
            template_hash(&template("nginx:1"), Some(2))
        );
    }

    #[test]
    fn the_hash_label_and_empty_fields_do_not_change_equality() {
        let a = template("nginx:1");
        let mut b = a.clone();
        if let Some(labels) = b.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert(POD_TEMPLATE_HASH_LABEL.into(), "abc".into());
        }
        if let Some(meta) = b.metadata.as_mut() {
            meta.annotations = Some(Default::default());
        }
        assert!(templates_equal_ignoring_hash(&a, &b));
        assert!(!templates_equal_ignoring_hash(&a, &template("nginx:2")));
    }

    #[test]
    fn safe_encoding_matches_upstream() {
        // rand.SafeEncodeString("0123456789") in Go.
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    proptest! {
        #[test]
        fn hashes_are_short_and_use_the_safe_alphabet(image in "[a-z0-9:./-]{1,40}", count in proptest::option::of(0i32..1000)) {
            let hash = template_hash(&template(&image), count);
            prop_assert!(!hash.is_empty() && hash.len() <= 10);
            prop_assert!(hash.bytes().all(|b| ALPHANUMS.contains(&b)));
            prop_assert_eq!(hash.clone(), template_hash(&template(&image), count));
        }
    }
}
