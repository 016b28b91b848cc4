//! Upstream's Priority admission plugin (plugin/pkg/admission/priority): a
//! new pod's `priorityClassName` (or the global default class) decides its
//! `spec.priority` and `spec.preemptionPolicy`; only one PriorityClass may
//! be the global default.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{AdmissionPlugin, Attributes, Operation};
use crate::error::ApiError;
use crate::object;
use crate::registry::Registry;

/// The group of PriorityClasses.
const GROUP: &str = "scheduling.k8s.io";

/// The Priority plugin.
#[derive(Debug)]
pub struct Priority;

/// The global default class: of those marked, the one of lowest value.
fn global_default(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
        .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0))
}

#[async_trait]
impl AdmissionPlugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    async fn admit(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        pod: &mut Value,
    ) -> Result<(), ApiError> {
        if !attributes.is("", "pods") {
            return Ok(());
        }
        let Some(spec) = pod.get("spec").filter(|s| s.is_object()) else {
            return Ok(());
        };
        if attributes.operation == Operation::Update {
            // An update keeps what admission computed at create.
            let old = attributes.old.and_then(|o| o.get("spec"));
            let mut carried = Vec::new();
            for field in ["priority", "preemptionPolicy"] {
                let missing = spec.get(field).is_none_or(Value::is_null);
                if let Some(value) = old.and_then(|o| o.get(field)).filter(|v| !v.is_null()) {
                    if missing {
                        carried.push((field, value.clone()));
                    }
                }
            }
            for (field, value) in carried {
                pod["spec"][field] = value;
            }
            return Ok(());
        }
        let class_name = spec
            .get("priorityClassName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let classes = registry.list_in(GROUP, "priorityclasses", None).await?;
        let (name, priority, policy) = if class_name.is_empty() {
            match global_default(&classes) {
                Some(class) => (
                    object::name(class).to_owned(),
                    class.get("value").and_then(Value::as_i64).unwrap_or(0),
                    class.get("preemptionPolicy").cloned(),
                ),
                None => (String::new(), 0, Some(json!("PreemptLowerPriority"))),
            }
        } else {
            let Some(class) = classes.iter().find(|c| object::name(c) == class_name) else {
                return Err(attributes.forbidden(
                    pod,
                    format!("no PriorityClass with name {class_name} was found"),
                ));
            };
            (
                class_name.clone(),
                class.get("value").and_then(Value::as_i64).unwrap_or(0),
                class.get("preemptionPolicy").cloned(),
            )
        };
        if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
            if given != priority {
                return Err(attributes.forbidden(pod, format!(
                    "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
                )));
            }
        }
        let policy = policy.filter(|p| !p.is_null());
        if let (Some(computed), Some(given)) = (
            policy.as_ref().and_then(Value::as_str),
            spec.get("preemptionPolicy").and_then(Value::as_str),
        ) {
            if given != computed {
                return Err(attributes.forbidden(pod, format!(
                    "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {computed} from the given PriorityClass name"
                )));
            }
        }
        let spec = &mut pod["spec"];
        if !name.is_empty() {
            spec["priorityClassName"] = json!(name);
        }
        spec["priority"] = json!(priority);
        if let Some(policy) = policy {
            spec["preemptionPolicy"] = policy;
        }
        Ok(())
    }

    async fn validate(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        class: &Value,
    ) -> Result<(), ApiError> {
        if !attributes.is(GROUP, "priorityclasses")
            || class.get("globalDefault").and_then(Value::as_bool) != Some(true)
        {
            return Ok(());
        }
        let classes = registry.list_in(GROUP, "priorityclasses", None).await?;
        if let Some(default) = global_default(&classes) {
            let name = object::name(default);
            if attributes.operation == Operation::Create || name != object::name(class) {
                return Err(attributes.forbidden(
                    class,
                    format!("PriorityClass {name} is already marked as default. Only one default can exist"),
                ));
            }
        }
        Ok(())
    }
}
