//! The audit `Event` (`audit.k8s.io/v1`), one JSON line per request stage,
//! with upstream's field names so existing audit tooling reads our logs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::policy::{Level, Stage};

/// The `authorization.k8s.io/decision` annotation key (`allow`/`forbid`).
pub const DECISION_ANNOTATION: &str = "authorization.k8s.io/decision";
/// The `authorization.k8s.io/reason` annotation key.
pub const REASON_ANNOTATION: &str = "authorization.k8s.io/reason";

/// The user of an event (`authentication.k8s.io/v1` `UserInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventUser {
    /// The user name.
    #[serde(default)]
    pub username: String,
    /// The uid, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Extra attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl From<&crate::auth::UserInfo> for EventUser {
    fn from(user: &crate::auth::UserInfo) -> Self {
        Self {
            username: user.name.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user.extra.clone(),
        }
    }
}

/// What object a request addressed (upstream's `ObjectReference`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// The resource (`configmaps`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// The namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The object uid, when the response tells it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The API group (absent for the core group).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    /// The API version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// The resource version, when the response tells it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// The subresource (`status`, `log`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

/// One audit event: a request at one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `Event`.
    pub kind: String,
    /// `audit.k8s.io/v1`.
    pub api_version: String,
    /// The level the policy gave the request.
    pub level: Level,
    /// The request's id, the same in all its events (and its `Audit-Id`
    /// response header).
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// The stage this event was written at.
    pub stage: Stage,
    /// The request's path and query.
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    /// The Kubernetes verb, or the lower-case HTTP method of non-resource
    /// requests.
    pub verb: String,
    /// Who sent the request (before impersonation).
    pub user: EventUser,
    /// Who the request acted as, when impersonating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<EventUser>,
    /// The client's addresses (`X-Forwarded-For`, then the peer).
    #[serde(rename = "sourceIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    /// The `User-Agent` header.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// The object addressed (resource requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectRef>,
    /// The response's code (and, on errors, its `metav1.Status` fields);
    /// absent at `RequestReceived`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<Value>,
    /// The request body (levels `Request` and `RequestResponse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_object: Option<Value>,
    /// The response body (level `RequestResponse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_object: Option<Value>,
    /// When the request arrived (RFC 3339, microseconds).
    pub request_received_timestamp: String,
    /// When this stage was reached (RFC 3339, microseconds).
    pub stage_timestamp: String,
    /// Authorization's decision and reason, and notes of this server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A timestamp as upstream's `metav1.MicroTime` (`2006-01-02T15:04:05.000000Z`).
pub fn micro_time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_serialize_with_upstreams_field_names() {
        let mut annotations = BTreeMap::new();
        annotations.insert(DECISION_ANNOTATION.to_owned(), "allow".to_owned());
        let event = Event {
            kind: "Event".into(),
            api_version: "audit.k8s.io/v1".into(),
            level: Level::Request,
            audit_id: "b8a8c3a2-1d8e-4b33-9e0f-2f6a8a6d4c11".into(),
            stage: Stage::ResponseComplete,
            request_uri: "/api/v1/namespaces/a/configmaps?fieldManager=kubectl-create".into(),
            verb: "create".into(),
            user: EventUser {
                username: "admin".into(),
                groups: vec!["system:masters".into()],
                ..EventUser::default()
            },
            impersonated_user: Some(EventUser {
                username: "alice".into(),
                ..EventUser::default()
            }),
            source_ips: vec!["127.0.0.1".into()],
            user_agent: "kubectl/v1.32.0".into(),
            object_ref: Some(ObjectRef {
                resource: "configmaps".into(),
                namespace: "a".into(),
                name: "c".into(),
                api_version: "v1".into(),
                ..ObjectRef::default()
            }),
            response_status: Some(json!({"metadata": {}, "code": 201})),
            request_object: Some(json!({"kind": "ConfigMap"})),
            response_object: None,
            request_received_timestamp: "2026-12-06T15:52:01.123456Z".into(),
            stage_timestamp: "2026-12-06T15:52:01.223456Z".into(),
            annotations,
        };
        let value = serde_json::to_value(&event).expect("serialize");
        assert_eq!(
            value,
            json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request",
                "auditID": "b8a8c3a2-1d8e-4b33-9e0f-2f6a8a6d4c11", "stage": "ResponseComplete",
                "requestURI": "/api/v1/namespaces/a/configmaps?fieldManager=kubectl-create",
                "verb": "create",
                "user": {"username": "admin", "groups": ["system:masters"]},
                "impersonatedUser": {"username": "alice"},
                "sourceIPs": ["127.0.0.1"], "userAgent": "kubectl/v1.32.0",
                "objectRef": {"resource": "configmaps", "namespace": "a", "name": "c", "apiVersion": "v1"},
                "responseStatus": {"metadata": {}, "code": 201},
                "requestObject": {"kind": "ConfigMap"},
                "requestReceivedTimestamp": "2026-12-06T15:52:01.123456Z",
                "stageTimestamp": "2026-12-06T15:52:01.223456Z",
                "annotations": {"authorization.k8s.io/decision": "allow"}
            })
        );
        let back: Event = serde_json::from_value(value).expect("deserialize");
        assert_eq!(back, event);
    }

    #[test]
    fn timestamps_have_microseconds() {
        let at: jiff::Timestamp = "2026-12-06T15:52:01.1234567Z".parse().expect("timestamp");
        assert_eq!(micro_time(at), "2026-12-06T15:52:01.123456Z");
        let whole: jiff::Timestamp = "2026-12-06T15:52:01Z".parse().expect("timestamp");
        assert_eq!(micro_time(whole), "2026-12-06T15:52:01.000000Z");
    }
}
