//! PATCH: a patch is applied to the latest stored object and written back
//! with a compare-and-swap, retried when another writer got there first.

use serde_json::Value;

use super::{ObjectAddress, Registry, UpdateTarget, WriteOptions, MAX_UPDATE_ATTEMPTS};
use crate::error::ApiError;
use crate::object;

/// The kinds of patch Kubernetes clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// RFC 6902 JSON patch (`application/json-patch+json`).
    Json,
    /// RFC 7386 JSON merge patch (`application/merge-patch+json`).
    Merge,
    /// Strategic merge patch (`application/strategic-merge-patch+json`).
    StrategicMerge,
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
}

/// Applies a JSON patch or a JSON merge patch to a document. The other
/// kinds are answered with 415 until they are built.
pub fn apply_patch(document: &Value, format: PatchKind, patch: &[u8]) -> Result<Value, ApiError> {
    let mut patched = document.clone();
    match format {
        PatchKind::Json => {
            let operations: json_patch::Patch = serde_json::from_slice(patch).map_err(|err| {
                ApiError::bad_request(format!("the JSON patch is not valid: {err}"))
            })?;
            json_patch::patch(&mut patched, &operations).map_err(|err| {
                ApiError::new(
                    http::StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    format!("the JSON patch cannot be applied: {err}"),
                )
            })?;
        }
        PatchKind::Merge => {
            let merge: Value = serde_json::from_slice(patch).map_err(|err| {
                ApiError::bad_request(format!("the merge patch is not valid JSON: {err}"))
            })?;
            if !merge.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut patched, &merge);
        }
        PatchKind::StrategicMerge => {
            return Err(ApiError::unsupported_media_type(
                "application/strategic-merge-patch+json (not supported yet; use a JSON merge patch or a JSON patch)",
            ))
        }
        PatchKind::Apply => {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml (server-side apply is not supported yet)",
            ))
        }
    }
    Ok(patched)
}

impl Registry {
    /// Patches an object (or its status) and stores the result.
    pub async fn patch(
        &self,
        address: &ObjectAddress,
        format: PatchKind,
        patch: &[u8],
        target: UpdateTarget,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let current = self.get(address).await?;
            let patched = apply_patch(&current, format, patch)?;
            let pinned = object::meta_str(&patched, "resourceVersion")
                != object::meta_str(&current, "resourceVersion");
            match self.update(address, patched, target, options).await {
                // The patch was computed against a version that changed
                // meanwhile: compute it again, unless the patch itself
                // demanded that version.
                Err(err) if err.reason == "Conflict" && !pinned => continue,
                other => return other,
            }
        }
        Err(ApiError::conflict(
            &address.resource.group,
            &address.resource.plural,
            &address.name,
            "too many concurrent writers; try again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json_patches_apply() {
        let doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let merged = apply_patch(
            &doc,
            PatchKind::Merge,
            br#"{"metadata":{"labels":{"a":null,"c":"3"}}}"#,
        )
        .expect("merge");
        assert_eq!(merged["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        let patched = apply_patch(
            &doc,
            PatchKind::Json,
            br#"[{"op":"replace","path":"/metadata/labels/a","value":"9"}]"#,
        )
        .expect("json patch");
        assert_eq!(patched["metadata"]["labels"]["a"], "9");
    }

    #[test]
    fn bad_patches_are_client_errors() {
        let doc = json!({});
        let code = |format, body: &[u8]| {
            apply_patch(&doc, format, body)
                .expect_err("error")
                .code
                .as_u16()
        };
        assert_eq!(code(PatchKind::Merge, b"{"), 400);
        assert_eq!(code(PatchKind::Merge, b"[1]"), 400);
        assert_eq!(
            code(PatchKind::Json, br#"[{"op":"remove","path":"/x"}]"#),
            422
        );
        assert_eq!(code(PatchKind::StrategicMerge, b"{}"), 415);
    }
}
