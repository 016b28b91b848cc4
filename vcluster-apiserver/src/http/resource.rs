//! Resource requests: maps method + path to a registry call and its answer
//! to the representation the client asked for.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{header, Method, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{json, Value};
use vcluster_core::validation;

use super::negotiate::{self, BodyFormat, Representation, MAX_BODY_BYTES};
use super::path::ResourcePath;
use super::{json as json_response, json_with_type, watch, ApiState, FieldValidation, Query};
use crate::error::ApiError;
use crate::field_selector::ObjectFilter;
use crate::registry::{
    DeleteOptions, FieldManager, ListOptions, ListPage, ObjectAddress, PatchKind, PatchOptions,
    Propagation, UpdateTarget, WriteOptions,
};
use crate::resources::table::{self, IncludeObject};
use crate::resources::ResourceInfo;

const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Handles a request on a resource path.
pub(super) async fn handle(
    state: &Arc<ApiState>,
    target: ResourcePath<'_>,
    request: Request,
) -> Result<Response, ApiError> {
    let resource = state
        .registry
        .catalog()
        .get(target.group, target.version, target.plural)
        .ok_or_else(|| ApiError::no_route(request.uri().path()))?;
    if !resource.namespaced && target.namespace.is_some() {
        return Err(ApiError::no_route(request.uri().path()));
    }
    if resource.namespaced && target.namespace.is_none() && target.name.is_some() {
        return Err(ApiError::no_route(request.uri().path()));
    }
    if let Some(namespace) = target.namespace {
        if let Some(why) = validation::dns1123_label_errors(namespace)
            .into_iter()
            .next()
        {
            return Err(ApiError::bad_request(format!(
                "invalid namespace {namespace:?}: {why}"
            )));
        }
    }
    let query = Query::parse(request.uri().query())?;
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = request.method().clone();
    let namespace = target.namespace.map(str::to_owned);
    let address = |name: &str| ObjectAddress {
        resource: resource.clone(),
        namespace: namespace.clone(),
        name: name.to_owned(),
    };
    if let Some(name) = target.name {
        if let Some(why) = resource.strategy.name_errors(name).into_iter().next() {
            return Err(ApiError::not_found(&resource.group, &resource.plural, name)
                .with_message_suffix(&why));
        }
    }
    let registry = &state.registry;
    // Every write records its field manager: the `fieldManager` parameter,
    // else the program part of the User-Agent, as upstream does.
    if let Some(manager) = &query.field_manager {
        FieldManager::validate(manager)?;
    }
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let write = WriteOptions {
        dry_run: query.dry_run,
        field_manager: Some(FieldManager {
            name: query
                .field_manager
                .clone()
                .unwrap_or_else(|| FieldManager::from_user_agent(user_agent)),
            subresource: None,
        }),
        // RBAC escalation prevention and the like (see `crate::auth`).
        admission: request
            .extensions()
            .get::<crate::registry::Admission>()
            .cloned(),
    };
    let reads = || negotiate::representation(accept.as_deref());
    let body_timeout = state.options.body_read_timeout;
    let watcher = watch::watch_user(&request);

    match (&method, target.name, target.subresource) {
        (&Method::GET, None, None) => {
            let representation = reads()?;
            if query.watch || target.legacy_watch {
                return watch::serve(
                    state,
                    &resource,
                    namespace.as_deref(),
                    &query,
                    representation,
                    None,
                    &watcher,
                )
                .await;
            }
            let options = list_options(&resource, &query)?;
            let page = registry
                .list(&resource, namespace.as_deref(), &options)
                .await?;
            Ok(list_response(&resource, page, representation, &query)?)
        }
        (&Method::GET, Some(name), None) => {
            let representation = reads()?;
            if query.watch || target.legacy_watch {
                return watch::serve(
                    state,
                    &resource,
                    namespace.as_deref(),
                    &query,
                    representation,
                    Some(name),
                    &watcher,
                )
                .await;
            }
            let object = registry.get(&address(name)).await?;
            object_response(&resource, StatusCode::OK, object, representation, &query)
        }
        (&Method::POST, None, None) => {
            let body = read_document(request, content_type.as_deref(), body_timeout).await?;
            let warnings = check_fields(&resource, &body, query.field_validation)?;
            let created = registry
                .create(&resource, namespace.as_deref(), body, &write)
                .await?;
            Ok(with_warnings(
                json_response(StatusCode::CREATED, &created),
                &warnings,
            ))
        }
        (&Method::PUT, Some(name), sub @ (None | Some("status"))) => {
            let target = update_target(&resource, sub)?;
            let body = read_document(request, content_type.as_deref(), body_timeout).await?;
            let warnings = check_fields(&resource, &body, query.field_validation)?;
            let updated = registry
                .update(&address(name), body, target, &write)
                .await?;
            Ok(with_warnings(
                json_response(StatusCode::OK, &updated),
                &warnings,
            ))
        }
        (&Method::PATCH, Some(name), sub @ (None | Some("status"))) => {
            let target = update_target(&resource, sub)?;
            let kind = patch_kind(content_type.as_deref())?;
            if kind == PatchKind::Apply && query.field_manager.is_none() {
                return Err(crate::registry::patch_options_invalid(
                    "fieldManager",
                    "Required value: is required for apply patch",
                ));
            }
            if kind != PatchKind::Apply && query.force {
                return Err(crate::registry::patch_options_invalid(
                    "force",
                    "Forbidden: may not be specified for non-apply patch",
                ));
            }
            let patch = read_bytes(request, body_timeout).await?;
            let options = PatchOptions {
                force: query.force,
                reject_unknown_fields: query.field_validation == FieldValidation::Strict,
            };
            let patched = registry
                .patch(&address(name), kind, &patch, target, &write, &options)
                .await?;
            let warnings: Vec<String> = match query.field_validation {
                FieldValidation::Warn => patched
                    .unknown_fields
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect(),
                _ => Vec::new(),
            };
            let code = if patched.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(with_warnings(
                json_response(code, &patched.object),
                &warnings,
            ))
        }
        (&Method::GET, Some(name), Some("status")) => {
            let object = registry.get(&address(name)).await?;
            update_target(&resource, Some("status"))?;
            Ok(json_response(StatusCode::OK, &object))
        }
        (&Method::DELETE, Some(name), None) => {
            let options = delete_options(&query, request, body_timeout).await?;
            let deleted = registry.delete(&address(name), &options).await?;
            Ok(json_response(StatusCode::OK, &deleted))
        }
        (&Method::DELETE, None, None) => {
            let list = list_options(&resource, &query)?;
            let options = delete_options(&query, request, body_timeout).await?;
            let deleted = registry
                .delete_collection(&resource, namespace.as_deref(), &list, &options)
                .await?;
            let revision = registry.storage().current_revision().await?;
            let page = ListPage {
                items: deleted,
                resource_version: revision,
                continue_token: None,
                remaining: None,
            };
            Ok(list_response(
                &resource,
                page,
                Representation::Object,
                &query,
            )?)
        }
        (_, Some(name), Some("scale")) if resource.scale_subresource => {
            let address = address(name);
            let scale = match method {
                Method::GET => registry.get_scale(&address).await?,
                Method::PUT => {
                    let body =
                        read_document(request, content_type.as_deref(), body_timeout).await?;
                    registry.update_scale(&address, &body, &write).await?
                }
                Method::PATCH => {
                    let kind = patch_kind(content_type.as_deref())?;
                    let patch = read_bytes(request, body_timeout).await?;
                    let current = registry.get_scale(&address).await?;
                    let desired = crate::registry::apply_patch(&current, kind, &patch)?;
                    registry.update_scale(&address, &desired, &write).await?
                }
                _ => return Err(method_not_allowed(&method, &resource, Some("scale"))),
            };
            Ok(json_response(StatusCode::OK, &scale))
        }
        (&Method::POST, Some(name), Some("binding")) if resource.serves_subresource("binding") => {
            let body = read_document(request, content_type.as_deref(), body_timeout).await?;
            registry.bind_pod(&address(name), &body, &write).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        (&Method::PUT, Some(name), Some("finalize")) if resource.serves_subresource("finalize") => {
            let body = read_document(request, content_type.as_deref(), body_timeout).await?;
            let namespace = registry.finalize_namespace(&address(name), &body).await?;
            Ok(json_response(StatusCode::OK, &namespace))
        }
        (&Method::GET, Some(name), Some("log")) if resource.serves_subresource("log") => {
            super::logs::pod_log(
                state,
                resource.clone(),
                namespace.as_deref().unwrap_or_default(),
                name,
                request.uri().query(),
            )
            .await
        }
        (_, Some(_), Some(sub @ ("exec" | "attach" | "portforward")))
            if resource.is("", "pods") =>
        {
            let mut err = ApiError::no_route(&format!("pods/{sub}"));
            err.message.push_str(
                ": container streams (exec, attach, port-forward) are not served by this API server",
            );
            Err(err)
        }
        (_, Some(_), Some(sub)) if !matches!(sub, "status" | "scale" | "binding" | "finalize") => {
            Err(ApiError::no_route(&format!("{}/{sub}", resource.plural)))
        }
        _ => Err(method_not_allowed(&method, &resource, target.subresource)),
    }
}

/// Applies `fieldValidation` to a write's body: unknown fields are refused
/// (`Strict`), reported as warnings (`Warn`) or ignored.
fn check_fields(
    resource: &ResourceInfo,
    body: &Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if validation == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let unknown = crate::resources::unknown_fields(resource, body);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    if validation == FieldValidation::Strict {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            messages.join(", ")
        )));
    }
    Ok(messages)
}

/// Adds `Warning: 299 - "..."` headers, which kubectl and client-go print.
fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = format!("299 - {:?}", warning);
        if let Ok(value) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

impl ApiError {
    fn with_message_suffix(mut self, why: &str) -> Self {
        self.message = format!("{} (the name is not valid: {why})", self.message);
        self
    }
}

fn method_not_allowed(method: &Method, resource: &ResourceInfo, sub: Option<&str>) -> ApiError {
    let what = match sub {
        Some(sub) => format!("{}/{sub}", resource.qualified_name()),
        None => resource.qualified_name(),
    };
    ApiError::method_not_allowed(format!(
        "the server does not allow this method on the requested resource ({method} {what})"
    ))
}

fn update_target(resource: &ResourceInfo, sub: Option<&str>) -> Result<UpdateTarget, ApiError> {
    match sub {
        None => Ok(UpdateTarget::Main),
        Some("status") if resource.status_subresource => Ok(UpdateTarget::Status),
        Some(other) => Err(ApiError::no_route(&format!("{}/{other}", resource.plural))),
    }
}

fn patch_kind(content_type: Option<&str>) -> Result<PatchKind, ApiError> {
    match negotiate::body_format(content_type)? {
        BodyFormat::JsonPatch => Ok(PatchKind::Json),
        BodyFormat::MergePatch => Ok(PatchKind::Merge),
        BodyFormat::StrategicMergePatch => Ok(PatchKind::StrategicMerge),
        BodyFormat::ApplyPatch => Ok(PatchKind::Apply),
        BodyFormat::Json | BodyFormat::Yaml | BodyFormat::Protobuf => Err(
            ApiError::unsupported_media_type(content_type.unwrap_or("application/json")),
        ),
    }
}

/// Reads the body, refusing more than [`MAX_BODY_BYTES`], and giving up
/// with `408 Timeout` when the whole body has not arrived within `timeout`
/// (a client sending its body byte by byte holds a connection and a buffer
/// for no longer than that).
pub(crate) async fn read_bytes(
    request: Request,
    timeout: std::time::Duration,
) -> Result<bytes::Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    let body: Body = request.into_body();
    let collected = tokio::time::timeout(timeout, Limited::new(body, MAX_BODY_BYTES).collect())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "Timeout",
                format!(
                    "the request body did not arrive within {}s",
                    timeout.as_secs_f64()
                ),
            )
        })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::too_large(MAX_BODY_BYTES))
        }
        Err(err) => Err(ApiError::bad_request(format!(
            "the request body could not be read: {err}"
        ))),
    }
}

/// Reads and decodes a JSON, YAML or protobuf object body.
async fn read_document(
    request: Request,
    content_type: Option<&str>,
    timeout: std::time::Duration,
) -> Result<Value, ApiError> {
    let format = negotiate::body_format(content_type)?;
    let bytes = read_bytes(request, timeout).await?;
    match format {
        BodyFormat::Json => negotiate::decode_document(&bytes, false),
        BodyFormat::Yaml => negotiate::decode_document(&bytes, true),
        BodyFormat::Protobuf => negotiate::decode_protobuf(&bytes),
        _ => Err(ApiError::unsupported_media_type(content_type.unwrap_or(""))),
    }
}

pub(super) fn list_options(
    resource: &ResourceInfo,
    query: &Query,
) -> Result<ListOptions, ApiError> {
    Ok(ListOptions {
        filter: ObjectFilter::parse(
            resource,
            query.label_selector.as_deref(),
            query.field_selector.as_deref(),
        )?,
        limit: query.limit,
        continue_token: query.continue_token.clone(),
        resource_version: query.resource_version.clone(),
        resource_version_match: query.resource_version_match.clone(),
    })
}

async fn delete_options(
    query: &Query,
    request: Request,
    timeout: std::time::Duration,
) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions {
        dry_run: query.dry_run,
        grace_period_seconds: query.grace_period_seconds,
        propagation: query
            .propagation_policy
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(Propagation::parse)
            .transpose()?,
        ..DeleteOptions::default()
    };
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_bytes(request, timeout).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(options);
    }
    let body = match negotiate::body_format(content_type.as_deref())? {
        BodyFormat::Protobuf => negotiate::decode_protobuf(&bytes)?,
        BodyFormat::Yaml => negotiate::decode_document(&bytes, true)?,
        _ => negotiate::decode_document(&bytes, false)?,
    };
    if let Some(dry_run) = body.get("dryRun").and_then(Value::as_array) {
        options.dry_run |= dry_run.iter().any(|v| v == "All");
    }
    options.uid = body
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    options.resource_version = body
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // The body wins over the query, as upstream decodes it last.
    if let Some(grace) = body.get("gracePeriodSeconds").filter(|g| !g.is_null()) {
        options.grace_period_seconds = Some(
            grace
                .as_i64()
                .ok_or_else(|| ApiError::bad_request("gracePeriodSeconds must be an integer"))?,
        );
    }
    match body.get("propagationPolicy").and_then(Value::as_str) {
        Some(policy) if !policy.is_empty() => {
            options.propagation = Some(Propagation::parse(policy)?)
        }
        _ => {}
    }
    if options.propagation.is_none() {
        // The deprecated `orphanDependents`: true orphans, false is the
        // default cascade.
        options.propagation = match body.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => Some(Propagation::Orphan),
            Some(false) => Some(Propagation::Background),
            None => None,
        };
    }
    Ok(options)
}

fn include_object(query: &Query) -> Result<IncludeObject, ApiError> {
    IncludeObject::parse(query.include_object.as_deref()).map_err(ApiError::bad_request)
}

/// Metadata-only view of an object.
pub(super) fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn object_response(
    resource: &ResourceInfo,
    code: StatusCode,
    object: Value,
    representation: Representation,
    query: &Query,
) -> Result<Response, ApiError> {
    match representation {
        Representation::Object => Ok(json_response(code, &object)),
        Representation::Metadata => Ok(json_response(code, &partial_metadata(&object))),
        Representation::Table => {
            let metadata =
                json!({"resourceVersion": crate::object::meta_str(&object, "resourceVersion")});
            let table = table::to_table(
                resource,
                std::slice::from_ref(&object),
                include_object(query)?,
                metadata,
                jiff::Timestamp::now(),
            );
            Ok(json_with_type(code, &table, TABLE_CONTENT_TYPE))
        }
    }
}

fn list_response(
    resource: &ResourceInfo,
    page: ListPage,
    representation: Representation,
    query: &Query,
) -> Result<Response, ApiError> {
    let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    match representation {
        Representation::Object => Ok(json_response(
            StatusCode::OK,
            &json!({
                "kind": resource.list_kind(),
                "apiVersion": resource.api_version(),
                "metadata": metadata,
                "items": page.items,
            }),
        )),
        Representation::Metadata => {
            let items: Vec<Value> = page.items.iter().map(partial_metadata).collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": metadata,
                    "items": items,
                }),
            ))
        }
        Representation::Table => {
            let table = table::to_table(
                resource,
                &page.items,
                include_object(query)?,
                metadata,
                jiff::Timestamp::now(),
            );
            Ok(json_with_type(StatusCode::OK, &table, TABLE_CONTENT_TYPE))
        }
    }
}
