//! A mutating webhook's answer applied: its RFC 6902 JSON patch on the
//! object under admission.

use serde_json::Value;

/// Applies `patch` (JSON bytes) to `object`; on error the object is left
/// as it was and the error says why (upstream's `JSON Patch: ...`).
pub fn apply(object: &mut Value, patch: &[u8]) -> Result<(), String> {
    let operations: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|e| format!("JSON Patch: {e}"))?;
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &operations).map_err(|e| format!("JSON Patch: {e}"))?;
    if patched.get("apiVersion") != object.get("apiVersion")
        || patched.get("kind") != object.get("kind")
    {
        return Err("JSON Patch: the patch may not change apiVersion or kind".into());
    }
    *object = patched;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::apply;

    #[test]
    fn adds_a_label_and_refuses_a_kind_change() {
        let mut object =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        apply(
            &mut object,
            br#"[{"op":"add","path":"/metadata/labels","value":{"x":"y"}}]"#,
        )
        .unwrap();
        assert_eq!(object["metadata"]["labels"]["x"], "y");
        let before = object.clone();
        let err = apply(
            &mut object,
            br#"[{"op":"replace","path":"/kind","value":"Secret"}]"#,
        )
        .unwrap_err();
        assert!(err.starts_with("JSON Patch:"), "{err}");
        assert_eq!(object, before);
        assert!(apply(&mut object, b"not json").is_err());
    }
}
