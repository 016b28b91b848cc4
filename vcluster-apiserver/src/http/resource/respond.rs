//! What resource handlers answer with, and how they read bodies: the
//! representation a client asked for (JSON, Table, PartialObjectMetadata),
//! `fieldValidation` warnings, list and delete options, and the errors for
//! methods a resource does not serve.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{header, Method, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{json, Value};

use super::super::json as json_response;
use crate::error::ApiError;
use crate::field_selector::ObjectFilter;
use crate::registry::{DeleteOptions, ListOptions, ListPage, PatchKind, Propagation, UpdateTarget};
use crate::request::negotiate::{self, BodyFormat, Representation, MAX_BODY_BYTES};
use crate::request::{FieldValidation, Query};
use crate::resources::table::{self, IncludeObject};
use crate::resources::ResourceInfo;

/// Applies `fieldValidation` to a write's body: unknown and duplicate
/// fields are refused (`Strict`), reported as warnings (`Warn`) or ignored.
pub(super) fn check_fields(
    resource: &ResourceInfo,
    body: &Document,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if validation == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let unknown = crate::resources::unknown_fields(resource, &body.value);
    let messages: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .chain(
            body.duplicates
                .iter()
                .map(|f| format!("duplicate field {f:?}")),
        )
        .collect();
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    if validation == FieldValidation::Strict {
        // As upstream's decoder wraps it.
        return Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
            messages.join(", "),
            kind = resource.kind,
            version = resource.version,
        )));
    }
    Ok(messages)
}

/// Adds `Warning: 299 - "..."` headers, which kubectl and client-go print.
pub(super) fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = format!("299 - {:?}", warning);
        if let Ok(value) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

impl ApiError {
    pub(super) fn with_message_suffix(mut self, why: &str) -> Self {
        self.message = format!("{} (the name is not valid: {why})", self.message);
        self
    }
}

pub(super) fn method_not_allowed(
    method: &Method,
    resource: &ResourceInfo,
    sub: Option<&str>,
) -> ApiError {
    let what = match sub {
        Some(sub) => format!("{}/{sub}", resource.qualified_name()),
        None => resource.qualified_name(),
    };
    ApiError::method_not_allowed(format!(
        "the server does not allow this method on the requested resource ({method} {what})"
    ))
}

pub(super) fn update_target(
    resource: &ResourceInfo,
    sub: Option<&str>,
) -> Result<UpdateTarget, ApiError> {
    match sub {
        None => Ok(UpdateTarget::Main),
        Some("status") if resource.status_subresource => Ok(UpdateTarget::Status),
        // A patch of `approval` writes the conditions as a status patch.
        Some("approval") if resource.serves_subresource("approval") => Ok(UpdateTarget::Status),
        Some("ephemeralcontainers") if resource.serves_subresource("ephemeralcontainers") => {
            Ok(UpdateTarget::EphemeralContainers)
        }
        Some(other) => Err(ApiError::no_route(&format!("{}/{other}", resource.plural))),
    }
}

pub(super) fn patch_kind(content_type: Option<&str>) -> Result<PatchKind, ApiError> {
    let unsupported = || {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "415: Unsupported Media Type",
        )
    };
    let format = match negotiate::body_format(content_type) {
        Err(err) if err.code == StatusCode::UNSUPPORTED_MEDIA_TYPE => return Err(unsupported()),
        other => other?,
    };
    match format {
        BodyFormat::JsonPatch => Ok(PatchKind::Json),
        BodyFormat::MergePatch => Ok(PatchKind::Merge),
        BodyFormat::StrategicMergePatch => Ok(PatchKind::StrategicMerge),
        BodyFormat::ApplyPatch => Ok(PatchKind::Apply),
        // What upstream answers for a patch of any other type.
        BodyFormat::Json | BodyFormat::Yaml | BodyFormat::Protobuf => Err(unsupported()),
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
    let body: Body = request.into_body();
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        drain(body, timeout).await;
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
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

/// Reads and drops what a client sends beyond the limit, up to
/// [`DRAIN_BYTES`] and within `timeout`, so that a client still writing
/// its body reads our 413 rather than a connection reset (clients write
/// the whole body before they read an answer).
async fn drain(mut body: Body, timeout: std::time::Duration) {
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(timeout, async {
        while let Some(Ok(frame)) = body.frame().await {
            let read = frame.data_ref().map_or(0, |d| d.len());
            left = left.saturating_sub(read);
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

/// How much of a too-large body is read and dropped (see [`drain`]):
/// beyond this a client gets its connection closed.
const DRAIN_BYTES: usize = 4 * MAX_BODY_BYTES;

/// Reads and decodes a JSON, YAML or protobuf object body.
pub(super) async fn read_document(
    request: Request,
    content_type: Option<&str>,
    timeout: std::time::Duration,
) -> Result<Document, ApiError> {
    let format = negotiate::body_format(content_type)?;
    let bytes = read_bytes(request, timeout).await?;
    let (value, duplicates) = match format {
        BodyFormat::Json => (
            negotiate::decode_document(&bytes, false)?,
            crate::request::duplicates::duplicate_fields(&bytes),
        ),
        BodyFormat::Yaml => (negotiate::decode_document(&bytes, true)?, Vec::new()),
        BodyFormat::Protobuf => (negotiate::decode_protobuf(&bytes)?, Vec::new()),
        _ => return Err(ApiError::unsupported_media_type()),
    };
    Ok(Document { value, duplicates })
}

/// A write's body as read: the object, and the fields its JSON repeated
/// (the last of each is in `value`, as upstream decodes it).
pub(super) struct Document {
    pub(super) value: Value,
    pub(super) duplicates: Vec<String>,
}

pub(crate) fn list_options(
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

pub(super) async fn delete_options(
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
        context: crate::registry::RequestContext {
            user: request.extensions().get::<crate::auth::UserInfo>().cloned(),
            ..Default::default()
        },
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
    delete_options_from_body(&mut options, &body)?;
    Ok(options)
}

/// Reads a `DeleteOptions` document into `options` (what the body of a
/// DELETE carries, and an eviction's `deleteOptions`): the body wins over
/// the query, as upstream decodes it last.
pub(super) fn delete_options_from_body(
    options: &mut DeleteOptions,
    body: &Value,
) -> Result<(), ApiError> {
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
    Ok(())
}

pub(super) fn include_object(query: &Query) -> Result<IncludeObject, ApiError> {
    IncludeObject::parse(query.include_object.as_deref()).map_err(ApiError::bad_request)
}

/// Metadata-only view of an object.
pub(crate) fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

pub(super) fn object_response(
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
            Ok(json_response(code, &table))
        }
    }
}

pub(super) fn list_response(
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
        Representation::Object => {
            let mut items = page.items;
            // The items of a built-in kind's list carry no `kind` and
            // `apiVersion` (Go's typed lists leave them out); custom
            // resources' do.
            if resource.typed.is_some() {
                for item in &mut items {
                    if let Value::Object(fields) = item {
                        fields.remove("kind");
                        fields.remove("apiVersion");
                    }
                }
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": resource.list_kind(),
                    "apiVersion": resource.api_version(),
                    "metadata": metadata,
                    "items": items,
                }),
            ))
        }
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
            Ok(json_response(StatusCode::OK, &table))
        }
    }
}
