//! Where Kubernetes' Go libraries differ from the Rust crates this server
//! uses, and clients depend on the Go behaviour.

use json_patch::{Patch, PatchError, PatchOperation};
use serde_json::Value;

/// Applies an RFC 6902 JSON patch the way kube-apiserver's JSON patch
/// library does: a `test` for `null` passes when the path does not exist
/// (kube-rs's `finalizer` helper tests `/metadata/finalizers` against
/// `null` before adding the first finalizer). Operations apply in order;
/// on error `document` may be half patched, so patch a copy.
pub fn apply_json_patch(document: &mut Value, operations: &Patch) -> Result<(), PatchError> {
    for operation in &operations.0 {
        if let PatchOperation::Test(test) = operation {
            if test.value.is_null() && document.pointer(test.path.as_str()).is_none() {
                continue;
            }
        }
        json_patch::patch(document, std::slice::from_ref(operation))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_null_test_of_a_missing_path_passes_as_in_go() {
        let mut doc = json!({"metadata": {"name": "x"}});
        let patch: Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["a"]},
        ]))
        .expect("patch");
        apply_json_patch(&mut doc, &patch).expect("applies");
        assert_eq!(doc["metadata"]["finalizers"], json!(["a"]));
        // Now the path exists: the same test fails.
        assert!(apply_json_patch(&mut doc, &patch).is_err());
    }
}
