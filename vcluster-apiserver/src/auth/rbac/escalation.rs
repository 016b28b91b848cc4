//! Forbidden answers in upstream's words, and escalation prevention: the
//! admission check on writes of roles and bindings.

use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::auth::{Attributes, UserInfo};
use crate::error::{ApiError, FieldCause};
use crate::object;
use crate::registry::Admission;
use crate::resources::ResourceInfo;

/// `pods` or `deployments.apps`.
pub(super) fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// The 403 of a denied request, worded as upstream's, and logged.
pub fn forbidden(user: &UserInfo, request: &Attributes, reason: &str) -> ApiError {
    tracing::info!(
        user = %user.name,
        groups = ?user.groups,
        verb = %request.verb,
        api_group = %request.api_group,
        resource = %request.combined_resource(),
        namespace = %request.namespace,
        name = %request.name,
        path = %request.path,
        "request forbidden"
    );
    let mut what = if !request.resource_request {
        format!(
            "User {:?} cannot {} path {:?}",
            user.name, request.verb, request.path
        )
    } else if request.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            user.name,
            request.verb,
            request.combined_resource(),
            request.api_group
        )
    } else {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            user.name,
            request.verb,
            request.combined_resource(),
            request.api_group,
            request.namespace
        )
    };
    if !reason.is_empty() {
        what = format!("{what}: {reason}");
    }
    if !request.resource_request {
        return ApiError::forbidden(format!("forbidden: {what}"));
    }
    forbidden_on(&request.api_group, &request.resource, &request.name, &what)
}

/// `<resource> "<name>" is forbidden: <why>`, with the object as details.
pub fn forbidden_on(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
    let resource_name = qualified(group, resource);
    let message = if name.is_empty() {
        format!("{resource_name} is forbidden: {why}")
    } else {
        format!("{resource_name} {name:?} is forbidden: {why}")
    };
    ApiError::forbidden(message).with_target(group, resource, name)
}

/// The admission check of writes to RBAC objects: validation (always) and
/// escalation prevention (when `policy` is given, i.e. the request was
/// authorized by it).
pub(crate) fn admission(policy: Option<Arc<Policy>>, user: UserInfo) -> Admission {
    Admission::new(move |resource, object, old| {
        admit(policy.as_deref(), &user, resource, object, old)
    })
}

pub(super) fn admit(
    policy: Option<&Policy>,
    user: &UserInfo,
    resource: &ResourceInfo,
    object: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if resource.group != GROUP {
        return Ok(());
    }
    let name = object::name(object);
    let namespace = object::namespace(object);
    match resource.plural.as_str() {
        "roles" | "clusterroles" => {
            let cluster = resource.plural == "clusterroles";
            let rules = parse_rules(resource, object, cluster)?;
            let Some(policy) = policy else {
                return Ok(());
            };
            let aggregated = cluster && object.get("aggregationRule").is_some_and(|a| !a.is_null());
            if aggregated {
                let full = [
                    PolicyRule::resources(&[ALL], &[ALL], &[ALL]),
                    PolicyRule::urls(&[ALL], &[ALL]),
                ];
                if policy.confirm_no_escalation(user, "", &full).is_err() {
                    return Err(forbidden_on(
                        GROUP,
                        &resource.plural,
                        name,
                        "must have cluster-admin privileges to use the aggregationRule",
                    ));
                }
            }
            let escalate =
                Attributes::resource("escalate", GROUP, &resource.plural, namespace, name);
            if policy.authorize(user, &escalate).allowed() {
                return Ok(());
            }
            policy
                .confirm_no_escalation(user, namespace, &rules)
                .map_err(|why| forbidden_on(GROUP, &resource.plural, name, &why))
        }
        "rolebindings" | "clusterrolebindings" => {
            let cluster = resource.plural == "clusterrolebindings";
            let role_ref = parse_binding(resource, object, cluster)?;
            if let Some(old) = old {
                if old.get("roleRef") != object.get("roleRef") {
                    return Err(ApiError::invalid(
                        &resource.kind,
                        name,
                        vec![FieldCause::invalid(
                            "roleRef",
                            &object
                                .get("roleRef")
                                .map(Value::to_string)
                                .unwrap_or_default(),
                            "cannot change roleRef",
                        )],
                    ));
                }
            }
            let Some(policy) = policy else {
                return Ok(());
            };
            let role_resource = if role_ref.kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            let bind =
                Attributes::resource("bind", GROUP, role_resource, namespace, &role_ref.name);
            if policy.authorize(user, &bind).allowed() {
                return Ok(());
            }
            let rules = policy
                .role_ref_rules(&role_ref, namespace)
                .ok_or_else(|| ApiError::not_found(GROUP, role_resource, &role_ref.name))?;
            policy
                .confirm_no_escalation(user, namespace, rules)
                .map_err(|why| forbidden_on(GROUP, &resource.plural, name, &why))
        }
        _ => Ok(()),
    }
}

/// The rules of a Role or ClusterRole, validated as upstream does.
pub(super) fn parse_rules(
    resource: &ResourceInfo,
    object: &Value,
    cluster: bool,
) -> Result<Vec<PolicyRule>, ApiError> {
    let rules = rules_of(object);
    let mut causes = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let field = |f: &str| format!("rules[{i}].{f}");
        if rule.verbs.is_empty() {
            causes.push(FieldCause::required(field("verbs")));
        }
        if !rule.non_resource_urls.is_empty() {
            if !cluster {
                causes.push(FieldCause::invalid(
                    field("nonResourceURLs"),
                    &rule.non_resource_urls.join(","),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !rule.api_groups.is_empty() || !rule.resources.is_empty() {
                causes.push(FieldCause::invalid(
                    field("nonResourceURLs"),
                    &rule.non_resource_urls.join(","),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if rule.api_groups.is_empty() {
            causes.push(FieldCause::required(field("apiGroups")));
        }
        if rule.resources.is_empty() {
            causes.push(FieldCause::required(field("resources")));
        }
    }
    if causes.is_empty() {
        Ok(rules)
    } else {
        Err(ApiError::invalid(
            &resource.kind,
            object::name(object),
            causes,
        ))
    }
}

/// The role reference of a binding, with its subjects validated.
pub(super) fn parse_binding(
    resource: &ResourceInfo,
    object: &Value,
    cluster: bool,
) -> Result<RoleRef, ApiError> {
    let binding = Binding::parse(object);
    let mut causes = Vec::new();
    let role_ref = &binding.role_ref;
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        causes.push(FieldCause::not_supported(
            "roleRef.kind",
            &role_ref.kind,
            kinds,
        ));
    }
    if role_ref.api_group != GROUP {
        causes.push(FieldCause::not_supported(
            "roleRef.apiGroup",
            &role_ref.api_group,
            &[GROUP],
        ));
    }
    if role_ref.name.is_empty() {
        causes.push(FieldCause::required("roleRef.name"));
    }
    let subjects = object
        .get("subjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, subject) in subjects.iter().enumerate() {
        let field = |f: &str| format!("subjects[{i}].{f}");
        let kind = object::path_str(subject, "kind");
        let group = object::path_str(subject, "apiGroup");
        if object::path_str(subject, "name").is_empty() {
            causes.push(FieldCause::required(field("name")));
        }
        match kind {
            "ServiceAccount" => {
                if !group.is_empty() {
                    causes.push(FieldCause::not_supported(field("apiGroup"), group, &[""]));
                }
                if cluster && object::path_str(subject, "namespace").is_empty() {
                    causes.push(FieldCause::required(field("namespace")));
                }
            }
            "User" | "Group" => {
                if group != GROUP {
                    causes.push(FieldCause::not_supported(
                        field("apiGroup"),
                        group,
                        &[GROUP],
                    ));
                }
            }
            other => causes.push(FieldCause::not_supported(
                field("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    if causes.is_empty() {
        Ok(binding.role_ref)
    } else {
        Err(ApiError::invalid(
            &resource.kind,
            object::name(object),
            causes,
        ))
    }
}
