//! PATCH: a patch is applied to the latest stored object and written back
//! with a compare-and-swap, retried when another writer got there first.
//!
//! One file per concept: [`meta`] (generated per-field patch metadata),
//! [`strategic`] (strategic merge patch), [`fieldset`] (managed-field paths
//! and their `FieldsV1` encoding), [`apply`] (server-side apply and field
//! ownership of ordinary writes).

use serde_json::Value;

use super::{ObjectAddress, Registry, UpdateTarget, WriteOptions, MAX_UPDATE_ATTEMPTS};
use crate::error::ApiError;
use crate::object;

pub mod apply;
pub mod fieldset;
pub mod meta;
pub mod strategic;

pub use apply::FieldManager;

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

/// Options of a PATCH beyond those of every write.
#[derive(Clone, Debug, Default)]
pub struct PatchOptions {
    /// `force=true`: an apply takes over conflicting fields.
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields are a 400, not a warning.
    pub reject_unknown_fields: bool,
}

/// What a PATCH did.
#[derive(Clone, Debug)]
pub struct Patched {
    /// The stored (or, for dry runs, computed) object.
    pub object: Value,
    /// An apply created the object (201 rather than 200).
    pub created: bool,
    /// Fields the kind does not know (for `fieldValidation=Warn`).
    pub unknown_fields: Vec<String>,
}

/// Applies a JSON patch, JSON merge patch or strategic merge patch to a
/// document. Strategic merge patches use the metadata of the document's own
/// `apiVersion`/`kind`; kinds without metadata merge like a merge patch.
/// Server-side apply needs ownership data and goes through
/// [`Registry::patch`] instead (415 here).
pub fn apply_patch(document: &Value, format: PatchKind, patch: &[u8]) -> Result<Value, ApiError> {
    let mut patched = document.clone();
    match format {
        PatchKind::Json => {
            let operations: json_patch::Patch = serde_json::from_slice(patch).map_err(|err| {
                ApiError::bad_request(format!("the JSON patch is not valid: {err}"))
            })?;
            super::compat::apply_json_patch(&mut patched, &operations).map_err(|err| {
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
            let patch: Value = serde_json::from_slice(patch).map_err(|err| {
                ApiError::bad_request(format!(
                    "the strategic merge patch is not valid JSON: {err}"
                ))
            })?;
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            let meta = meta::PatchMeta::global();
            patched = strategic::apply(document, &patch, meta, meta.root_of(document)).map_err(
                |err| {
                    ApiError::new(
                        http::StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        format!("the strategic merge patch cannot be applied: {err}"),
                    )
                },
            )?;
        }
        PatchKind::Apply => return Err(ApiError::unsupported_media_type()),
    }
    Ok(patched)
}

/// Decodes an applied configuration (YAML or JSON, which is YAML).
fn decode_apply(patch: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(patch)
        .map_err(|_| ApiError::bad_request("the applied configuration is not UTF-8"))?;
    let value: Value = serde_yaml::from_str(text).map_err(|err| {
        ApiError::bad_request(format!(
            "the applied configuration is not valid YAML: {err}"
        ))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    }
    Ok(value)
}

impl Registry {
    /// Patches an object (or its status) and stores the result. A
    /// server-side apply (which needs `options.field_manager`) creates the
    /// object if it does not exist.
    pub async fn patch(
        &self,
        address: &ObjectAddress,
        format: PatchKind,
        patch: &[u8],
        target: UpdateTarget,
        options: &WriteOptions,
        patch_options: &PatchOptions,
    ) -> Result<Patched, ApiError> {
        let applied = match format {
            PatchKind::Apply => Some(decode_apply(patch)?),
            _ => None,
        };
        let unknown_fields = match &applied {
            Some(config) => self.unknown_fields(address, config, patch_options)?,
            None => Vec::new(),
        };
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let current = match self.get(address).await {
                Ok(current) => Some(current),
                Err(err) if err.reason == "NotFound" && applied.is_some() => None,
                Err(err) => return Err(err),
            };
            if let Some(config) = &applied {
                let Some(manager) = options.field_manager.as_ref() else {
                    return Err(apply::invalid_options(
                        "fieldManager",
                        "Required value: is required for apply patch",
                    ));
                };
                let manager = FieldManager {
                    subresource: target.subresource().map(str::to_owned),
                    ..manager.clone()
                };
                let desired = apply::apply(
                    &address.resource,
                    current.as_ref(),
                    config,
                    &manager,
                    patch_options.force,
                )?;
                // Ownership is already in `desired`: the write only carries it.
                let write = WriteOptions {
                    field_manager: None,
                    ..options.clone()
                };
                let result = match &current {
                    Some(_) => self.update(address, desired, target, &write).await,
                    None if target != UpdateTarget::Main => Err(address.not_found()),
                    None => {
                        self.create(
                            &address.resource,
                            address.namespace.as_deref(),
                            with_name(desired, &address.name),
                            &write,
                        )
                        .await
                    }
                };
                match result {
                    // Raced with another writer: merge again.
                    Err(err)
                        if matches!(err.reason, "Conflict" | "AlreadyExists")
                            && err.causes.is_empty() =>
                    {
                        continue
                    }
                    Err(err) => return Err(err),
                    Ok(object) => {
                        return Ok(Patched {
                            object,
                            created: current.is_none(),
                            unknown_fields,
                        })
                    }
                }
            }
            let Some(current) = current else { continue };
            let patched = apply_patch(&current, format, patch)?;
            let unknown_fields = self.unknown_fields(address, &patched, patch_options)?;
            let pinned = object::meta_str(&patched, "resourceVersion")
                != object::meta_str(&current, "resourceVersion");
            match self.update(address, patched, target, options).await {
                // The patch was computed against a version that changed
                // meanwhile: compute it again, unless the patch itself
                // demanded that version.
                Err(err) if err.reason == "Conflict" && !pinned => continue,
                Err(err) => return Err(err),
                Ok(object) => {
                    return Ok(Patched {
                        object,
                        created: false,
                        unknown_fields,
                    })
                }
            }
        }
        Err(ApiError::conflict(
            &address.resource.group,
            &address.resource.plural,
            &address.name,
            "too many concurrent writers; try again",
        ))
    }

    /// Unknown fields of a patched object or applied configuration: a 400
    /// under `fieldValidation=Strict`, else returned for warnings.
    fn unknown_fields(
        &self,
        address: &ObjectAddress,
        object: &Value,
        options: &PatchOptions,
    ) -> Result<Vec<String>, ApiError> {
        let unknown = crate::resources::unknown_fields(&address.resource, object);
        if address.resource.custom.is_some() && !unknown.is_empty() {
            // Upstream converts an applied configuration to its schema's
            // type before anything else, whatever `fieldValidation` says;
            // for a custom resource a field the schema lacks fails that
            // conversion (a 500, in its words).
            return Err(untyped_apply(address, object, &unknown));
        }
        if options.reject_unknown_fields && !unknown.is_empty() {
            let messages: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field {f:?}"))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                messages.join(", ")
            )));
        }
        Ok(unknown)
    }
}

/// kube-apiserver's answer to an applied custom resource with fields its
/// schema does not declare (structured-merge-diff's validation errors).
fn untyped_apply(address: &ObjectAddress, object: &Value, unknown: &[String]) -> ApiError {
    let errors: Vec<String> = unknown
        .iter()
        .map(|path| format!(".{path}: field not declared in schema"))
        .collect();
    let errors = match errors.as_slice() {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    let resource = &address.resource;
    ApiError::new(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        "",
        format!(
            "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {errors}",
            object::meta_str(object, "namespace"),
            object::name(object),
            resource.group,
            resource.version,
            resource.kind,
        ),
    )
}

/// Fills `metadata.name` from the URL when an apply that creates omits it.
fn with_name(mut object: Value, name: &str) -> Value {
    if object::name(&object).is_empty() {
        object::metadata_mut(&mut object).insert("name".into(), Value::String(name.to_owned()));
    }
    object
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
        assert_eq!(code(PatchKind::StrategicMerge, b"[]"), 400);
        assert_eq!(
            code(PatchKind::StrategicMerge, br#"{"$patch":"nope"}"#),
            422
        );
        assert_eq!(code(PatchKind::Apply, b"{}"), 415);
    }
}
