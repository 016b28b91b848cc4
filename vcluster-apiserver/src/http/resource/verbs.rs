//! One function per verb of a resource request: each reads what it needs
//! from the [`Call`], asks the registry, and answers.

use std::sync::Arc;

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::super::{json as json_response, logs, streams, watch, ApiState};
use super::call::Call;
use super::respond::{
    check_fields, delete_options, list_options, list_response, method_not_allowed, object_response,
    patch_kind, read_bytes, read_document, update_target, with_warnings, Document,
};
use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::registry::{self, DeleteOptions, ListPage, PatchKind, PatchOptions, UpdateTarget};
use crate::request::negotiate::{self, Representation};
use crate::request::FieldValidation;
use crate::resources::ResourceInfo;

/// `GET` on a collection: a list, or a watch.
pub(super) async fn list(state: &Arc<ApiState>, call: Call) -> Result<Response, ApiError> {
    let representation = negotiate::representation(call.accept.as_deref())?;
    let namespace = call.namespace.as_deref();
    if call.query.watch || call.legacy_watch {
        let (resource, query) = (&call.resource, &call.query);
        return watch::serve(
            state,
            resource,
            namespace,
            query,
            representation,
            None,
            &call.watcher,
        )
        .await;
    }
    let options = list_options(&call.resource, &call.query)?;
    let page = state
        .registry
        .list(&call.resource, namespace, &options)
        .await?;
    list_response(&call.resource, page, representation, &call.query)
}

/// `GET` on an object: the object, or a watch of it.
pub(super) async fn get(
    state: &Arc<ApiState>,
    call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let representation = negotiate::representation(call.accept.as_deref())?;
    if call.query.watch || call.legacy_watch {
        let (resource, query, namespace) = (&call.resource, &call.query, call.namespace.as_deref());
        return watch::serve(
            state,
            resource,
            namespace,
            query,
            representation,
            Some(name),
            &call.watcher,
        )
        .await;
    }
    let object = state.registry.get(&call.address(name)).await?;
    object_response(
        &call.resource,
        StatusCode::OK,
        object,
        representation,
        &call.query,
    )
}

/// `GET .../status`.
pub(super) async fn get_status(
    state: &Arc<ApiState>,
    call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let object = state.registry.get(&call.address(name)).await?;
    update_target(&call.resource, Some("status"))?;
    Ok(json_response(StatusCode::OK, &object))
}

/// `POST` on a collection.
pub(super) async fn create(state: &Arc<ApiState>, mut call: Call) -> Result<Response, ApiError> {
    let representation = negotiate::representation(call.accept.as_deref())?;
    let requester = call.request.extensions().get::<UserInfo>().cloned();
    let (mut body, warnings) = checked_body(&mut call).await?;
    if let Some(requester) = &requester {
        call.resource.strategy.stamp_requester(&mut body, requester);
    }
    let created = state
        .registry
        .create(&call.resource, call.namespace.as_deref(), body, &call.write)
        .await?;
    answer(
        &call,
        StatusCode::CREATED,
        created,
        representation,
        &warnings,
    )
}

/// `PUT` on a certificate signing request's `approval`: the body's
/// `Approved`/`Denied` conditions replace the stored ones; nothing else
/// of the body is taken (not the spec, not the certificate).
pub(super) async fn approve(
    state: &Arc<ApiState>,
    mut call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let representation = negotiate::representation(call.accept.as_deref())?;
    let (body, warnings) = checked_body(&mut call).await?;
    let address = call.address(name);
    let mut current = state.registry.get(&address).await?;
    let approvals = |conditions: Option<&Value>| -> Vec<Value> {
        conditions
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter(|c| matches!(c["type"].as_str(), Some("Approved" | "Denied")))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut conditions: Vec<Value> = crate::object::path(&current, "status.conditions")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter(|c| !matches!(c["type"].as_str(), Some("Approved" | "Denied")))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    conditions.extend(approvals(crate::object::path(&body, "status.conditions")));
    for condition in conditions.iter_mut().filter_map(Value::as_object_mut) {
        let now = serde_json::json!(crate::object::now_rfc3339());
        for stamp in ["lastUpdateTime", "lastTransitionTime"] {
            if condition.get(stamp).is_none_or(Value::is_null) {
                condition.insert(stamp.into(), now.clone());
            }
        }
    }
    if let Some(version) = crate::object::path(&body, "metadata.resourceVersion").cloned() {
        current["metadata"]["resourceVersion"] = version;
    }
    current["status"]["conditions"] = Value::Array(conditions);
    let updated = state
        .registry
        .update(&address, current, UpdateTarget::Status, &call.write)
        .await?;
    answer(&call, StatusCode::OK, updated, representation, &warnings)
}

/// `PUT` on an object or its status.
pub(super) async fn update(
    state: &Arc<ApiState>,
    mut call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let target = update_target(&call.resource, call.subresource.as_deref())?;
    let representation = negotiate::representation(call.accept.as_deref())?;
    let (body, warnings) = checked_body(&mut call).await?;
    let updated = state
        .registry
        .update(&call.address(name), body, target, &call.write)
        .await?;
    answer(&call, StatusCode::OK, updated, representation, &warnings)
}

/// A write's document, read and checked against `fieldValidation`
/// (unknown fields refused, or reported as the returned warnings).
async fn checked_body(call: &mut Call) -> Result<(Value, Vec<String>), ApiError> {
    let body = document(call).await?;
    let warnings = check_fields(&call.resource, &body, call.query.field_validation)?;
    Ok((body.value, warnings))
}

/// The call's body, decoded in its content type (within the body timeout).
async fn document(call: &mut Call) -> Result<Document, ApiError> {
    let request = std::mem::take(&mut call.request);
    read_document(request, call.content_type.as_deref(), call.body_timeout).await
}

/// A write's answer: the object in the representation the client asked
/// for (JSON, PartialObjectMetadata or a Table), with the warnings.
fn answer(
    call: &Call,
    code: StatusCode,
    object: Value,
    representation: Representation,
    warnings: &[String],
) -> Result<Response, ApiError> {
    let response = object_response(&call.resource, code, object, representation, &call.query)?;
    // Admission's warnings (webhooks') follow the body's own.
    let mut all = warnings.to_vec();
    all.extend(call.write.context.warnings.take());
    Ok(with_warnings(response, &all))
}

/// `PATCH` on an object or its status, in any of the four patch types.
pub(super) async fn patch(
    state: &Arc<ApiState>,
    mut call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let target: UpdateTarget = update_target(&call.resource, call.subresource.as_deref())?;
    let kind = patch_kind(call.content_type.as_deref())?;
    // A metadata-only client (kube-rs' `patch_metadata`) asks for the
    // answer as PartialObjectMetadata, as for any other verb.
    let representation = negotiate::representation(call.accept.as_deref())?;
    let query = &call.query;
    if kind == PatchKind::Apply && query.field_manager.is_none() {
        return Err(registry::patch_options_invalid(
            "fieldManager",
            "Required value: is required for apply patch",
        ));
    }
    if kind != PatchKind::Apply && query.force {
        return Err(registry::patch_options_invalid(
            "force",
            "Forbidden: may not be specified for non-apply patch",
        ));
    }
    let options = PatchOptions {
        force: query.force,
        reject_unknown_fields: query.field_validation == FieldValidation::Strict,
    };
    let warn = query.field_validation == FieldValidation::Warn;
    let address = call.address(name);
    let request = std::mem::take(&mut call.request);
    let patch = read_bytes(request, call.body_timeout).await?;
    let patched = state
        .registry
        .patch(&address, kind, &patch, target, &call.write, &options)
        .await?;
    let warnings: Vec<String> = if warn {
        patched
            .unknown_fields
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .collect()
    } else {
        Vec::new()
    };
    let code = if patched.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    answer(&call, code, patched.object, representation, &warnings)
}

/// `DELETE` on an object.
pub(super) async fn delete(
    state: &Arc<ApiState>,
    call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let address = call.address(name);
    let options = delete_options(&call.query, call.request, call.body_timeout).await?;
    let deleted = state.registry.delete(&address, &options).await?;
    let response = json_response(StatusCode::OK, &deletion_answer(&call.resource, deleted));
    Ok(with_warnings(response, &options.context.warnings.take()))
}

/// What a delete answers, as kube-apiserver's store does: an object that
/// stays (finalizers pending) or of a kind that returns what it deleted
/// is answered as itself; anything else with a `Status` naming it.
fn deletion_answer(resource: &ResourceInfo, deleted: Value) -> Value {
    let pending = deleted
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if pending || resource.strategy.returns_deleted_object() {
        return deleted;
    }
    let mut details = serde_json::Map::new();
    let name = deleted.pointer("/metadata/name").cloned();
    let uid = deleted.pointer("/metadata/uid").cloned();
    if let Some(name) = name {
        details.insert("name".into(), name);
    }
    if !resource.group.is_empty() {
        details.insert("group".into(), resource.group.clone().into());
    }
    details.insert("kind".into(), resource.plural.clone().into());
    if let Some(uid) = uid {
        details.insert("uid".into(), uid);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// `DELETE` on a collection: every selected object, answered as a list.
pub(super) async fn delete_collection(
    state: &Arc<ApiState>,
    call: Call,
) -> Result<Response, ApiError> {
    let registry = &state.registry;
    let list = list_options(&call.resource, &call.query)?;
    let options = delete_options(&call.query, call.request, call.body_timeout).await?;
    let deleted = registry
        .delete_collection(&call.resource, call.namespace.as_deref(), &list, &options)
        .await?;
    let page = ListPage {
        items: deleted,
        resource_version: registry.storage().current_revision().await?,
        continue_token: None,
        remaining: None,
    };
    list_response(&call.resource, page, Representation::Object, &call.query)
}

/// `.../scale`: read, replace or patch the replica count.
pub(super) async fn scale(
    state: &Arc<ApiState>,
    call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let registry = &state.registry;
    let address = call.address(name);
    let scale = match call.method {
        Method::GET => registry.get_scale(&address).await?,
        Method::PUT => {
            let body = read_document(
                call.request,
                call.content_type.as_deref(),
                call.body_timeout,
            )
            .await?;
            registry
                .update_scale(&address, &body.value, &call.write)
                .await?
        }
        Method::PATCH => {
            let kind = patch_kind(call.content_type.as_deref())?;
            let patch = read_bytes(call.request, call.body_timeout).await?;
            let current = registry.get_scale(&address).await?;
            let desired = registry::apply_patch(&current, kind, &patch)?;
            registry
                .update_scale(&address, &desired, &call.write)
                .await?
        }
        ref other => return Err(method_not_allowed(other, &call.resource, Some("scale"))),
    };
    Ok(json_response(StatusCode::OK, &scale))
}

/// `POST pods/<name>/binding`: a scheduler assigns the pod to a node.
pub(super) async fn bind(
    state: &Arc<ApiState>,
    mut call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let address = call.address(name);
    let body = document(&mut call).await?.value;
    state
        .registry
        .bind_pod(&address, &body, &call.write)
        .await?;
    Ok(created_success())
}

/// The `Status` a binding or an eviction answers with.
fn created_success() -> Response {
    json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

/// `POST namespaces/<ns>/bindings`: the binding names its pod.
pub(super) async fn bind_collection(
    state: &Arc<ApiState>,
    mut call: Call,
) -> Result<Response, ApiError> {
    let body = document(&mut call).await?.value;
    let name = crate::object::name(&body).to_owned();
    if name.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            "",
            vec![crate::error::FieldCause::required("metadata.name")],
        ));
    }
    let pods = state
        .registry
        .catalog()
        .get("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("the pods resource is not served"))?;
    let address = registry::ObjectAddress {
        resource: pods,
        namespace: call.namespace.clone(),
        name,
    };
    state
        .registry
        .bind_pod(&address, &body, &call.write)
        .await?;
    Ok(created_success())
}

/// `POST pods/<name>/eviction`: a policy/v1 `Eviction` (see
/// `Registry::evict_pod`); its `deleteOptions` are the pod's delete's,
/// with the request's `dryRun`.
pub(super) async fn evict(
    state: &Arc<ApiState>,
    mut call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let address = call.address(name);
    let body = document(&mut call).await?.value;
    let mut options = DeleteOptions {
        dry_run: call.query.dry_run,
        ..DeleteOptions::default()
    };
    if let Some(delete) = body.get("deleteOptions").filter(|d| d.is_object()) {
        super::respond::delete_options_from_body(&mut options, delete)?;
    }
    state.registry.evict_pod(&address, &body, options).await?;
    Ok(created_success())
}

/// `PUT namespaces/<name>/finalize`: the namespace's `spec.finalizers`.
pub(super) async fn finalize(
    state: &Arc<ApiState>,
    mut call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let address = call.address(name);
    let body = document(&mut call).await?.value;
    let namespace = state.registry.finalize_namespace(&address, &body).await?;
    Ok(json_response(StatusCode::OK, &namespace))
}

/// `GET pods/<name>/log`.
pub(super) async fn log(
    state: &Arc<ApiState>,
    call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    logs::pod_log(
        state,
        call.resource.clone(),
        call.namespace.as_deref().unwrap_or_default(),
        name,
        call.request.uri().query(),
    )
    .await
}

/// `pods/<name>/exec`, `attach`, `portforward`: upgraded to a container
/// stream.
pub(super) async fn stream(
    state: &Arc<ApiState>,
    call: Call,
    name: &str,
) -> Result<Response, ApiError> {
    let Some(subresource) = call
        .subresource
        .as_deref()
        .and_then(streams::Subresource::named)
    else {
        return Err(ApiError::no_route(&format!(
            "{}/{name}",
            call.resource.plural
        )));
    };
    streams::pod_stream(
        state,
        call.resource.clone(),
        call.namespace.as_deref().unwrap_or_default(),
        name,
        subresource,
        call.request,
    )
    .await
}
