//! Resource requests: [`call`] parses a request on a resource path, the
//! route below picks the verb from method, name and subresource, [`verbs`]
//! call the registry, and [`respond`] shapes the answer the client asked
//! for.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use http::Method;

use super::ApiState;
use crate::error::ApiError;
use crate::request::path::ResourcePath;

mod call;
mod component_status;
mod respond;
mod verbs;

pub(super) use respond::{list_options, partial_metadata};

use call::Call;
use respond::method_not_allowed;

/// Handles a request on a resource path.
pub(super) async fn handle(
    state: &Arc<ApiState>,
    target: ResourcePath<'_>,
    request: Request,
) -> Result<Response, ApiError> {
    let call = Call::parse(state, target, request)?;
    let resource = call.resource.clone();
    let name = call.name.clone();
    if call.subresource.is_none() {
        let verb = verb_of(&call.method, name.is_some());
        if !verb.is_some_and(|verb| resource.serves_verb(verb)) {
            return Err(method_not_allowed(&call.method, &resource, None));
        }
    }
    if resource.is("", "componentstatuses") {
        return component_status::get(state, call, name.as_deref()).await;
    }
    if resource.is("", "bindings") {
        return verbs::bind_collection(state, call).await;
    }
    match (&call.method, name.as_deref(), call.subresource.as_deref()) {
        (&Method::GET, None, None) => verbs::list(state, call).await,
        (&Method::GET, Some(name), None) => verbs::get(state, call, name).await,
        (&Method::POST, None, None) => verbs::create(state, call).await,
        (&Method::PUT, Some(name), None | Some("status" | "ephemeralcontainers")) => {
            verbs::update(state, call, name).await
        }
        (&Method::PATCH, Some(name), None | Some("status" | "ephemeralcontainers")) => {
            verbs::patch(state, call, name).await
        }
        (&Method::GET, Some(name), Some("status")) => verbs::get_status(state, call, name).await,
        (&Method::GET, Some(name), Some("ephemeralcontainers"))
            if resource.serves_subresource("ephemeralcontainers") =>
        {
            verbs::get(state, call, name).await
        }
        (&Method::DELETE, Some(name), None) => verbs::delete(state, call, name).await,
        (&Method::DELETE, None, None) => verbs::delete_collection(state, call).await,
        (_, Some(name), Some("scale")) if resource.scale_subresource => {
            verbs::scale(state, call, name).await
        }
        (&Method::POST, Some(name), Some("binding")) if resource.serves_subresource("binding") => {
            verbs::bind(state, call, name).await
        }
        (&Method::PUT, Some(name), Some("approval")) if resource.serves_subresource("approval") => {
            verbs::approve(state, call, name).await
        }
        (&Method::PATCH, Some(name), Some("approval"))
            if resource.serves_subresource("approval") =>
        {
            verbs::patch(state, call, name).await
        }
        (&Method::GET, Some(name), Some("approval")) if resource.serves_subresource("approval") => {
            verbs::get(state, call, name).await
        }
        (&Method::POST, Some(name), Some("eviction"))
            if resource.serves_subresource("eviction") =>
        {
            verbs::evict(state, call, name).await
        }
        (&Method::PUT, Some(name), Some("finalize")) if resource.serves_subresource("finalize") => {
            verbs::finalize(state, call, name).await
        }
        (&Method::GET, Some(name), Some("log")) if resource.serves_subresource("log") => {
            verbs::log(state, call, name).await
        }
        (
            &Method::GET | &Method::POST,
            Some(name),
            Some(sub @ ("exec" | "attach" | "portforward")),
        ) if resource.serves_subresource(sub) => verbs::stream(state, call, name).await,
        (_, Some(_), Some(sub))
            if !matches!(
                sub,
                "status"
                    | "scale"
                    | "binding"
                    | "finalize"
                    | "approval"
                    | "ephemeralcontainers"
                    | "eviction"
            ) =>
        {
            Err(ApiError::no_route(&format!("{}/{sub}", resource.plural)))
        }
        (method, _, sub) => Err(method_not_allowed(method, &resource, sub)),
    }
}

/// The verb a request on the main resource is authorized and served as
/// (`list` also covers watches, which every listable kind serves).
fn verb_of(method: &Method, named: bool) -> Option<&'static str> {
    Some(match (method.as_str(), named) {
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    })
}
