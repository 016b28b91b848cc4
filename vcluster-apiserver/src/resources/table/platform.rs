//! Printers for the kinds that describe the cluster's platform rather than
//! a workload: storage drivers and attachments, runtime and ingress
//! classes, service address ranges, dynamic resource allocation, admission
//! registration, API priority and fairness, certificate requests and
//! component statuses. Cells follow kube-apiserver's printers.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{
    age, format_label_selector, get, human_duration, int_at, list_at, name, opt_bool, opt_int,
    opt_str, str_at, NONE, UNSET,
};
use super::Row;

/// NAME ATTACHREQUIRED PODINFOONMOUNT STORAGECAPACITY TOKENREQUESTS
/// REQUIRESREPUBLISH MODES AGE; unset booleans print kube's defaults.
pub(crate) fn csi_driver(driver: &Value, now: Timestamp) -> Row {
    let flag = |field: &str, default: bool| opt_bool(driver, &["spec", field]).unwrap_or(default);
    let tokens = match get(driver, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        Some(requests) => requests
            .iter()
            .map(|request| str_at(request, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => UNSET.to_owned(),
    };
    let modes = list_at(driver, &["spec", "volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(",");
    vec![
        name(driver).into(),
        flag("attachRequired", true).into(),
        flag("podInfoOnMount", false).into(),
        flag("storageCapacity", false).into(),
        tokens.into(),
        flag("requiresRepublish", false).into(),
        if modes.is_empty() {
            NONE.to_owned()
        } else {
            modes
        }
        .into(),
        age(driver, now).into(),
    ]
    .into()
}

/// NAME DRIVERS AGE.
pub(crate) fn csi_node(node: &Value, now: Timestamp) -> Row {
    let drivers = list_at(node, &["spec", "drivers"]).len() as i64;
    vec![name(node).into(), drivers.into(), age(node, now).into()].into()
}

/// NAME ATTACHER PV NODE ATTACHED AGE.
pub(crate) fn volume_attachment(attachment: &Value, now: Timestamp) -> Row {
    vec![
        name(attachment).into(),
        str_at(attachment, &["spec", "attacher"]).into(),
        str_at(attachment, &["spec", "source", "persistentVolumeName"]).into(),
        str_at(attachment, &["spec", "nodeName"]).into(),
        opt_bool(attachment, &["status", "attached"])
            .unwrap_or(false)
            .into(),
        age(attachment, now).into(),
    ]
    .into()
}

/// NAME DRIVERNAME AGE.
pub(crate) fn volume_attributes_class(class: &Value, now: Timestamp) -> Row {
    let driver = str_at(class, &["driverName"]);
    vec![name(class).into(), driver.into(), age(class, now).into()].into()
}

/// NAME HANDLER AGE.
pub(crate) fn runtime_class(class: &Value, now: Timestamp) -> Row {
    let handler = str_at(class, &["handler"]);
    vec![name(class).into(), handler.into(), age(class, now).into()].into()
}

/// NAME CONTROLLER PARAMETERS AGE; parameters as `Kind[.group]/name`.
pub(crate) fn ingress_class(class: &Value, now: Timestamp) -> Row {
    let parameters = match get(class, &["spec", "parameters"]).filter(|p| p.is_object()) {
        Some(p) => {
            let mut text = str_at(p, &["kind"]).to_owned();
            if let Some(group) = opt_str(p, &["apiGroup"]) {
                text = format!("{text}.{group}");
            }
            format!("{text}/{}", str_at(p, &["name"]))
        }
        None => NONE.to_owned(),
    };
    vec![
        name(class).into(),
        str_at(class, &["spec", "controller"]).into(),
        parameters.into(),
        age(class, now).into(),
    ]
    .into()
}

/// NAME PARENTREF; kube's row also carries the age, which its columns do
/// not announce, and so does this one.
pub(crate) fn ip_address(address: &Value, now: Timestamp) -> Row {
    let parent = match get(address, &["spec", "parentRef"]).filter(|p| p.is_object()) {
        Some(p) => {
            let resource = str_at(p, &["resource"]).to_lowercase();
            let group = str_at(p, &["group"]).to_lowercase();
            let mut text = if group.is_empty() {
                resource
            } else {
                format!("{resource}.{group}")
            };
            if let Some(ns) = opt_str(p, &["namespace"]).filter(|ns| !ns.is_empty()) {
                text = format!("{text}/{ns}");
            }
            format!("{text}/{}", str_at(p, &["name"]))
        }
        None => NONE.to_owned(),
    };
    vec![
        name(address).into(),
        parent.into(),
        age(address, now).into(),
    ]
    .into()
}

/// NAME CIDRS AGE.
pub(crate) fn service_cidr(cidr: &Value, now: Timestamp) -> Row {
    let cidrs = list_at(cidr, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(",");
    vec![name(cidr).into(), cidrs.into(), age(cidr, now).into()].into()
}

/// NAME AGE, for kinds whose printer shows nothing else.
pub(crate) fn name_and_age(object: &Value, now: Timestamp) -> Row {
    vec![name(object).into(), age(object, now).into()].into()
}

/// NAME STATE AGE; the state as kube summarises it (`pending`,
/// `allocated,reserved`, `deleted`).
pub(crate) fn resource_claim(claim: &Value, now: Timestamp) -> Row {
    let deleted = get(claim, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null());
    let allocated = get(claim, &["status", "allocation"]).is_some_and(|a| !a.is_null());
    let mut states = Vec::new();
    if deleted {
        states.push("deleted");
    }
    if !allocated {
        if !deleted {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if !list_at(claim, &["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    }
    vec![
        name(claim).into(),
        states.join(",").into(),
        age(claim, now).into(),
    ]
    .into()
}

/// NAME NODE DRIVER POOL AGE.
pub(crate) fn resource_slice(slice: &Value, now: Timestamp) -> Row {
    vec![
        name(slice).into(),
        str_at(slice, &["spec", "nodeName"]).into(),
        str_at(slice, &["spec", "driver"]).into(),
        str_at(slice, &["spec", "pool", "name"]).into(),
        age(slice, now).into(),
    ]
    .into()
}

/// NAME WEBHOOKS AGE, for both webhook configuration kinds.
pub(crate) fn webhook_configuration(config: &Value, now: Timestamp) -> Row {
    let webhooks = list_at(config, &["webhooks"]).len() as i64;
    vec![
        name(config).into(),
        webhooks.into(),
        age(config, now).into(),
    ]
    .into()
}

/// NAME VALIDATIONS PARAMKIND AGE.
pub(crate) fn validating_admission_policy(policy: &Value, now: Timestamp) -> Row {
    let validations = list_at(policy, &["spec", "validations"]).len() as i64;
    let param_kind = match get(policy, &["spec", "paramKind"]).filter(|p| p.is_object()) {
        Some(kind) => format!(
            "{}/{}",
            str_at(kind, &["apiVersion"]),
            str_at(kind, &["kind"])
        ),
        None => UNSET.to_owned(),
    };
    vec![
        name(policy).into(),
        validations.into(),
        param_kind.into(),
        age(policy, now).into(),
    ]
    .into()
}

/// NAME POLICYNAME PARAMREF AGE; the parameter as `ns/name`, `*/name`
/// (any namespace) or its selector.
pub(crate) fn validating_admission_policy_binding(binding: &Value, now: Timestamp) -> Row {
    let param = match get(binding, &["spec", "paramRef"]).filter(|p| p.is_object()) {
        Some(reference) => {
            let ref_name = str_at(reference, &["name"]);
            let namespace = str_at(reference, &["namespace"]);
            if !ref_name.is_empty() {
                if namespace.is_empty() {
                    format!("*/{ref_name}")
                } else {
                    format!("{namespace}/{ref_name}")
                }
            } else if let Some(selector) = get(reference, &["selector"]).filter(|s| !s.is_null()) {
                format_label_selector(Some(selector))
            } else {
                UNSET.to_owned()
            }
        }
        None => UNSET.to_owned(),
    };
    vec![
        name(binding).into(),
        str_at(binding, &["spec", "policyName"]).into(),
        param.into(),
        age(binding, now).into(),
    ]
    .into()
}

/// NAME PRIORITYLEVEL MATCHINGPRECEDENCE DISTINGUISHERMETHOD AGE
/// MISSINGPL; the last from the `Dangling` condition, `?` without one.
pub(crate) fn flow_schema(schema: &Value, now: Timestamp) -> Row {
    let distinguisher = opt_str(schema, &["spec", "distinguisherMethod", "type"]).unwrap_or(NONE);
    let dangling = list_at(schema, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Dangling")
        .map_or("?", |c| str_at(c, &["status"]));
    vec![
        name(schema).into(),
        str_at(schema, &["spec", "priorityLevelConfiguration", "name"]).into(),
        int_at(schema, &["spec", "matchingPrecedence"]).into(),
        distinguisher.into(),
        age(schema, now).into(),
        dangling.into(),
    ]
    .into()
}

/// NAME TYPE NOMINALCONCURRENCYSHARES QUEUES HANDSIZE QUEUELENGTHLIMIT
/// AGE; `<none>` where the level is not limited or does not queue.
pub(crate) fn priority_level(level: &Value, now: Timestamp) -> Row {
    let limited = get(level, &["spec", "limited"]).filter(|l| l.is_object());
    let number = |path: &[&str]| -> Value {
        match limited.and_then(|l| opt_int(l, path)) {
            Some(n) => n.into(),
            None => NONE.into(),
        }
    };
    let queuing = limited.and_then(|l| get(l, &["limitResponse", "queuing"]));
    let queued = |field: &str| -> Value {
        match queuing.filter(|q| q.is_object()) {
            Some(q) => opt_int(q, &[field]).unwrap_or(0).into(),
            None => NONE.into(),
        }
    };
    vec![
        name(level).into(),
        str_at(level, &["spec", "type"]).into(),
        if limited.is_some() {
            number(&["nominalConcurrencyShares"])
        } else {
            NONE.into()
        },
        queued("queues"),
        queued("handSize"),
        queued("queueLengthLimit"),
        age(level, now).into(),
    ]
    .into()
}

/// NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION; the
/// condition as kube sums it up (`Pending`, `Approved,Issued`, ...).
pub(crate) fn certificate_signing_request(csr: &Value, now: Timestamp) -> Row {
    let signer = match str_at(csr, &["spec", "signerName"]) {
        "" => NONE,
        signer => signer,
    };
    let duration = match opt_int(csr, &["spec", "expirationSeconds"]) {
        Some(seconds) => human_duration(i128::from(seconds) * 1_000_000_000),
        None => NONE.to_owned(),
    };
    vec![
        name(csr).into(),
        age(csr, now).into(),
        signer.into(),
        str_at(csr, &["spec", "username"]).into(),
        duration.into(),
        csr_condition(csr).into(),
    ]
    .into()
}

/// A request's state: denied before approved, then failed and issued.
pub(crate) fn csr_condition(csr: &Value) -> String {
    let has = |kind: &str| {
        list_at(csr, &["status", "conditions"])
            .iter()
            .any(|c| str_at(c, &["type"]) == kind)
    };
    let mut status = if has("Denied") {
        "Denied".to_owned()
    } else if has("Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(csr, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

/// NAME STATUS MESSAGE ERROR, from the `Healthy` condition.
pub(crate) fn component_status(component: &Value, _now: Timestamp) -> Row {
    let healthy = list_at(component, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![
        name(component).into(),
        status.into(),
        message.into(),
        error.into(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-01-01T01:00:00Z".parse().expect("a valid instant")
    }

    const CREATED: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn csr_conditions_sum_up_as_kube_does() {
        let csr = json!({"status": {"conditions": [{"type": "Approved"}], "certificate": "eA=="}});
        assert_eq!(csr_condition(&csr), "Approved,Issued");
        let denied = json!({"status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}]}});
        assert_eq!(csr_condition(&denied), "Denied");
        assert_eq!(csr_condition(&json!({})), "Pending");
    }

    #[test]
    fn priority_levels_show_none_where_not_queuing() {
        let exempt = json!({"metadata": {"name": "exempt", "creationTimestamp": CREATED},
                            "spec": {"type": "Exempt"}});
        let row = priority_level(&exempt, now());
        assert_eq!(
            row.cells,
            [
                json!("exempt"),
                json!("Exempt"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("60m")
            ]
        );
    }

    #[test]
    fn ip_addresses_name_their_parent() {
        let ip = json!({"metadata": {"name": "10.0.0.1"},
                        "spec": {"parentRef": {"group": "", "resource": "services",
                                               "namespace": "default", "name": "kubernetes"}}});
        assert_eq!(
            ip_address(&ip, now()).cells[1],
            json!("services/default/kubernetes")
        );
    }
}
