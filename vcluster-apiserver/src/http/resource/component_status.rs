//! `componentstatuses`: computed on each read from what this server can
//! check itself (see `resources::kinds::component_status`).

use std::sync::Arc;

use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::super::ApiState;
use super::call::Call;
use super::respond::{list_response, object_response};
use crate::error::ApiError;
use crate::registry::ListPage;
use crate::request::negotiate;

/// The name upstream gives its first storage backend.
const STORAGE: &str = "etcd-0";

/// The statuses, as `ComponentStatus` objects.
async fn statuses(state: &ApiState) -> (Vec<Value>, crate::storage::Revision) {
    let storage = state.registry.storage().current_revision().await;
    let revision = storage.as_ref().map_or(0, |r| *r);
    let (status, message, error) = match &storage {
        Ok(_) => ("True", "ok", None),
        Err(err) => ("False", "", Some(err.to_string())),
    };
    let mut condition = json!({"type": "Healthy", "status": status, "message": message});
    if let Some(error) = error {
        condition["error"] = json!(error);
    }
    let object = json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": STORAGE},
        "conditions": [condition],
    });
    (vec![object], revision)
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
