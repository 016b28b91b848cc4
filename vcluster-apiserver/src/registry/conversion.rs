//! CRD conversion webhooks (`spec.conversion.strategy: Webhook`): objects
//! of a custom resource read or written at a version other than the
//! storage one are converted by the CRD's webhook with a
//! `ConversionReview` (`apiextensions.k8s.io/v1` or `v1beta1`), as
//! apiextensions-apiserver converts them. The webhook is reached as
//! admission webhooks are ([`super::admission::webhook::client`]).

use std::time::Duration;

use serde_json::{json, Value};

use super::admission::webhook::{client, config};
use super::{present, Registry};
use crate::error::ApiError;
use crate::resources::ResourceInfo;

/// Upstream's timeout for conversion webhooks.
const TIMEOUT: Duration = Duration::from_secs(30);
const SPOKEN: &[&str] = &["v1", "v1beta1"];

/// Whether `resource` is a version of a CRD whose objects are converted by
/// a webhook (reads at another version than the stored one need a call).
pub fn converts_by_webhook(resource: &ResourceInfo) -> bool {
    resource
        .custom
        .as_ref()
        .is_some_and(|c| c.conversion_webhook.is_some() && !c.storage)
}

impl Registry {
    /// A stored object as a client of `resource` sees it: converted by the
    /// CRD's webhook when it is stored at another version, then presented.
    pub(super) async fn presented(
        &self,
        resource: &ResourceInfo,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        self.convert(
            resource,
            std::slice::from_mut(&mut object),
            &resource.api_version(),
        )
        .await?;
        present(resource, &mut object);
        Ok(object)
    }

    /// `object` at `to`'s version, converted by the CRD's webhook when it
    /// is at another one (admission webhooks matched at another version).
    pub(crate) async fn convert_to(
        &self,
        to: &ResourceInfo,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        self.convert(to, std::slice::from_mut(&mut object), &to.api_version())
            .await?;
        Ok(object)
    }

    /// A watch event's object and its previous state at `resource`'s
    /// version, converted by the CRD's webhook in one review (the watch
    /// then presents them as any other event).
    pub async fn converted_event(
        &self,
        resource: &ResourceInfo,
        object: &Value,
        prev: Option<&Value>,
    ) -> Result<(Value, Option<Value>), ApiError> {
        let mut objects: Vec<Value> = std::iter::once(object).chain(prev).cloned().collect();
        self.convert(resource, &mut objects, &resource.api_version())
            .await?;
        let mut objects = objects.into_iter();
        let object = objects.next().unwrap_or(Value::Null);
        Ok((object, objects.next()))
    }

    /// The stored objects of one list page, presented (one webhook call for
    /// all that need converting).
    pub(super) async fn presented_all(
        &self,
        resource: &ResourceInfo,
        objects: &mut [Value],
    ) -> Result<(), ApiError> {
        self.convert(resource, objects, &resource.api_version())
            .await?;
        for object in objects.iter_mut() {
            present(resource, object);
        }
        Ok(())
    }

    /// `object` as it is stored: converted to the storage version by the
    /// CRD's webhook when it is written at another version; otherwise as
    /// it is (`encode_for` sets the storage `apiVersion`).
    pub(super) async fn storage_form(
        &self,
        resource: &ResourceInfo,
        object: &Value,
    ) -> Result<Value, ApiError> {
        let mut stored = object.clone();
        if let Some(custom) = resource.custom.as_ref().filter(|c| !c.storage) {
            let desired = format!("{}/{}", resource.group, custom.storage_version);
            self.convert(resource, std::slice::from_mut(&mut stored), &desired)
                .await?;
        }
        Ok(stored)
    }

    /// Converts every object of `objects` not at `desired` (`group/version`)
    /// through the CRD's conversion webhook, if it has one.
    async fn convert(
        &self,
        resource: &ResourceInfo,
        objects: &mut [Value],
        desired: &str,
    ) -> Result<(), ApiError> {
        let Some(conversion) = resource
            .custom
            .as_ref()
            .and_then(|c| c.conversion_webhook.as_ref())
        else {
            return Ok(());
        };
        let api_version = |o: &Value| {
            o.get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let pending: Vec<usize> = (0..objects.len())
            .filter(|i| api_version(&objects[*i]) != desired)
            .collect();
        let Some(first) = pending.first() else {
            return Ok(());
        };
        let failed = |why: String| {
            ApiError::internal(format!(
                "conversion webhook for {}, Kind={} failed: {why}",
                api_version(&objects[*first]),
                resource.kind
            ))
        };
        let sent: Vec<Value> = pending.iter().map(|i| objects[*i].clone()).collect();
        let converted = self
            .call_conversion(conversion, desired, sent)
            .await
            .map_err(failed)?;
        for (index, mut new) in pending.into_iter().zip(converted) {
            // Upstream keeps the object's metadata but labels and
            // annotations, whatever the webhook answers.
            let labels = new.pointer("/metadata/labels").cloned();
            let annotations = new.pointer("/metadata/annotations").cloned();
            new["metadata"] = objects[index]["metadata"].clone();
            if let Some(meta) = new["metadata"].as_object_mut() {
                for (field, value) in [("labels", labels), ("annotations", annotations)] {
                    match value {
                        Some(value) => meta.insert(field.into(), value),
                        None => meta.remove(field),
                    };
                }
            }
            objects[index] = new;
        }
        Ok(())
    }

    /// One `ConversionReview` round trip; the converted objects in order.
    async fn call_conversion(
        &self,
        conversion: &Value,
        desired: &str,
        objects: Vec<Value>,
    ) -> Result<Vec<Value>, String> {
        let webhook = conversion.get("webhook").unwrap_or(&Value::Null);
        let accepted: Vec<&str> = webhook
            .get("conversionReviewVersions")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let version = accepted
            .iter()
            .find(|v| SPOKEN.contains(v))
            .ok_or_else(|| {
                format!("webhook does not accept known ConversionReview versions: {accepted:?}")
            })?;
        let client = config::client_of(webhook.get("clientConfig").unwrap_or(&Value::Null))?;
        let count = objects.len();
        let uid = uuid::Uuid::new_v4().to_string();
        let review = json!({
            "apiVersion": format!("apiextensions.k8s.io/{version}"),
            "kind": "ConversionReview",
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
        });
        let body = serde_json::to_vec(&review).map_err(|e| e.to_string())?;
        let url = client.endpoint.display();
        let target = client::target(
            self,
            self.webhook_services.as_ref(),
            &client.endpoint,
            TIMEOUT,
        )
        .await
        .map_err(|e| format!("Post {url:?}: {e}"))?;
        let answer = client::post(&target, client.tls.clone(), body, TIMEOUT)
            .await
            .map_err(|e| format!("Post {url:?}: {e}"))?;
        let answer: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        let response = answer
            .get("response")
            .filter(|r| r.is_object())
            .ok_or("no response provided")?;
        if response.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
            return Err(format!(
                "expected response.uid={uid:?}, got {:?}",
                response.get("uid").and_then(Value::as_str).unwrap_or("")
            ));
        }
        let status = response
            .pointer("/result/status")
            .and_then(Value::as_str)
            .unwrap_or("");
        if status != "Success" {
            return Err(format!(
                "response.result.status was '{status}', not 'Success'"
            ));
        }
        let converted = response
            .get("convertedObjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if converted.len() != count {
            return Err(format!(
                "returned {} objects, expected {count}",
                converted.len()
            ));
        }
        for object in &converted {
            let got = object
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            if got != desired {
                return Err(format!(
                    "invalid converted object: expected apiVersion {desired:?}, got {got:?}"
                ));
            }
        }
        Ok(converted)
    }
}
