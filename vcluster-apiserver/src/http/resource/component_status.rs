//! `componentstatuses`: computed on each read from the storage and the
//! embedder's [`crate::health::Component`]s (see
//! `resources::kinds::component_status`).

use std::sync::Arc;

use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::super::ApiState;
use super::call::Call;
use super::respond::{list_response, object_response};
use crate::error::ApiError;
use crate::health::Health;
use crate::registry::ListPage;
use crate::request::negotiate;

/// The name upstream gives its first storage backend.
const STORAGE: &str = "etcd-0";

/// A `ComponentStatus` object from a check's answer.
fn status_object(name: &str, health: Health) -> Value {
    let condition = match health {
        Ok(message) => json!({"type": "Healthy", "status": "True", "message": message}),
        Err(error) => json!({"type": "Healthy", "status": "False", "error": error}),
    };
    json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "conditions": [condition],
    })
}

/// The statuses, as upstream lists them: the embedder's components, then
/// the storage.
async fn statuses(state: &ApiState) -> (Vec<Value>, crate::storage::Revision) {
    let storage = state.registry.storage().current_revision().await;
    let revision = storage.as_ref().map_or(0, |r| *r);
    let mut items: Vec<Value> = state
        .components
        .iter()
        .map(|component| status_object(&component.name, component.check()))
        .collect();
    let storage = storage
        .map(|_| "ok".to_owned())
        .map_err(|err| err.to_string());
    items.push(status_object(STORAGE, storage));
    (items, revision)
}

/// `GET` of the collection or of one component.
pub(super) async fn get(
    state: &Arc<ApiState>,
    call: Call,
    name: Option<&str>,
) -> Result<Response, ApiError> {
    let representation = negotiate::representation(call.accept.as_deref())?;
    let (items, revision) = statuses(state).await;
    match name {
        None => {
            let page = ListPage {
                items,
                resource_version: revision,
                continue_token: None,
                remaining: None,
            };
            list_response(&call.resource, page, representation, &call.query)
        }
        Some(name) => {
            let object = items
                .into_iter()
                .find(|item| crate::object::name(item) == name)
                .ok_or_else(|| ApiError::not_found("", "componentstatuses", name))?;
            object_response(
                &call.resource,
                StatusCode::OK,
                object,
                representation,
                &call.query,
            )
        }
    }
}
