//! Printers for namespaces, nodes, configuration objects (config maps,
//! secrets, service accounts), events of both API groups, and leases.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::format::{
    age, get, int_at, list_at, map_at, map_len, name, opt_bool, since, str_at, time_at, NONE,
    UNKNOWN,
};
use super::Row;

/// NAME STATUS AGE; kube defaults an unset phase to `Active`.
pub(crate) fn namespace(ns: &Value, now: Timestamp) -> Row {
    let phase = match str_at(ns, &["status", "phase"]) {
        "" => "Active",
        phase => phase,
    };
    vec![name(ns).into(), phase.into(), age(ns, now).into()].into()
}

/// NAME STATUS ROLES AGE VERSION + addresses and node info.
pub(crate) fn node(node: &Value, now: Timestamp) -> Row {
    // Only the Ready condition is shown; a later duplicate wins, as in kube.
    let ready = list_at(node, &["status", "conditions"])
        .iter()
        .rfind(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if opt_bool(node, &["spec", "unschedulable"]) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let info = |field: &str| match str_at(node, &["status", "nodeInfo", field]) {
        "" => UNKNOWN,
        value => value,
    };
    vec![
        name(node).into(),
        status.join(",").into(),
        roles(node).into(),
        age(node, now).into(),
        str_at(node, &["status", "nodeInfo", "kubeletVersion"]).into(),
        address(node, "InternalIP").into(),
        address(node, "ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
    .into()
}

/// Roles from `node-role.kubernetes.io/<role>` label keys and the
/// `kubernetes.io/role` label value, sorted, or `<none>`.
fn roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (key, value) in map_at(node, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_owned());
            }
        } else if key == "kubernetes.io/role" {
            if let Some(role) = value.as_str().filter(|r| !r.is_empty()) {
                roles.insert(role.to_owned());
            }
        }
    }
    if roles.is_empty() {
        NONE.to_owned()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

/// The first address of the given type, or `<none>`.
fn address<'a>(node: &'a Value, kind: &str) -> &'a str {
    list_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == kind)
        .map_or(NONE, |a| str_at(a, &["address"]))
}

/// NAME DATA AGE, counting text and binary keys.
pub(crate) fn config_map(cm: &Value, now: Timestamp) -> Row {
    let data = map_len(cm, &["data"]).saturating_add(map_len(cm, &["binaryData"]));
    vec![name(cm).into(), data.into(), age(cm, now).into()].into()
}

/// NAME TYPE DATA AGE. `stringData` keys count too: kube merges them into
/// `data` on write.
pub(crate) fn secret(secret: &Value, now: Timestamp) -> Row {
    let kind = match str_at(secret, &["type"]) {
        "" => "Opaque",
        kind => kind,
    };
    let keys: BTreeSet<&String> = ["data", "stringData"]
        .iter()
        .filter_map(|field| map_at(secret, &[field]))
        .flat_map(|m| m.keys())
        .collect();
    let data = i64::try_from(keys.len()).unwrap_or(i64::MAX);
    vec![
        name(secret).into(),
        kind.into(),
        data.into(),
        age(secret, now).into(),
    ]
    .into()
}

/// NAME SECRETS AGE.
pub(crate) fn service_account(sa: &Value, now: Timestamp) -> Row {
    let secrets = i64::try_from(list_at(sa, &["secrets"]).len()).unwrap_or(i64::MAX);
    vec![name(sa).into(), secrets.into(), age(sa, now).into()].into()
}

/// Where the fields kube's event printer reads live in one API version.
struct EventFields {
    involved: &'static str,
    message: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    source: &'static str,
    controller: &'static str,
}

/// A `v1` event.
pub(crate) fn core_event(event: &Value, now: Timestamp) -> Row {
    const CORE: EventFields = EventFields {
        involved: "involvedObject",
        message: "message",
        first: "firstTimestamp",
        last: "lastTimestamp",
        count: "count",
        source: "source",
        controller: "reportingComponent",
    };
    event_row(event, now, &CORE)
}

/// An `events.k8s.io/v1` event: kube converts it to the core form (its
/// `deprecated*` fields, `regarding`, `note`) and prints that.
pub(crate) fn events_event(event: &Value, now: Timestamp) -> Row {
    const EVENTS: EventFields = EventFields {
        involved: "regarding",
        message: "note",
        first: "deprecatedFirstTimestamp",
        last: "deprecatedLastTimestamp",
        count: "deprecatedCount",
        source: "deprecatedSource",
        controller: "reportingController",
    };
    event_row(event, now, &EVENTS)
}

/// LAST SEEN TYPE REASON OBJECT [SUBOBJECT SOURCE] MESSAGE [FIRST SEEN COUNT NAME].
fn event_row(event: &Value, now: Timestamp, fields: &EventFields) -> Row {
    let first_ts = time_at(event, &[fields.first]);
    let first = match first_ts {
        Some(_) => since(first_ts, now),
        None => since(time_at(event, &["eventTime"]), now),
    };
    let last_ts = time_at(event, &[fields.last]);
    let mut last = match last_ts {
        Some(_) => since(last_ts, now),
        None => first.clone(),
    };
    let mut count = int_at(event, &[fields.count]);
    if get(event, &["series"]).is_some_and(Value::is_object) {
        last = since(time_at(event, &["series", "lastObservedTime"]), now);
        count = int_at(event, &["series", "count"]);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }

    let kind = str_at(event, &[fields.involved, "kind"]).to_lowercase();
    let object = match str_at(event, &[fields.involved, "name"]) {
        "" => kind,
        target => format!("{kind}/{target}"),
    };
    let first_non_empty =
        |a: &'static str, b: &'static str| match str_at(event, &[fields.source, a]) {
            "" => str_at(event, &[b]),
            value => value,
        };
    let component = first_non_empty("component", fields.controller);
    let source = match first_non_empty("host", "reportingInstance") {
        "" => component.to_owned(),
        instance => format!("{component}, {instance}"),
    };

    vec![
        last.into(),
        str_at(event, &["type"]).into(),
        str_at(event, &["reason"]).into(),
        object.into(),
        str_at(event, &[fields.involved, "fieldPath"]).into(),
        source.into(),
        str_at(event, &[fields.message]).trim().into(),
        first.into(),
        count.into(),
        name(event).into(),
    ]
    .into()
}

/// NAME REQUEST LIMIT AGE: each `status.hard` name as `used/hard`,
/// `limits.*` ones under LIMIT, sorted by name.
pub(crate) fn resource_quota(quota: &Value, now: Timestamp) -> Row {
    let hard = quota.pointer("/status/hard").and_then(Value::as_object);
    let used = quota.pointer("/status/used").and_then(Value::as_object);
    let mut names: Vec<&String> = hard.into_iter().flat_map(|h| h.keys()).collect();
    names.sort();
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    let text = |list: Option<&serde_json::Map<String, Value>>, name: &str| {
        list.and_then(|l| l.get(name))
            .and_then(Value::as_str)
            .and_then(crate::registry::admission::quantity::Quantity::parse)
            .unwrap_or(crate::registry::admission::quantity::Quantity::ZERO)
            .to_string()
    };
    for name in names {
        let cell = format!("{name}: {}/{}", text(used, name), text(hard, name));
        if name.split('.').count() > 1 && name.split('.').next() == Some("limits") {
            limit.push(cell);
        } else {
            request.push(cell);
        }
    }
    vec![
        name(quota).into(),
        request.join(", ").into(),
        limit.join(", ").into(),
        age(quota, now).into(),
    ]
    .into()
}

/// NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY.
pub(crate) fn priority_class(class: &Value, now: Timestamp) -> Row {
    vec![
        name(class).into(),
        class
            .get("value")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .into(),
        class
            .get("globalDefault")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .into(),
        age(class, now).into(),
        str_at(class, &["preemptionPolicy"]).into(),
    ]
    .into()
}

/// NAME HOLDER AGE.
pub(crate) fn lease(lease: &Value, now: Timestamp) -> Row {
    let holder = str_at(lease, &["spec", "holderIdentity"]);
    vec![name(lease).into(), holder.into(), age(lease, now).into()].into()
}

/// A custom resource definition's row: its name and creation time, as
/// upstream prints it.
pub(crate) fn custom_resource_definition(crd: &Value, _now: Timestamp) -> Row {
    vec![
        name(crd).into(),
        str_at(crd, &["metadata", "creationTimestamp"]).into(),
    ]
    .into()
}

/// NAME and CREATED AT (RFC 3339, UTC), as upstream's default convertor.
pub(crate) fn created_at(object: &Value, _now: Timestamp) -> Row {
    let created = time_at(object, &["metadata", "creationTimestamp"])
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .map_or(Value::Null, Value::String);
    vec![name(object).into(), created].into()
}

/// NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS for (cluster) role bindings.
pub(crate) fn role_binding(binding: &Value, now: Timestamp) -> Row {
    let role = format!(
        "{}/{}",
        str_at(binding, &["roleRef", "kind"]),
        str_at(binding, &["roleRef", "name"])
    );
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in list_at(binding, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => {
                accounts.push(format!(
                    "{}/{subject_name}",
                    str_at(subject, &["namespace"])
                ));
            }
            "User" => users.push(subject_name.to_owned()),
            "Group" => groups.push(subject_name.to_owned()),
            _ => {}
        }
    }
    vec![
        name(binding).into(),
        role.into(),
        age(binding, now).into(),
        users.join(", ").into(),
        groups.join(", ").into(),
        accounts.join(", ").into(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cells, headers};
    use serde_json::json;

    const CREATED: &str = "2024-06-01T11:00:00Z";

    #[test]
    fn namespaces_show_phase() {
        assert_eq!(headers("", "Namespace"), ["NAME", "STATUS", "AGE"]);
        let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": "2024-05-20T12:00:00Z"},
                        "status": {"phase": "Terminating"}});
        assert_eq!(
            cells("", "Namespace", ns),
            ["kube-system", "Terminating", "12d"]
        );
        let fresh =
            json!({"metadata": {"name": "new", "creationTimestamp": "2024-06-01T11:59:15Z"}});
        assert_eq!(cells("", "Namespace", fresh), ["new", "Active", "45s"]);
    }

    #[test]
    fn ready_control_plane_node_with_roles() {
        assert_eq!(
            headers("", "Node"),
            [
                "NAME",
                "STATUS",
                "ROLES",
                "AGE",
                "VERSION",
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME"
            ]
        );
        let node = json!({
            "metadata": {"name": "cp-1", "creationTimestamp": "2024-05-01T12:00:00Z",
                         "labels": {"node-role.kubernetes.io/control-plane": "",
                                    "node-role.kubernetes.io/master": "",
                                    "node-role.kubernetes.io/": "x",
                                    "kubernetes.io/role": "etcd"}},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "Hostname", "address": "cp-1"},
                                     {"type": "InternalIP", "address": "172.18.0.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.8.0", "containerRuntimeVersion": "containerd://2.1.1"}}
        });
        assert_eq!(
            cells("", "Node", node),
            [
                "cp-1",
                "Ready",
                "control-plane,etcd,master",
                "31d",
                "v1.33.1",
                "172.18.0.2",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.8.0",
                "containerd://2.1.1"
            ]
        );
    }

    #[test]
    fn node_status_variants() {
        let node = |conditions: serde_json::Value, unschedulable: bool| {
            json!({"metadata": {"name": "n", "creationTimestamp": CREATED},
                   "spec": {"unschedulable": unschedulable},
                   "status": {"conditions": conditions}})
        };
        let not_ready = node(json!([{"type": "Ready", "status": "Unknown"}]), true);
        assert_eq!(
            cells("", "Node", not_ready)[..3],
            ["n", "NotReady,SchedulingDisabled", "<none>"]
        );
        let unknown = cells("", "Node", node(json!([]), false));
        assert_eq!(unknown[1], "Unknown");
        assert_eq!(
            unknown[4..],
            [
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]
        );
    }

    #[test]
    fn config_maps_secrets_and_service_accounts_count_entries() {
        let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": CREATED},
                        "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(
            cells("", "ConfigMap", cm),
            [json!("cfg"), json!(3), json!("60m")]
        );
        assert_eq!(headers("", "Secret"), ["NAME", "TYPE", "DATA", "AGE"]);
        let secret = json!({"metadata": {"name": "s", "creationTimestamp": CREATED},
                            "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""},
                            "stringData": {"tls.key": "x", "ca.crt": "y"}});
        assert_eq!(
            cells("", "Secret", secret),
            [
                json!("s"),
                json!("kubernetes.io/tls"),
                json!(3),
                json!("60m")
            ]
        );
        let untyped = json!({"metadata": {"name": "o"}});
        assert_eq!(
            cells("", "Secret", untyped)[1..3],
            [json!("Opaque"), json!(0)]
        );
        let sa = json!({"metadata": {"name": "default", "creationTimestamp": CREATED}});
        assert_eq!(
            cells("", "ServiceAccount", sa),
            [json!("default"), json!(0), json!("60m")]
        );
    }

    #[test]
    fn core_events_print_last_seen_object_and_source() {
        assert_eq!(
            headers("", "Event"),
            [
                "LAST SEEN",
                "TYPE",
                "REASON",
                "OBJECT",
                "SUBOBJECT",
                "SOURCE",
                "MESSAGE",
                "FIRST SEEN",
                "COUNT",
                "NAME"
            ]
        );
        let event = json!({
            "metadata": {"name": "web.17d", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-06-01T11:00:00Z", "lastTimestamp": "2024-06-01T11:58:00Z", "count": 12
        });
        assert_eq!(
            cells("", "Event", event),
            [
                json!("2m"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting failed container"),
                json!("60m"),
                json!(12),
                json!("web.17d")
            ]
        );
    }

    #[test]
    fn new_style_events_use_event_time_series_and_reporting_controller() {
        let event = json!({
            "metadata": {"name": "e1"},
            "regarding": {"kind": "Deployment", "name": "web"},
            "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up",
            "eventTime": "2024-06-01T11:30:00.000000Z",
            "reportingController": "deployment-controller", "reportingInstance": "",
            "series": {"count": 4, "lastObservedTime": "2024-06-01T11:59:30.500000Z"}
        });
        assert_eq!(
            cells("events.k8s.io", "Event", event),
            [
                json!("29s"),
                json!("Normal"),
                json!("ScalingReplicaSet"),
                json!("deployment/web"),
                json!(""),
                json!("deployment-controller"),
                json!("Scaled up"),
                json!("30m"),
                json!(4),
                json!("e1")
            ]
        );
        // A singleton without timestamps counts once and has no known age.
        let bare = json!({"metadata": {"name": "e2"}, "regarding": {"kind": "Node"}});
        let row = cells("events.k8s.io", "Event", bare);
        assert_eq!(row[0], "<unknown>");
        assert_eq!(row[3], "node");
        assert_eq!(row[7..], [json!("<unknown>"), json!(1), json!("e2")]);
    }

    #[test]
    fn leases_show_holder() {
        let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": CREATED},
                           "spec": {"holderIdentity": "cp-1_abc"}});
        assert_eq!(
            cells("coordination.k8s.io", "Lease", lease),
            ["kube-scheduler", "cp-1_abc", "60m"]
        );
    }
}
