//! Object metadata validation, the part of upstream's `ValidateObjectMeta`
//! every kind shares: a name that passes the kind's rule, label keys and
//! values, and bounded annotations. Kind-specific checks live with each
//! kind's strategy (`crate::resources::kinds`); the name, label and DNS
//! rules themselves are `vcluster_core::validation`, with upstream's words.

use serde_json::Value;
use vcluster_core::validation;

use crate::error::FieldCause;

use super::{labels, metadata};

/// Most bytes all annotations of an object may hold (keys and values).
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// Checks `object`'s metadata; `name_errors` is the kind's name rule.
pub fn metadata_causes(
    object: &Value,
    name_errors: impl Fn(&str) -> Vec<String>,
) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let name = super::name(object);
    if name.is_empty() {
        causes.push(FieldCause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        });
    } else {
        for why in name_errors(name) {
            causes.push(FieldCause::invalid("metadata.name", name, why));
        }
    }
    for (key, value) in labels(object) {
        for why in validation::qualified_name_errors(&key) {
            causes.push(FieldCause::invalid("metadata.labels", &key, why));
        }
        for why in validation::label_value_errors(&value) {
            causes.push(FieldCause::invalid(
                format!("metadata.labels.{key}"),
                &value,
                why,
            ));
        }
    }
    let annotation_bytes: usize =
        super::string_map(metadata(object).and_then(|m| m.get("annotations")))
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
    if annotation_bytes > ANNOTATIONS_MAX_BYTES {
        causes.push(FieldCause::too_long(
            "metadata.annotations",
            ANNOTATIONS_MAX_BYTES,
        ));
    }
    if let Some(labels) = metadata(object).and_then(|m| m.get("labels")) {
        let bad_shape = !labels.is_null()
            && labels
                .as_object()
                .is_none_or(|map| map.values().any(|v| !v.is_string()));
        if bad_shape {
            causes.push(FieldCause::invalid(
                "metadata.labels",
                &labels.to_string(),
                "labels must be a map of strings",
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(object: Value) -> Vec<String> {
        metadata_causes(&object, validation::dns1123_subdomain_errors)
            .into_iter()
            .map(|c| c.field)
            .collect()
    }

    #[test]
    fn names_and_labels_are_checked() {
        let pod = json!({"metadata": {"name": "Bad_Name", "labels": {"ok": "1", "a b": "x"}}});
        assert_eq!(fields(pod), ["metadata.name", "metadata.labels"]);
        assert_eq!(fields(json!({"metadata": {}})), ["metadata.name"]);
    }

    #[test]
    fn annotations_are_bounded_like_kubernetes() {
        let at_limit = json!({"metadata": {"name": "c", "annotations": {"a": "x".repeat(ANNOTATIONS_MAX_BYTES - 1)}}});
        assert!(fields(at_limit).is_empty());
        let over = json!({"metadata": {"name": "c", "annotations": {"a": "x".repeat(ANNOTATIONS_MAX_BYTES)}}});
        assert_eq!(fields(over), ["metadata.annotations"]);
    }
}
