//! Telling a tenant why their object is not synced ([`Blocked`]): a `False`
//! condition in the object's status, written once per message, and a
//! `Warning` event next to it.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch};
use kube::Resource;
use serde_json::{json, Value};
use vcluster_core::VirtualKey;

use super::Inner;
use crate::error::{has_code, Side, SyncError};
use crate::syncer::{Blocked, Syncer};
use vcluster_core::FieldManager;

/// The longest condition or event message written (events.k8s.io's limit).
const MAX_MESSAGE: usize = 1024;

impl<S: Syncer> Inner<S> {
    /// Sets the blocked condition on `virt` (unless it already says the
    /// same) and records the warning event. The condition is what counts:
    /// an event that cannot be recorded is only logged.
    pub(super) async fn report_blocked(
        &self,
        key: &VirtualKey,
        virt: &S::Object,
        blocked: &Blocked,
    ) -> Result<(), SyncError> {
        let message = bounded(&blocked.message);
        let object = serde_json::to_value(virt).map_err(|e| SyncError::Invalid {
            kind: self.syncer.name(),
            key: key.clone(),
            message: format!("cannot be encoded as JSON: {e}"),
        })?;
        let now = Timestamp::now();
        let Some(status) = blocked_status(&object, blocked, &message, now) else {
            return Ok(());
        };
        tracing::warn!(%key, reason = %message, "not synced to the host");
        let patch = json!({
            "metadata": {"resourceVersion": virt.meta().resource_version},
            "status": status,
        });
        match self
            .virtual_api(key.namespace())
            .patch_status(
                key.name(),
                &FieldManager::SYNCER.patch_params(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => self.metrics.wrote(),
            Err(err) if has_code(&err, 404) => return Ok(()),
            Err(err) => {
                return Err(self.api_error(key, "report a blocked object", Side::Virtual, err))
            }
        }
        let event =
            blocked_event::<S::Object>(&self.dt(), virt.meta(), blocked.reason, &message, now);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let events: Api<Event> = Api::namespaced(self.ctx.virtual_client.clone(), &namespace);
        match events
            .create(&FieldManager::SYNCER.post_params(), &event)
            .await
        {
            Ok(_) => self.metrics.wrote(),
            Err(err) => {
                tracing::warn!(%key, error = %err, "could not record the blocked object's event")
            }
        }
        Ok(())
    }
}

/// The status to write for `blocked` on `object` (its JSON form): the other
/// conditions kept, the blocked condition in place of any of its type, plus
/// [`Blocked::status`]. `None` when the object already says so.
fn blocked_status(
    object: &Value,
    blocked: &Blocked,
    message: &str,
    now: Timestamp,
) -> Option<Value> {
    let conditions = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_ours = |c: &Value| c.get("type").and_then(Value::as_str) == Some(blocked.condition);
    let already = conditions.iter().any(|c| {
        is_ours(c)
            && c.get("status").and_then(Value::as_str) == Some("False")
            && c.get("reason").and_then(Value::as_str) == Some(blocked.reason)
            && c.get("message").and_then(Value::as_str) == Some(message)
    });
    if already {
        return None;
    }
    let mut kept: Vec<Value> = conditions.into_iter().filter(|c| !is_ours(c)).collect();
    kept.push(json!({
        "type": blocked.condition,
        "status": "False",
        "reason": blocked.reason,
        "message": message,
        "lastTransitionTime": now.to_string(),
    }));
    let mut status = match &blocked.status {
        Value::Object(fields) => fields.clone(),
        _ => serde_json::Map::new(),
    };
    status.insert("conditions".into(), Value::Array(kept));
    Some(Value::Object(status))
}

/// Cuts `message` to [`MAX_MESSAGE`] bytes at a character boundary.
fn bounded(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

/// The warning event about a blocked object (in its namespace, or
/// `default` for a cluster-scoped one, as kubectl looks for them).
fn blocked_event<K: Resource>(
    dt: &K::DynamicType,
    meta: &ObjectMeta,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Event {
    let name = meta.name.clone().unwrap_or_default();
    // Event names are DNS subdomains of at most 253 characters.
    let base: String = name.chars().take(230).collect();
    let base = base.trim_end_matches(['-', '.']);
    let suffix = now.as_nanosecond().unsigned_abs();
    let time = Time(now);
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{base}.{suffix:x}")),
            namespace: Some(meta.namespace.clone().unwrap_or_else(|| "default".into())),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(K::api_version(dt).into_owned()),
            kind: Some(K::kind(dt).into_owned()),
            name: Some(name),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.to_owned()),
        type_: Some("Warning".into()),
        count: Some(1),
        first_timestamp: Some(time.clone()),
        last_timestamp: Some(time),
        source: Some(EventSource {
            component: Some(FieldManager::SYNCER.name().into()),
            host: None,
        }),
        reporting_component: Some(FieldManager::SYNCER.name().into()),
        reporting_instance: Some(FieldManager::SYNCER.name().into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;

    use super::*;

    fn blocked(message: &str) -> Blocked {
        Blocked {
            condition: "PodScheduled",
            reason: "SyncBlocked",
            message: message.into(),
            status: json!({"phase": "Pending"}),
            retry_after: None,
        }
    }

    #[test]
    fn the_condition_replaces_its_type_keeps_the_others_and_is_written_once() {
        let now = Timestamp::now();
        let pod = json!({"status": {"conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "PodScheduled", "status": "True"},
        ]}});
        let status = blocked_status(&pod, &blocked("no"), "no", now).expect("a change");
        assert_eq!(status["phase"], "Pending");
        let conditions = status["conditions"].as_array().expect("conditions");
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0]["type"], "Initialized");
        assert_eq!(conditions[1]["status"], "False");
        assert_eq!(conditions[1]["reason"], "SyncBlocked");
        let again = json!({"status": status});
        assert_eq!(blocked_status(&again, &blocked("no"), "no", now), None);
        assert!(blocked_status(&again, &blocked("other"), "other", now).is_some());
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_MESSAGE && cut.ends_with("..."));
        assert_eq!(bounded("short"), "short");
    }

    #[test]
    fn the_event_points_at_the_object_and_is_a_warning() {
        let meta = ObjectMeta {
            name: Some("web".into()),
            namespace: Some("team".into()),
            uid: Some("u1".into()),
            ..Default::default()
        };
        let event = blocked_event::<Pod>(&(), &meta, "SyncBlocked", "why", Timestamp::now());
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(event.involved_object.kind.as_deref(), Some("Pod"));
        assert_eq!(event.involved_object.api_version.as_deref(), Some("v1"));
        assert!(event.metadata.name.is_some_and(|n| n.starts_with("web.")));
    }
}
