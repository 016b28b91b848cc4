//! ValidatingAdmissionPolicy: the stored policies, bound by their
//! bindings, evaluated with CEL (cel-rust) on creates, updates and
//! deletes, before the validating webhooks, as kube-apiserver orders them.
//!
//! - [`compile`]: a policy's expressions compiled once per change.
//! - [`constraints`]: `matchConstraints` and a binding's `matchResources`.
//! - [`evaluate`]: the CEL variables and upstream's messages.
//!
//! A binding's `validationActions` decide what a failed validation does:
//! `Deny` refuses the request (`<resource> "<name>" is forbidden:
//! ValidatingAdmissionPolicy '<policy>' with binding '<binding>' denied
//! request: <message>`, with the validation's reason, `Invalid` (422) by
//! default), `Warn` answers with a `Warning` header, `Audit` is accepted
//! and does nothing here.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::{AdmissionPlugin, Attributes, Operation};
use crate::error::ApiError;
use crate::registry::{ObjectAddress, Registry};

pub mod compile;
pub mod constraints;
pub mod evaluate;

use compile::{Binding, Policy};
use evaluate::Failure;

const GROUP: &str = "admissionregistration.k8s.io";

/// The ValidatingAdmissionPolicy plugin.
#[derive(Debug, Default)]
pub struct Policies {
    cache: Mutex<Option<Loaded>>,
}

/// The bound policies as of one admission generation, by binding name.
#[derive(Clone, Debug)]
struct Loaded {
    generation: u64,
    bound: Arc<[(Arc<Policy>, Arc<Binding>)]>,
}

impl Policies {
    async fn loaded(&self, registry: &Registry) -> Result<Loaded, ApiError> {
        let generation = registry.admission_generation();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(loaded) = cache.as_ref().filter(|l| l.generation == generation) {
                return Ok(loaded.clone());
            }
        }
        let policies: Vec<Arc<Policy>> = registry
            .list_in(GROUP, "validatingadmissionpolicies", None)
            .await?
            .iter()
            .map(compile::policy)
            .collect();
        let mut bindings: Vec<Binding> = registry
            .list_in(GROUP, "validatingadmissionpolicybindings", None)
            .await?
            .iter()
            .map(compile::binding)
            .collect();
        bindings.sort_by(|a, b| a.name.cmp(&b.name));
        let bound: Vec<(Arc<Policy>, Arc<Binding>)> = bindings
            .into_iter()
            .filter_map(|binding| {
                let policy = policies.iter().find(|p| p.name == binding.policy)?.clone();
                Some((policy, Arc::new(binding)))
            })
            .collect();
        let loaded = Loaded {
            generation,
            bound: bound.into(),
        };
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded.clone());
        Ok(loaded)
    }
}

#[async_trait]
impl AdmissionPlugin for Policies {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionPolicy"
    }

    fn handles(&self, _operation: Operation) -> bool {
        true
    }

    async fn validate(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        object: &Value,
    ) -> Result<(), ApiError> {
        if super::webhook::exempt(attributes) {
            return Ok(());
        }
        let loaded = self.loaded(registry).await?;
        if loaded.bound.is_empty() {
            return Ok(());
        }
        let mut namespace_object: Option<Value> = None;
        let mut denial: Option<ApiError> = None;
        for (policy, binding) in loaded.bound.iter() {
            let failures = match applies(registry, policy, binding, attributes, object).await {
                Ok(false) => continue,
                Ok(true) => {
                    if namespace_object.is_none() {
                        namespace_object = Some(namespace_of(registry, attributes).await);
                    }
                    let namespace = namespace_object.clone().unwrap_or(Value::Null);
                    run(registry, policy, binding, attributes, object, namespace).await
                }
                Err(why) if policy.fail_closed => vec![Failure {
                    message: why,
                    reason: "Invalid".into(),
                }],
                Err(_) => continue,
            };
            for failure in failures {
                if binding.deny && denial.is_none() {
                    denial = Some(deny(attributes, object, policy, binding, &failure));
                }
                if binding.warn {
                    attributes.context.warnings.add(format!(
                        "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                        policy.name, binding.name, failure.message
                    ));
                }
            }
        }
        denial.map_or(Ok(()), Err)
    }
}

/// Whether the policy and its binding select the request.
async fn applies(
    registry: &Registry,
    policy: &Policy,
    binding: &Binding,
    attributes: &Attributes<'_>,
    object: &Value,
) -> Result<bool, String> {
    let constraints = policy
        .constraints
        .as_ref()
        .map_err(|e| format!("failed to configure policy: {e}"))?;
    let Some(constraints) = constraints else {
        return Ok(false);
    };
    if !constraints
        .matches(registry, attributes, object, true)
        .await?
    {
        return Ok(false);
    }
    match binding
        .match_resources
        .as_ref()
        .map_err(|e| format!("failed to configure binding: {e}"))?
    {
        Some(resources) => resources.matches(registry, attributes, object, false).await,
        None => Ok(true),
    }
}

/// The policy evaluated once per parameter object of the binding.
async fn run(
    registry: &Registry,
    policy: &Policy,
    binding: &Binding,
    attributes: &Attributes<'_>,
    object: &Value,
    namespace_object: Value,
) -> Vec<Failure> {
    let params = match params(registry, policy, binding, attributes).await {
        Ok(params) => params,
        Err(failure) => return vec![failure],
    };
    let mut inputs = evaluate::Inputs {
        object: object.clone(),
        old_object: match attributes.operation {
            Operation::Create => Value::Null,
            _ => attributes.old.cloned().unwrap_or(Value::Null),
        },
        request: evaluate::request(attributes, object),
        params: Value::Null,
        namespace_object,
    };
    let mut failures = Vec::new();
    for param in params {
        inputs.params = param;
        failures.extend(evaluate::evaluate(policy, &inputs));
    }
    failures
}

/// The parameter objects a binding gives its policy (one `null` when the
/// policy takes none); a failure when none is found and the binding says
/// `Deny`, or the reference cannot be followed.
async fn params(
    registry: &Registry,
    policy: &Policy,
    binding: &Binding,
    attributes: &Attributes<'_>,
) -> Result<Vec<Value>, Failure> {
    let Some((group, _version, kind)) = &policy.param_kind else {
        return Ok(vec![Value::Null]);
    };
    let failure = |message: String| Failure {
        message,
        reason: "Invalid".into(),
    };
    let Some(reference) = &binding.param_ref else {
        return Err(failure(format!(
            "failed to configure binding: paramRef is required when paramKind is set on policy {:?}",
            policy.name
        )));
    };
    let Some(resource) = registry.catalog().by_kind(group, kind) else {
        return Err(failure(format!(
            "failed to configure binding: failed to find resource referenced by paramKind: '{group}, Kind={kind}'"
        )));
    };
    let text = |f: &str| reference.get(f).and_then(Value::as_str).unwrap_or("");
    let namespace = match (resource.namespaced, text("namespace")) {
        (false, _) => None,
        (true, "") => attributes
            .namespace
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        (true, ns) => Some(ns.to_owned()),
    };
    let found: Vec<Value> = if !text("name").is_empty() {
        let address = ObjectAddress {
            resource: resource.clone(),
            namespace: namespace.clone(),
            name: text("name").to_owned(),
        };
        registry.get(&address).await.into_iter().collect()
    } else {
        let selector = super::webhook::matching::selector(reference.get("selector"))
            .map_err(|e| failure(format!("failed to configure binding: {e}")))?;
        let items = registry
            .list_in(&resource.group, &resource.plural, namespace.as_deref())
            .await
            .unwrap_or_default();
        items
            .into_iter()
            .filter(|item| super::webhook::matching::object_matches(selector.as_ref(), item, None))
            .collect()
    };
    if !found.is_empty() {
        return Ok(found);
    }
    if text("parameterNotFoundAction") == "Allow" {
        return Ok(Vec::new());
    }
    Err(failure(
        "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
    ))
}

/// The request's namespace object, `null` for cluster-scoped requests.
async fn namespace_of(registry: &Registry, attributes: &Attributes<'_>) -> Value {
    let Some(name) = attributes.namespace.filter(|n| !n.is_empty()) else {
        return Value::Null;
    };
    let Some(resource) = registry.catalog().by_resource("", "namespaces") else {
        return Value::Null;
    };
    let address = ObjectAddress {
        resource,
        namespace: None,
        name: name.to_owned(),
    };
    registry.get(&address).await.unwrap_or(Value::Null)
}

/// Upstream's denial: `NewForbidden` wording, the validation's reason and
/// the code that goes with it.
fn deny(
    attributes: &Attributes<'_>,
    object: &Value,
    policy: &Policy,
    binding: &Binding,
    failure: &Failure,
) -> ApiError {
    let message = format!(
        "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {}",
        policy.name, binding.name, failure.message
    );
    let named = if crate::object::name(object).is_empty() {
        attributes.old.unwrap_or(object)
    } else {
        object
    };
    let mut err = attributes.forbidden(named, message);
    let (reason, code) = match failure.reason.as_str() {
        "Forbidden" => ("Forbidden", http::StatusCode::FORBIDDEN),
        "Unauthorized" => ("Unauthorized", http::StatusCode::UNAUTHORIZED),
        "RequestEntityTooLarge" => ("RequestEntityTooLarge", http::StatusCode::PAYLOAD_TOO_LARGE),
        _ => ("Invalid", http::StatusCode::UNPROCESSABLE_ENTITY),
    };
    err.reason = reason;
    err.code = code;
    err
}
