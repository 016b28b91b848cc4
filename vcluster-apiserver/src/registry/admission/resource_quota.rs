//! Upstream's ResourceQuota admission plugin
//! (k8s.io/apiserver/pkg/admission/plugin/resourcequota): a create (or an
//! update that changes usage) is charged against every quota of its
//! namespace that covers it; one that would exceed a quota's `hard` is
//! refused, and an admitted one is added to the quotas' `status.used` at
//! once (the resource-quota controller recounts it later).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::quantity::Quantity;
use super::quota_usage::{self as usage, ResourceList};
use super::{AdmissionPlugin, Attributes, Operation};
use crate::error::ApiError;
use crate::object;
use crate::registry::{ObjectAddress, Registry, UpdateTarget};

/// How many times a charge is retried when a quota changed meanwhile.
const ATTEMPTS: usize = 8;

/// The ResourceQuota plugin. Charges of one server are serialized, so two
/// creates cannot both take a quota's last unit.
#[derive(Debug, Default)]
pub struct ResourceQuota {
    lock: tokio::sync::Mutex<()>,
}

/// Whether quota looks at this write (upstream's evaluators' `Handles`,
/// and the resources its configuration ignores).
fn handles(attributes: &Attributes<'_>, object: &Value) -> bool {
    let resource = attributes.resource;
    if attributes.subresource.is_some() || attributes.namespace.is_none() {
        return false;
    }
    match (resource.group.as_str(), resource.plural.as_str()) {
        // Upstream's ignored resources: virtual ones and events.
        ("", "events" | "bindings" | "componentstatuses")
        | ("events.k8s.io", "events")
        | ("authentication.k8s.io", _)
        | ("authorization.k8s.io", _) => false,
        ("", "pods") => match attributes.operation {
            Operation::Create => true,
            Operation::Update => attributes
                .old
                .is_some_and(|old| usage::is_terminating(old) != usage::is_terminating(object)),
            Operation::Delete => false,
        },
        ("", "services") | ("", "persistentvolumeclaims") => true,
        _ => attributes.operation == Operation::Create,
    }
}

/// `a - b` per name of `a`, never below zero (upstream's
/// `SubtractWithNonNegativeResult`).
fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    a.iter()
        .map(|(name, amount)| {
            let left = match b.get(name) {
                Some(other) => amount.minus(*other),
                None => *amount,
            };
            let left = if left.is_negative() {
                Quantity::ZERO
            } else {
                left
            };
            (name.clone(), left)
        })
        .collect()
}

/// The seconds since the epoch now.
fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[async_trait]
impl AdmissionPlugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    async fn validate(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        object: &Value,
    ) -> Result<(), ApiError> {
        if !handles(attributes, object) {
            return Ok(());
        }
        let Some(quotas) = registry.catalog().by_resource("", "resourcequotas") else {
            return Ok(());
        };
        let _serialized = self.lock.lock().await;
        for _ in 0..ATTEMPTS {
            let listed = registry
                .list_in("", "resourcequotas", attributes.namespace)
                .await?;
            let Some(charged) = charge(attributes, object, &listed)? else {
                return Ok(());
            };
            if attributes.dry_run {
                return Ok(());
            }
            match write_usage(registry, &quotas, attributes, charged).await {
                Ok(()) => return Ok(()),
                Err(err) if err.reason == "Conflict" => continue,
                Err(err) => return Err(err),
            }
        }
        Err(ApiError::conflict(
            "",
            "resourcequotas",
            "",
            "too many concurrent changes of the namespace's quotas; try again",
        ))
    }
}

/// Checks `object` against `quotas` (upstream's `CheckRequest`): the
/// quotas whose usage it changes, with their new `status.used`, or `None`
/// when it charges nothing.
fn charge(
    attributes: &Attributes<'_>,
    object: &Value,
    quotas: &[Value],
) -> Result<Option<Vec<(Value, ResourceList)>>, ApiError> {
    let group = attributes.resource.group.as_str();
    let plural = attributes.resource.plural.as_str();
    let is_pod = (group, plural) == ("", "pods");
    let mut interesting = Vec::new();
    for quota in quotas {
        let hard = usage::resource_list(quota.pointer("/status/hard"));
        if !usage::matches_scopes(quota, group, plural, object) {
            continue;
        }
        let restricted = usage::matching(group, plural, &hard);
        if restricted.is_empty() {
            continue;
        }
        let name = object::name(quota);
        if is_pod {
            if let Err(why) = usage::pod_constraints(object, &restricted) {
                return Err(attributes.forbidden(object, format!("failed quota: {name}: {why}")));
            }
        }
        let used = usage::resource_list(quota.pointer("/status/used"));
        let mut unknown: Vec<&str> = restricted
            .iter()
            .filter(|r| !used.contains_key(*r))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            return Err(attributes.forbidden(
                object,
                format!(
                    "status unknown for quota: {name}, resources: {}",
                    unknown.join(",")
                ),
            ));
        }
        interesting.push((quota, hard, used));
    }
    if interesting.is_empty() {
        return Ok(None);
    }
    let now = now_seconds();
    let input = usage::usage(group, plural, object, now);
    let mut negative: Vec<&str> = input
        .iter()
        .filter(|(_, q)| q.is_negative())
        .map(|(n, _)| n.as_str())
        .collect();
    if !negative.is_empty() {
        negative.sort();
        return Err(attributes.forbidden(
            object,
            format!(
                "quota usage is negative for resource(s): {}",
                negative.join(",")
            ),
        ));
    }
    let previous = match (attributes.operation, attributes.old) {
        (Operation::Update, Some(old)) if !object::meta_str(old, "resourceVersion").is_empty() => {
            Some((old, usage::usage(group, plural, old, now)))
        }
        _ => None,
    };
    let mut charged = Vec::new();
    for (quota, hard, used) in interesting {
        let mut delta = input.clone();
        if let Some((old, before)) = &previous {
            if usage::matches_scopes(quota, group, plural, old) {
                delta = subtract_non_negative(&input, before);
            }
        }
        delta.retain(|_, q| !q.is_zero());
        if delta.is_empty() {
            continue;
        }
        let hard_names: Vec<String> = hard.keys().cloned().collect();
        let requested = usage::mask(&delta, &hard_names);
        let mut new_used = used.clone();
        usage::add_all(&mut new_used, &requested);
        let exceeded: Vec<String> = requested
            .keys()
            .filter(|name| match (new_used.get(*name), hard.get(*name)) {
                (Some(total), Some(limit)) => total > limit,
                _ => false,
            })
            .cloned()
            .collect();
        if !exceeded.is_empty() {
            return Err(attributes.forbidden(
                object,
                format!(
                    "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    object::name(quota),
                    usage::pretty(&usage::mask(&requested, &exceeded)),
                    usage::pretty(&usage::mask(&used, &exceeded)),
                    usage::pretty(&usage::mask(&hard, &exceeded)),
                ),
            ));
        }
        if new_used != used {
            charged.push((quota.clone(), new_used));
        }
    }
    Ok((!charged.is_empty()).then_some(charged))
}

/// Stores the quotas' new `status.used`, each conditional on the version
/// that was charged (a `Conflict` makes the caller charge again).
async fn write_usage(
    registry: &Registry,
    resource: &Arc<crate::resources::ResourceInfo>,
    attributes: &Attributes<'_>,
    charged: Vec<(Value, ResourceList)>,
) -> Result<(), ApiError> {
    for (mut quota, used) in charged {
        quota["status"]["used"] = usage::to_json(&used);
        let address = ObjectAddress {
            resource: resource.clone(),
            namespace: attributes.namespace.map(str::to_owned),
            name: object::name(&quota).to_owned(),
        };
        registry
            .update(
                &address,
                quota,
                UpdateTarget::Status,
                &super::server_write(),
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtracts_without_going_negative() {
        let a: ResourceList = [("cpu".to_owned(), Quantity::from_units(1))].into();
        let b: ResourceList = [("cpu".to_owned(), Quantity::from_units(2))].into();
        assert!(subtract_non_negative(&a, &b)["cpu"].is_zero());
    }
}
