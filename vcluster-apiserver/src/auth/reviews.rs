//! The review APIs: questions about authentication and authorization,
//! answered without storing anything (`POST` only, `201` with the
//! request's object and its `status`).
//!
//! - `authorization.k8s.io/v1`: `SelfSubjectAccessReview` (`kubectl auth
//!   can-i`), `SelfSubjectRulesReview` (`kubectl auth can-i --list`),
//!   `SubjectAccessReview` and the namespaced `LocalSubjectAccessReview`
//!   (for whoever may create them: admins).
//! - `authentication.k8s.io/v1`: `SelfSubjectReview` (`kubectl auth
//!   whoami`) and `TokenReview`.
//!
//! The `serviceaccounts/token` subresource is routed here too (see
//! [`super::tokens::token_request`]). Bodies may be JSON, YAML or
//! protobuf (what kubectl sends).

use std::collections::BTreeMap;

use axum::extract::Request;
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::rbac::{Decision, PolicyRule};
use super::Auth;
use super::{request_identity, Attributes, UserInfo};
use crate::error::{ApiError, FieldCause};
use crate::object;
use crate::request::path::ResourcePath;

const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTHENTICATION: &str = "authentication.k8s.io";
const NOT_ENFORCED: &str = "authorization is not enforced for this request";

/// Whether a resource path is one this module serves.
pub(crate) fn handles(target: &ResourcePath<'_>) -> bool {
    match target.group {
        AUTHORIZATION => matches!(
            target.plural,
            "selfsubjectaccessreviews"
                | "selfsubjectrulesreviews"
                | "subjectaccessreviews"
                | "localsubjectaccessreviews"
        ),
        AUTHENTICATION => matches!(target.plural, "tokenreviews" | "selfsubjectreviews"),
        "" => target.plural == "serviceaccounts" && target.subresource == Some("token"),
        _ => false,
    }
}

/// Serves a review (or a TokenRequest).
pub(crate) async fn handle(
    auth: &Auth,
    target: ResourcePath<'_>,
    request: Request,
) -> Result<Response, ApiError> {
    let path = request.uri().path().to_owned();
    if target.version != "v1" || target.legacy_watch {
        return Err(ApiError::no_route(&path));
    }
    if request.method() != Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {}.{})",
            request.method(),
            target.plural,
            target.group
        )));
    }
    // Neither a review nor a TokenRequest has a table form.
    let accept = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    crate::request::negotiate::representation_without_table(accept)?;
    if target.plural == "serviceaccounts" {
        let (Some(namespace), Some(name)) = (target.namespace, target.name) else {
            return Err(ApiError::no_route(&path));
        };
        return super::tokens::token_request(auth, namespace, name, request).await;
    }
    let namespaced = target.plural == "localsubjectaccessreviews";
    if target.name.is_some()
        || target.subresource.is_some()
        || namespaced != target.namespace.is_some()
    {
        return Err(ApiError::no_route(&path));
    }
    let (user, enforced) = request_identity(&request);
    let body = super::read_object(request).await?;
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match target.plural {
        "selfsubjectaccessreviews" => {
            let attributes = access_attributes(&spec, "SelfSubjectAccessReview")?;
            access_status(&decide(auth, enforced, &user, &attributes).await?)
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let kind = if namespaced {
                "LocalSubjectAccessReview"
            } else {
                "SubjectAccessReview"
            };
            let mut attributes = access_attributes(&spec, kind)?;
            if let Some(namespace) = target.namespace {
                if !attributes.resource_request {
                    return Err(invalid(
                        kind,
                        "spec.nonResourceAttributes",
                        "",
                        "disallowed on this kind of request",
                    ));
                }
                if attributes.namespace.is_empty() {
                    attributes.namespace = namespace.to_owned();
                } else if attributes.namespace != namespace {
                    return Err(invalid(
                        kind,
                        "spec.resourceAttributes.namespace",
                        &attributes.namespace,
                        "must match metadata.namespace",
                    ));
                }
            }
            let subject = subject_of(&spec, kind)?;
            access_status(&decide(auth, enforced, &subject, &attributes).await?)
        }
        "selfsubjectrulesreviews" => {
            let namespace = object::path_str(&spec, "namespace");
            rules_status(auth, enforced, &user, namespace).await?
        }
        "selfsubjectreviews" => json!({"userInfo": user.to_json()}),
        "tokenreviews" => token_status(auth, &spec).await,
        _ => return Err(ApiError::no_route(&path)),
    };
    let group = if target.group == AUTHORIZATION {
        AUTHORIZATION
    } else {
        AUTHENTICATION
    };
    let mut metadata = json!({"creationTimestamp": null});
    if let Some(namespace) = target.namespace {
        metadata["namespace"] = json!(namespace);
    }
    Ok(crate::request::negotiate::json(
        StatusCode::CREATED,
        &json!({
            "kind": kind_of(target.plural),
            "apiVersion": format!("{group}/v1"),
            "metadata": metadata,
            "spec": spec,
            "status": status,
        }),
    ))
}

fn kind_of(plural: &str) -> &'static str {
    match plural {
        "selfsubjectaccessreviews" => "SelfSubjectAccessReview",
        "selfsubjectrulesreviews" => "SelfSubjectRulesReview",
        "subjectaccessreviews" => "SubjectAccessReview",
        "localsubjectaccessreviews" => "LocalSubjectAccessReview",
        "selfsubjectreviews" => "SelfSubjectReview",
        _ => "TokenReview",
    }
}

fn invalid(kind: &str, field: &str, value: &str, why: &str) -> ApiError {
    ApiError::invalid(kind, "", vec![FieldCause::invalid(field, value, why)])
}

/// The question of an access review: `resourceAttributes` or
/// `nonResourceAttributes`, exactly one.
fn access_attributes(spec: &Value, kind: &str) -> Result<Attributes, ApiError> {
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (resource, non_resource) {
        (Some(r), None) => {
            let field = |f: &str| object::path_str(r, f);
            let mut attributes = Attributes::resource(
                field("verb"),
                field("group"),
                field("resource"),
                field("namespace"),
                field("name"),
            );
            attributes.subresource = field("subresource").to_owned();
            attributes.api_version = field("version").to_owned();
            Ok(attributes)
        }
        (None, Some(n)) => Ok(Attributes::non_resource(
            object::path_str(n, "verb"),
            object::path_str(n, "path"),
        )),
        _ => Err(invalid(
            kind,
            "spec.resourceAttributes",
            "",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

/// The subject of a (Local)SubjectAccessReview.
fn subject_of(spec: &Value, kind: &str) -> Result<UserInfo, ApiError> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let name = object::path_str(spec, "user").to_owned();
    let groups = strings(spec.get("groups"));
    if name.is_empty() && groups.is_empty() {
        return Err(invalid(
            kind,
            "spec.user",
            "",
            "at least one of user or group must be specified",
        ));
    }
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), strings(Some(v))))
                .collect()
        })
        .unwrap_or_default();
    Ok(UserInfo {
        name,
        uid: object::path_str(spec, "uid").to_owned(),
        groups,
        extra,
    })
}

async fn decide(
    auth: &Auth,
    enforced: bool,
    user: &UserInfo,
    attributes: &Attributes,
) -> Result<Decision, ApiError> {
    if !enforced {
        return Ok(Decision::Allow(NOT_ENFORCED.to_owned()));
    }
    let policy = auth.policy().current(&auth.registry).await?;
    Ok(policy.authorize(user, attributes))
}

fn access_status(decision: &Decision) -> Value {
    match decision {
        Decision::Allow(reason) => json!({"allowed": true, "reason": reason}),
        Decision::Deny(reason) if reason.is_empty() => json!({"allowed": false}),
        Decision::Deny(reason) => json!({"allowed": false, "reason": reason}),
    }
}

/// What `user` may do in `namespace`, as `SelfSubjectRulesReview` lists it.
async fn rules_status(
    auth: &Auth,
    enforced: bool,
    user: &UserInfo,
    namespace: &str,
) -> Result<Value, ApiError> {
    let rules = if enforced {
        let policy = auth.policy().current(&auth.registry).await?;
        policy.rules_for(user, namespace)
    } else {
        vec![
            PolicyRule::resources(&["*"], &["*"], &["*"]),
            PolicyRule::urls(&["*"], &["*"]),
        ]
    };
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules {
        if !rule.resources.is_empty() {
            let mut out = json!({"verbs": rule.verbs, "apiGroups": rule.api_groups, "resources": rule.resources});
            if !rule.resource_names.is_empty() {
                out["resourceNames"] = json!(rule.resource_names);
            }
            resource_rules.push(out);
        }
        if !rule.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    });
    if !enforced {
        status["evaluationError"] = json!(NOT_ENFORCED);
    }
    Ok(status)
}

/// `TokenReview`: whether a token authenticates, and as whom.
async fn token_status(auth: &Auth, spec: &Value) -> Value {
    let token = object::path_str(spec, "token");
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // As upstream: the review's audiences (or, when it names none, the
    // API server's) are what the token must be meant for.
    let requested = if audiences.is_empty() {
        auth.api_audiences.clone()
    } else {
        audiences
    };
    let authenticated = super::authn::authenticate_token_for(auth, token, &requested).await;
    match authenticated {
        Ok((user, audiences)) => json!({
            "authenticated": true,
            "user": user.to_json(),
            "audiences": audiences,
        }),
        Err(why) => json!({"authenticated": false, "error": why}),
    }
}
