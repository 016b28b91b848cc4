//! Errors as Kubernetes clients expect them: a `metav1.Status` with the
//! HTTP code and the machine-readable `reason` that client libraries branch
//! on (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `Expired`, ...).

use http::StatusCode;
use serde_json::{json, Value};

use crate::storage::StorageError;

/// Which object an error is about, for `Status.details`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorTarget {
    /// API group of the resource (empty for the core group).
    pub group: String,
    /// Resource name as in the URL (`pods`), which kube-apiserver puts in
    /// `details.kind`.
    pub kind: String,
    /// Object name, when one was addressed.
    pub name: String,
}

/// One field-level problem of an `Invalid` error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldCause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    /// JSON path of the field, e.g. `metadata.name`.
    pub field: String,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldCause {
    /// A required field is missing or empty.
    pub fn required(field: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }

    /// A field has a value that is not allowed.
    pub fn invalid(field: impl Into<String>, value: &str, why: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value:?}: {}", why.into()),
        }
    }

    /// A field is immutable and the update changed it.
    pub fn immutable(field: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: "field is immutable".into(),
        }
    }

    /// A field is larger than the kind allows (`max` bytes).
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            reason: "FieldValueTooLong",
            field: field.into(),
            message: format!("Too long: may not be more than {max} bytes"),
        }
    }

    /// A field may not be set or changed (`FieldValueForbidden`).
    pub fn forbidden(field: impl Into<String>, message: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {message}"),
        }
    }

    /// A value is not one of the supported ones.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Self {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: {value:?}: supported values: {}",
                list.join(", ")
            ),
        }
    }
}

/// An error answered to an API client as a `metav1.Status`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({}): {message}", code.as_u16())]
pub struct ApiError {
    /// HTTP status code.
    pub code: StatusCode,
    /// Kubernetes `StatusReason`.
    pub reason: &'static str,
    /// Human-readable message, in kube-apiserver's wording where clients
    /// or users are used to it.
    pub message: String,
    /// The object concerned, if any (boxed: errors travel in `Result`s
    /// everywhere and should stay small).
    pub target: Option<Box<ErrorTarget>>,
    /// Field-level causes (for `Invalid`).
    pub causes: Vec<FieldCause>,
    /// Ask the client to retry after this many seconds.
    pub retry_after_seconds: Option<u32>,
    /// Answered as Go's plain-text `404 page not found`, not a `Status`:
    /// what kube-apiserver answers for a path outside every API group it
    /// serves (kubectl reads it as "this group does not exist").
    pub plain_text: bool,
}

impl ApiError {
    /// An error with a code, reason and message and no details.
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            target: None,
            causes: Vec::new(),
            retry_after_seconds: None,
            plain_text: false,
        }
    }

    /// Attaches the object the error is about.
    pub fn with_target(mut self, group: &str, resource: &str, name: &str) -> Self {
        self.target = Some(Box::new(ErrorTarget {
            group: group.to_owned(),
            kind: resource.to_owned(),
            name: name.to_owned(),
        }));
        self
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 404 for an object: `pods "web" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} {name:?} not found", qualified(group, resource)),
        )
        .with_target(group, resource, name)
    }

    /// 404 for a path outside every group and version served (Go's
    /// `404 page not found`, as plain text).
    pub fn page_not_found() -> Self {
        let mut err = Self::new(StatusCode::NOT_FOUND, "NotFound", "404 page not found");
        err.plain_text = true;
        err
    }

    /// 404 for a URL that names no resource.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the server could not find the requested resource (path {path})"),
        )
    }

    /// 409: `pods "web" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} {name:?} already exists", qualified(group, resource)),
        )
        .with_target(group, resource, name)
    }

    /// 409: an update raced another writer.
    pub fn conflict(group: &str, resource: &str, name: &str, why: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {}",
                qualified(group, resource),
                why.into()
            ),
        )
        .with_target(group, resource, name)
    }

    /// 422: the object fails validation; `causes` say which fields.
    pub fn invalid(kind: &str, name: &str, causes: Vec<FieldCause>) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        // Several causes read as Go's aggregate error: in brackets.
        let summary = match summary.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{kind} {name:?} is invalid: {summary}"),
        );
        // `kind` is a group kind as Go prints one: `ReplicaSet.apps`.
        let (kind, group) = kind.split_once('.').unwrap_or((kind, ""));
        err.target = Some(Box::new(ErrorTarget {
            group: group.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }));
        err.causes = causes;
        err
    }

    /// 403: the request is understood but refused.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    /// 405: the resource does not support this verb.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message)
    }

    /// 406: no representation the client accepts.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", message)
    }

    /// 410: the requested resourceVersion is no longer available.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message)
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 415: the body's content type cannot be decoded.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            // Upstream's words (the type sent is not repeated).
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, {}", crate::protobuf::PROTOBUF_CONTENT_TYPE),
        )
    }

    /// 429: a limit (such as the number of watches) was hit.
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message);
        err.retry_after_seconds = Some(1);
        err
    }

    /// 500: something failed on our side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    /// 504: a read at a resourceVersion the server has not reached.
    pub fn timeout(message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::GATEWAY_TIMEOUT, "Timeout", message);
        err.retry_after_seconds = Some(1);
        err
    }

    /// Maps a storage failure on an object to the status clients expect.
    pub fn from_storage(err: StorageError, group: &str, resource: &str, name: &str) -> Self {
        match err {
            StorageError::NotFound { .. } => Self::not_found(group, resource, name),
            StorageError::AlreadyExists { .. } => Self::already_exists(group, resource, name),
            StorageError::Conflict { .. } => Self::conflict(
                group,
                resource,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ),
            other => Self::from(other),
        }
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if self.reason.is_empty() {
            // Go omits an empty reason (a `Status` a handler built itself).
            if let Some(map) = status.as_object_mut() {
                map.remove("reason");
            }
        }
        let mut details = serde_json::Map::new();
        if let Some(target) = &self.target {
            if !target.name.is_empty() {
                details.insert("name".into(), target.name.clone().into());
            }
            if !target.group.is_empty() {
                details.insert("group".into(), target.group.clone().into());
            }
            if !target.kind.is_empty() {
                details.insert("kind".into(), target.kind.clone().into());
            }
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| {
                    // Go omits an empty field (causes about no one field,
                    // such as an eviction's `DisruptionBudget`).
                    let mut cause = json!({"reason": c.reason, "message": c.message});
                    if !c.field.is_empty() {
                        cause["field"] = json!(c.field);
                    }
                    cause
                })
                .collect();
            details.insert("causes".into(), causes.into());
        }
        if let Some(secs) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), secs.into());
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match &err {
            StorageError::NotFound { key } => {
                Self::new(StatusCode::NOT_FOUND, "NotFound", format!("{key} not found"))
            }
            StorageError::AlreadyExists { key } => Self::new(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("{key} already exists"),
            ),
            StorageError::Conflict { .. } => Self::new(StatusCode::CONFLICT, "Conflict", err.to_string()),
            StorageError::Expired { requested, oldest } => Self::expired(format!(
                "The resourceVersion for the provided list or watch is too old (requested {requested}, oldest available {oldest})."
            )),
            StorageError::FutureRevision { requested, current } => Self::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            StorageError::Backend { .. } => Self::internal(err.to_string()),
        }
    }
}

/// `pods` or `deployments.apps`, as kube-apiserver names a resource in errors.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_kube_apiserver() {
        let status = ApiError::not_found("apps", "deployments", "web").to_status();
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["details"]["name"], "web");
        assert_eq!(status["details"]["group"], "apps");
        assert_eq!(status["details"]["kind"], "deployments");
    }

    #[test]
    fn invalid_lists_its_causes() {
        let err = ApiError::invalid(
            "Pod",
            "Bad_Name",
            vec![FieldCause::invalid(
                "metadata.name",
                "Bad_Name",
                "must be lowercase",
            )],
        );
        let status = err.to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
        assert!(status["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Pod \"Bad_Name\" is invalid: metadata.name")));
    }

    #[test]
    fn storage_errors_map_to_their_reasons() {
        let expired: ApiError = StorageError::Expired {
            requested: 1,
            oldest: 5,
        }
        .into();
        assert_eq!((expired.code.as_u16(), expired.reason), (410, "Expired"));
        let conflict = ApiError::from_storage(
            StorageError::Conflict {
                key: "k".into(),
                expected: 1,
                current: 2,
            },
            "",
            "pods",
            "web",
        );
        assert_eq!((conflict.code.as_u16(), conflict.reason), (409, "Conflict"));
    }
}
