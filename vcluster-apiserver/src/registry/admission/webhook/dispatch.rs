//! Calling the matching webhooks of a request as kube-apiserver does:
//! mutating ones one after the other (each sees the previous one's patch,
//! `IfNeeded` ones once more when a later one changed the object),
//! validating ones all at once; failures handled by `failurePolicy`, with
//! upstream's wording.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::super::policy::evaluate;
use super::super::Operation;
use super::client::{self, ServiceResolver};
use super::config::Hook;
use super::{equivalent, matching, patch, review};
use crate::error::ApiError;
use crate::registry::{Attributes, Registry};

/// The version a webhook sees a request at: `None` the requested one,
/// else another served version its rules name (`matchPolicy: Equivalent`).
type Seen = Option<Arc<crate::resources::ResourceInfo>>;

/// Why a webhook call did not admit the request.
#[derive(Debug)]
enum Failure {
    /// The webhook could not be called or answered nonsense
    /// (`failurePolicy` decides); the text follows `failed calling webhook`.
    Calling(String),
    /// The webhook said no, or refused a dry run: the request fails
    /// whatever the failure policy.
    Refused(ApiError),
}

/// What the dispatch needs besides the hooks.
pub struct Dispatch<'a> {
    /// The registry (namespaces for selectors, services for endpoints).
    pub registry: &'a Registry,
    /// Where services are.
    pub services: &'a dyn ServiceResolver,
    /// The request.
    pub attributes: &'a Attributes<'a>,
}

impl Dispatch<'_> {
    /// Runs the mutating webhooks in order on `object`.
    pub async fn mutate(&self, hooks: &[Arc<Hook>], object: &mut Value) -> Result<(), ApiError> {
        let mut invoked: Vec<(usize, Seen)> = Vec::new();
        let mut again: BTreeSet<usize> = BTreeSet::new();
        for (index, hook) in hooks.iter().enumerate() {
            let Some(Some(seen)) = self.decide(hook, self.matches(hook, object).await)? else {
                continue;
            };
            let changed = self.decide(hook, self.mutate_once(hook, &seen, object).await)?;
            if changed == Some(true) {
                again.extend(
                    invoked
                        .iter()
                        .map(|(i, _)| *i)
                        .filter(|i| hooks[*i].reinvoke),
                );
            }
            invoked.push((index, seen));
        }
        // Upstream's reinvocation: once more, in order, each `IfNeeded`
        // webhook whose view of the object a later webhook changed.
        for (index, seen) in invoked.iter().filter(|(i, _)| again.contains(i)) {
            let hook = &hooks[*index];
            self.decide(hook, self.mutate_once(hook, seen, object).await)?;
        }
        Ok(())
    }

    /// Calls the validating webhooks that match, all at once; the first
    /// refusal (in the webhooks' order) refuses the request.
    pub async fn validate(&self, hooks: &[Arc<Hook>], object: &Value) -> Result<(), ApiError> {
        let mut matched = Vec::new();
        for hook in hooks {
            if let Some(Some(seen)) = self.decide(hook, self.matches(hook, object).await)? {
                matched.push((hook, seen));
            }
        }
        let calls = matched.iter().map(|(hook, seen)| async move {
            let result = async {
                let (object, old) = self.as_seen(seen, object).await?;
                self.call(hook, seen, &object, old.as_ref(), false).await
            }
            .await
            .map(|_| ());
            self.decide(hook, result)
        });
        for result in futures::future::join_all(calls).await {
            result?;
        }
        Ok(())
    }

    /// Applies the failure policy: `Ok(None)` when an `Ignore` webhook
    /// failed, the error when the request must fail.
    fn decide<T>(&self, hook: &Hook, result: Result<T, Failure>) -> Result<Option<T>, ApiError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(Failure::Refused(err)) => Err(err),
            Err(Failure::Calling(reason)) if hook.fail_closed => {
                tracing::warn!(webhook = %hook.name, %reason, "failed calling webhook, failing closed");
                Err(ApiError::internal(format!(
                    "Internal error occurred: failed calling webhook {:?}: {reason}",
                    hook.name
                )))
            }
            Err(Failure::Calling(reason)) => {
                tracing::warn!(webhook = %hook.name, %reason, "failed calling webhook, failing open");
                Ok(None)
            }
        }
    }

    /// Whether the request is one for `hook`, and at which version it sees
    /// it: its rules (at the requested version, else at another served one
    /// with `matchPolicy: Equivalent`), then its object and namespace
    /// selectors and match conditions.
    async fn matches(&self, hook: &Hook, object: &Value) -> Result<Option<Seen>, Failure> {
        let attributes = self.attributes;
        let seen = if matching::rules_match(&hook.rules, attributes) {
            None
        } else if hook.exact {
            return Ok(None);
        } else {
            match equivalent::version(self.registry, &hook.rules, attributes) {
                Some(other) => Some(other),
                None => return Ok(None),
            }
        };
        self.selected(hook, object)
            .await
            .map(|selected| selected.then_some(seen))
    }

    /// The selectors and match conditions of `hook`.
    async fn selected(&self, hook: &Hook, object: &Value) -> Result<bool, Failure> {
        let attributes = self.attributes;
        let object_selector = hook
            .object_selector
            .as_ref()
            .map_err(|e| Failure::Calling(format!("could not parse objectSelector: {e}")))?;
        if !matching::object_matches(object_selector.as_ref(), object, attributes.old) {
            return Ok(false);
        }
        let namespace_selector = hook
            .namespace_selector
            .as_ref()
            .map_err(|e| Failure::Calling(format!("could not parse namespaceSelector: {e}")))?;
        let in_namespace = matching::namespace_matches(
            self.registry,
            namespace_selector.as_ref(),
            attributes,
            object,
        )
        .await
        .map_err(|e| {
            Failure::Refused(ApiError::internal(format!("Internal error occurred: {e}")))
        })?;
        if !in_namespace || hook.match_conditions.is_empty() {
            return Ok(in_namespace);
        }
        let inputs = evaluate::Inputs {
            object: object.clone(),
            old_object: match attributes.operation {
                Operation::Create => Value::Null,
                _ => attributes.old.cloned().unwrap_or(Value::Null),
            },
            request: evaluate::request(attributes, object),
            params: Value::Null,
            namespace_object: Value::Null,
        };
        evaluate::conditions_hold(&hook.match_conditions, &inputs)
            .map_err(|e| Failure::Calling(format!("failed to evaluate match conditions: {e}")))
    }

    /// The object and the stored one at the version `seen`.
    async fn as_seen(
        &self,
        seen: &Seen,
        object: &Value,
    ) -> Result<(Value, Option<Value>), Failure> {
        let old = self.attributes.old;
        let Some(other) = seen else {
            return Ok((object.clone(), old.cloned()));
        };
        let requested = self.attributes.resource;
        let object = equivalent::convert(self.registry, requested, other, object)
            .await
            .map_err(Failure::Calling)?;
        let old = match old {
            Some(old) => Some(
                equivalent::convert(self.registry, requested, other, old)
                    .await
                    .map_err(Failure::Calling)?,
            ),
            None => None,
        };
        Ok((object, old))
    }

    /// One call of a mutating webhook and its patch applied (at the version
    /// it saw, then back); whether the object changed.
    async fn mutate_once(
        &self,
        hook: &Hook,
        seen: &Seen,
        object: &mut Value,
    ) -> Result<bool, Failure> {
        let (mut shown, old) = self.as_seen(seen, object).await?;
        let answer = self.call(hook, seen, &shown, old.as_ref(), true).await?;
        let Some(patch) = answer.patch else {
            return Ok(false);
        };
        if object.is_null() {
            // A delete: there is no object to patch.
            return Ok(false);
        }
        patch::apply(&mut shown, &patch).map_err(Failure::Calling)?;
        let patched = match seen {
            None => shown,
            Some(other) => {
                equivalent::convert(self.registry, other, self.attributes.resource, &shown)
                    .await
                    .map_err(Failure::Calling)?
            }
        };
        let changed = *object != patched;
        *object = patched;
        Ok(changed)
    }

    /// One call: the review sent, the answer checked, warnings kept, a
    /// denial turned into the request's error.
    async fn call(
        &self,
        hook: &Hook,
        seen: &Seen,
        object: &Value,
        old: Option<&Value>,
        mutating: bool,
    ) -> Result<review::Response, Failure> {
        let attributes = self.attributes;
        if attributes.dry_run && !hook.dry_run_safe {
            return Err(Failure::Refused(ApiError::bad_request(format!(
                "admission webhook {:?} does not support dry run",
                hook.name
            ))));
        }
        let client = hook
            .client
            .as_ref()
            .map_err(|e| Failure::Calling(format!("could not get REST client: {e}")))?;
        let version = review::version(&hook.review_versions)
            .map_err(|e| Failure::Calling(format!("could not create admission objects: {e}")))?;
        let uid = uuid::Uuid::new_v4().to_string();
        let resource = seen.as_deref().unwrap_or(attributes.resource);
        let body = review::request(version, &uid, attributes, resource, object, old);
        let body = serde_json::to_vec(&body)
            .map_err(|e| Failure::Calling(format!("could not create admission objects: {e}")))?;
        let url = client.endpoint.display();
        let failed = |why: &dyn std::fmt::Display| {
            Failure::Calling(format!("failed to call webhook: Post {url:?}: {why}"))
        };
        let target = client::target(self.registry, self.services, &client.endpoint, hook.timeout)
            .await
            .map_err(|e| failed(&e))?;
        let bytes = client::post(&target, client.tls.clone(), body, hook.timeout)
            .await
            .map_err(|e| failed(&e))?;
        let answer = review::response(version, &uid, mutating, &bytes)
            .map_err(|e| Failure::Calling(format!("received invalid webhook response: {e}")))?;
        for warning in &answer.warnings {
            attributes.context.warnings.add(warning.clone());
        }
        if !answer.allowed {
            return Err(Failure::Refused(denied(&hook.name, answer.status.as_ref())));
        }
        Ok(answer)
    }
}

/// Upstream's `ToStatusErr`: a webhook's denial, with its code (at least
/// 400) and reason, and `admission webhook "<name>" denied the request`.
fn denied(name: &str, status: Option<&Value>) -> ApiError {
    let text = |field: &str| {
        status
            .and_then(|s| s.get(field))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let denied_by = format!("admission webhook {name:?} denied the request");
    let message = match (text("message"), text("reason")) {
        ("", "") => format!("{denied_by} without explanation"),
        ("", reason) => format!("{denied_by}: {reason}"),
        (message, _) => format!("{denied_by}: {message}"),
    };
    let code = status
        .and_then(|s| s.get("code"))
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .and_then(|c| http::StatusCode::from_u16(c).ok())
        .unwrap_or(http::StatusCode::BAD_REQUEST);
    ApiError::new(code, known_reason(text("reason")), message)
}

/// A `StatusReason` this server can carry (its reasons are static); an
/// unknown one is left out, as Go leaves out an empty one.
fn known_reason(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "Expired",
        "ServiceUnavailable",
    ];
    KNOWN.iter().find(|k| **k == reason).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::denied;

    #[test]
    fn a_denial_reads_as_upstream_words_it() {
        let err = denied(
            "deny.example.com",
            Some(&json!({"message": "no", "code": 403, "reason": "Forbidden"})),
        );
        assert_eq!(
            err.message,
            "admission webhook \"deny.example.com\" denied the request: no"
        );
        assert_eq!(err.code.as_u16(), 403);
        assert_eq!(err.reason, "Forbidden");
        let err = denied("x", None);
        assert_eq!(
            err.message,
            "admission webhook \"x\" denied the request without explanation"
        );
        assert_eq!(err.code.as_u16(), 400);
        let err = denied("x", Some(&json!({"code": 200, "reason": "Odd"})));
        assert_eq!(
            err.message,
            "admission webhook \"x\" denied the request: Odd"
        );
        assert_eq!(err.code.as_u16(), 400);
    }
}
