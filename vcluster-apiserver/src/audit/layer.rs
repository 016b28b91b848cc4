//! The audit layer: outermost around the router, so every request is seen,
//! those authentication or RBAC refuse included.
//!
//! The policy needs the user, which authentication (inside this layer)
//! establishes; it reports it with its decision in the response's
//! [`AuthOutcome`]. So the level is decided when the response headers come
//! back, and the `RequestReceived` event is written then, with the time
//! the request arrived. Bodies are never held up: the request body is
//! copied (up to a cap) as the handler reads it, the response body as the
//! client reads it, and `ResponseComplete` is written when the response
//! body ends (or the client goes away). Long-running responses (watches,
//! logs, exec) get `ResponseStarted` with their headers and are never
//! copied.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures::FutureExt;
use http::{header, HeaderMap, HeaderValue, Method};
use serde_json::{json, Value};

use super::body::{Capture, TeeBody, Watched};
use super::event::{
    micro_time, Event, EventUser, ObjectRef, DECISION_ANNOTATION, REASON_ANNOTATION,
};
use super::policy::{Level, RequestAuditConfig, Stage};
use super::AuditConfig;
use crate::auth::{Attributes, AuthOutcome, UserInfo};

/// The response header naming a request's audit id (as upstream).
pub const AUDIT_ID_HEADER: &str = "audit-id";
/// Set on an event whose request or response body was larger than
/// [`AuditConfig::max_body_bytes`] and so left out.
pub const TRUNCATED_ANNOTATION: &str = "audit.vcluster.loft.sh/truncated";
/// Set on an event of a Secret whose data was left out (only
/// `RequestResponse` logs it).
pub const REDACTED_ANNOTATION: &str = "audit.vcluster.loft.sh/redacted";

/// Upstream's long-running requests: verbs `watch`, `proxy`; subresources
/// `attach`, `exec`, `proxy`, `log`, `portforward`.
fn long_running(a: &Attributes) -> bool {
    matches!(a.verb.as_str(), "watch" | "proxy")
        || (a.resource_request
            && matches!(
                a.subresource.as_str(),
                "attach" | "exec" | "proxy" | "log" | "portforward"
            ))
}

/// A client-given `Audit-Id` is kept when it is short printable ASCII
/// (upstream keeps it too, so a client can correlate), else a new uuid.
fn audit_id(headers: &HeaderMap) -> String {
    headers
        .get(AUDIT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// `X-Forwarded-For`, `X-Real-Ip`, then the peer (upstream's order).
fn source_ips(request: &Request) -> Vec<String> {
    let headers = request.headers();
    let mut ips: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|ip| ip.trim().to_owned())
        .filter(|ip| !ip.is_empty())
        .collect();
    if let Some(real) = headers.get("x-real-ip").and_then(|v| v.to_str().ok()) {
        ips.push(real.trim().to_owned());
    }
    if let Some(peer) = request.extensions().get::<crate::http::PeerAddr>() {
        let peer = peer.0.ip().to_string();
        if ips.last() != Some(&peer) {
            ips.push(peer);
        }
    }
    ips
}

fn object_ref(a: &Attributes) -> Option<ObjectRef> {
    a.resource_request.then(|| ObjectRef {
        resource: a.resource.clone(),
        namespace: a.namespace.clone(),
        name: a.name.clone(),
        api_group: a.api_group.clone(),
        api_version: a.api_version.clone(),
        subresource: a.subresource.clone(),
        ..ObjectRef::default()
    })
}

/// The audit middleware (see the module documentation).
pub async fn middleware(
    State(config): State<Arc<AuditConfig>>,
    mut request: Request,
    next: Next,
) -> Response {
    let received = jiff::Timestamp::now();
    let id = audit_id(request.headers());
    let attributes = Attributes::from_request(request.method(), request.uri());
    let mut event = Event {
        kind: "Event".into(),
        api_version: "audit.k8s.io/v1".into(),
        level: Level::None,
        audit_id: id.clone(),
        stage: Stage::RequestReceived,
        request_uri: request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        ),
        verb: attributes.verb.clone(),
        user: EventUser::default(),
        impersonated_user: None,
        source_ips: source_ips(&request),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        object_ref: object_ref(&attributes),
        response_status: None,
        request_object: None,
        response_object: None,
        request_received_timestamp: micro_time(received),
        stage_timestamp: micro_time(received),
        annotations: BTreeMap::new(),
    };
    let request_content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_capture = if matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        let (body, capture) =
            TeeBody::wrap(std::mem::take(request.body_mut()), config.max_body_bytes);
        *request.body_mut() = body;
        Some(capture)
    } else {
        None
    };
    let mut response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            // Who asked is not known here (authentication reports it with
            // the response): the policy is asked for an unknown user.
            let decided = config.policy.evaluate(&UserInfo::default(), &attributes);
            if decided.logs(Stage::Panic) {
                event.level = decided.level;
                event.stage = Stage::Panic;
                event.stage_timestamp = micro_time(jiff::Timestamp::now());
                event.response_status = Some(json!({"metadata": {}, "code": 500,
                    "status": "Failure", "message": "APIServer panic'd"}));
                config.sink.write(&event);
            }
            std::panic::resume_unwind(panic);
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(AUDIT_ID_HEADER, value);
    }
    let outcome = response
        .extensions()
        .get::<AuthOutcome>()
        .cloned()
        .unwrap_or_default();
    let user = outcome.user.clone().unwrap_or_else(UserInfo::anonymous);
    let decided = config.policy.evaluate(&user, &attributes);
    if decided.level == Level::None {
        return response;
    }
    event.level = decided.level;
    event.user = EventUser::from(&user);
    event.impersonated_user = outcome.impersonated.as_ref().map(EventUser::from);
    if decided.logs(Stage::RequestReceived) {
        config.sink.write(&event);
    }
    // Authorization ran after RequestReceived (upstream's events carry
    // its annotations from the next stage on).
    if let Some((allowed, reason)) = outcome.authorization {
        let decision = if allowed { "allow" } else { "forbid" };
        event
            .annotations
            .insert(DECISION_ANNOTATION.into(), decision.into());
        event.annotations.insert(REASON_ANNOTATION.into(), reason);
    }
    let code = response.status().as_u16();
    event.response_status = Some(json!({"metadata": {}, "code": code}));
    let streaming = long_running(&attributes);
    if streaming && decided.logs(Stage::ResponseStarted) {
        event.stage = Stage::ResponseStarted;
        event.stage_timestamp = micro_time(jiff::Timestamp::now());
        config.sink.write(&event);
    }
    let body = std::mem::take(response.body_mut());
    let (body, response_capture) =
        if !streaming && (decided.level >= Level::RequestResponse || code >= 400) {
            let (body, capture) = TeeBody::wrap(body, config.max_body_bytes);
            (body, Some(capture))
        } else {
            (body, None)
        };
    let pending = Pending {
        config,
        event,
        decided,
        secret: attributes.resource_request
            && attributes.api_group.is_empty()
            && attributes.resource == "secrets",
        request_capture,
        request_content_type,
        response_capture,
    };
    *response.body_mut() = Watched::wrap(body, move || pending.complete());
    response
}

/// An event waiting for its response to end.
struct Pending {
    config: Arc<AuditConfig>,
    event: Event,
    decided: RequestAuditConfig,
    secret: bool,
    request_capture: Option<Capture>,
    request_content_type: Option<String>,
    response_capture: Option<Capture>,
}

/// The captured bytes, decoded; `Err(true)` when they overflowed the cap.
fn decode(capture: &Capture, content_type: Option<&str>) -> Result<Value, bool> {
    let captured = capture.lock().map_err(|_| false)?;
    if captured.overflow {
        return Err(true);
    }
    if captured.bytes.is_empty() {
        return Err(false);
    }
    let bytes = axum::body::Bytes::copy_from_slice(&captured.bytes);
    let protobuf = content_type.is_some_and(|t| t.contains("protobuf"));
    let yaml = content_type.is_some_and(|t| t.contains("yaml"));
    let decoded = if protobuf {
        crate::request::negotiate::decode_protobuf(&bytes).ok()
    } else {
        crate::request::negotiate::decode_document(&bytes, yaml).ok()
    };
    decoded.ok_or(false)
}

impl Pending {
    fn complete(mut self) {
        self.event.stage = Stage::ResponseComplete;
        self.event.stage_timestamp = micro_time(jiff::Timestamp::now());
        let level = self.decided.level;
        if let Some(capture) = self.request_capture.take() {
            match decode(&capture, self.request_content_type.as_deref()) {
                Ok(object) => {
                    fill_object_ref(&mut self.event, &object);
                    if level >= Level::Request {
                        self.event.request_object = self.prepare(object);
                    }
                }
                Err(true) if level >= Level::Request => {
                    self.event
                        .annotations
                        .insert(TRUNCATED_ANNOTATION.into(), "requestObject".into());
                }
                Err(_) => {}
            }
        }
        if let Some(capture) = self.response_capture.take() {
            match decode(&capture, Some("application/json")) {
                Ok(object) => {
                    let code = self
                        .event
                        .response_status
                        .as_ref()
                        .and_then(|s| s.get("code"));
                    if object.get("kind").and_then(Value::as_str) == Some("Status")
                        && code.and_then(Value::as_u64).is_some_and(|c| c >= 400)
                    {
                        let mut status = json!({"metadata": {}});
                        for field in ["status", "message", "reason", "details", "code"] {
                            if let Some(value) = object.get(field) {
                                status[field] = value.clone();
                            }
                        }
                        self.event.response_status = Some(status);
                    }
                    if level >= Level::RequestResponse {
                        self.event.response_object = self.prepare(object);
                    }
                }
                Err(true) if level >= Level::RequestResponse => {
                    self.event
                        .annotations
                        .insert(TRUNCATED_ANNOTATION.into(), "responseObject".into());
                }
                Err(_) => {}
            }
        }
        if self.decided.logs(Stage::ResponseComplete) {
            self.config.sink.write(&self.event);
        }
    }

    /// An object as logged: without managed fields when the policy says
    /// so; a Secret's data only at `RequestResponse`.
    fn prepare(&mut self, mut object: Value) -> Option<Value> {
        if self.decided.omit_managed_fields {
            omit_managed_fields(&mut object);
        }
        if self.secret && self.decided.level < Level::RequestResponse {
            self.event.annotations.insert(
                REDACTED_ANNOTATION.into(),
                "Secret data is only logged at level RequestResponse".into(),
            );
            return redact_secret(object);
        }
        Some(object)
    }
}

/// Completes the object reference from the request object (the name of a
/// create, as upstream).
fn fill_object_ref(event: &mut Event, object: &Value) {
    let Some(reference) = event.object_ref.as_mut() else {
        return;
    };
    let text = |field: &str| {
        object
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if reference.name.is_empty() && reference.subresource.is_empty() {
        reference.name = text("name");
    }
    if reference.namespace.is_empty() {
        reference.namespace = text("namespace");
    }
}

fn omit_managed_fields(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(omit_managed_fields);
    }
}

/// A Secret (or a patch of one) without its data: `data`, `stringData`,
/// and kubectl's last-applied copy of them go; a JSON patch (a list of
/// operations that may carry values anywhere) goes whole.
fn redact_secret(mut object: Value) -> Option<Value> {
    let fields = object.as_object_mut()?;
    fields.remove("data");
    fields.remove("stringData");
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    Some(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_lose_their_data_and_patches_go_whole() {
        let secret = json!({"kind": "Secret", "metadata": {"name": "s", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"k\":\"c2VjcmV0\"}}",
            "keep": "me"}}, "data": {"k": "c2VjcmV0"}, "stringData": {"k": "secret"}});
        let redacted = redact_secret(secret).expect("an object stays");
        assert_eq!(
            redacted,
            json!({"kind": "Secret", "metadata": {"name": "s", "annotations": {"keep": "me"}}})
        );
        assert_eq!(
            redact_secret(json!([{"op": "add", "path": "/data/k", "value": "x"}])),
            None
        );
    }

    #[test]
    fn long_running_requests_are_watches_logs_and_exec() {
        let get = |uri: &str| Attributes::from_request(&Method::GET, &uri.parse().expect("uri"));
        assert!(long_running(&get(
            "/api/v1/namespaces/a/configmaps?watch=true"
        )));
        assert!(long_running(&get("/api/v1/namespaces/a/pods/p/log")));
        assert!(!long_running(&get("/api/v1/namespaces/a/configmaps")));
        assert!(!long_running(&get("/healthz")));
    }

    #[test]
    fn client_audit_ids_are_kept_when_sane() {
        let mut headers = HeaderMap::new();
        headers.insert(AUDIT_ID_HEADER, HeaderValue::from_static("my-id"));
        assert_eq!(audit_id(&headers), "my-id");
        headers.insert(AUDIT_ID_HEADER, HeaderValue::from_static("has space"));
        assert_eq!(audit_id(&headers).len(), 36);
    }
}
