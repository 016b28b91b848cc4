//! `matchPolicy: Equivalent`: a webhook whose rules name another served
//! version of the requested resource (HorizontalPodAutoscalers at
//! `autoscaling/v1` and `v2`, a CRD's versions) sees the request at that
//! version, the object converted there and a mutating webhook's patch
//! converted back, as kube-apiserver sends it.

use std::sync::Arc;

use serde_json::{json, Value};

use super::super::Attributes;
use super::matching::{rules_match, Rule};
use crate::registry::Registry;
use crate::resources::ResourceInfo;

/// Another served version of the request's resource that `rules` match,
/// when they do not match the requested one (the first, in version order).
pub fn version(
    registry: &Registry,
    rules: &[Rule],
    attributes: &Attributes<'_>,
) -> Option<Arc<ResourceInfo>> {
    let requested = attributes.resource;
    let catalog = registry.catalog();
    let candidates: Vec<Arc<ResourceInfo>> = catalog
        .iter()
        .filter(|r| {
            r.group == requested.group
                && r.plural == requested.plural
                && r.version != requested.version
        })
        .cloned()
        .collect();
    candidates.into_iter().find(|other| {
        let seen = Attributes {
            resource: other,
            ..*attributes
        };
        rules_match(rules, &seen)
    })
}

/// `object` of `from` as `to` (another version of the same resource)
/// shows it: through the storage form of a built-in with conversions, the
/// CRD's webhook for a CRD converted by one, else only the `apiVersion`.
pub async fn convert(
    registry: &Registry,
    from: &ResourceInfo,
    to: &ResourceInfo,
    object: &Value,
) -> Result<Value, String> {
    if object.is_null() {
        return Ok(Value::Null);
    }
    let mut converted = object.clone();
    if from
        .custom
        .as_ref()
        .is_some_and(|c| c.conversion_webhook.is_some())
    {
        return registry
            .convert_to(to, converted)
            .await
            .map_err(|e| e.message);
    }
    if let Some(conversion) = from.conversion {
        (conversion.to_storage)(&mut converted);
    }
    if let Some(conversion) = to.conversion {
        (conversion.from_storage)(&mut converted);
    }
    if let Some(map) = converted.as_object_mut() {
        map.insert("apiVersion".into(), json!(to.api_version()));
    }
    Ok(converted)
}
