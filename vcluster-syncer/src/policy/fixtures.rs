//! Test pods for the policy: one that passes every level, and one way to
//! break each control.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::{PodPolicy, Rule};

/// A pod that passes every level: non-root, no privilege escalation,
/// all capabilities dropped, seccomp RuntimeDefault.
pub(super) fn hardened() -> Value {
    json!({
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}, {"name": "tmp", "emptyDir": {}}],
            "containers": [{
                "name": "app", "image": "nginx",
                "ports": [{"containerPort": 8080}],
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
                },
                "livenessProbe": {"httpGet": {"path": "/", "port": 8080}}
            }],
            "initContainers": [{
                "name": "init", "image": "busybox",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

pub(super) fn pod(value: Value) -> Pod {
    serde_json::from_value(value).expect("a valid pod")
}

pub(super) fn rules(policy: &PodPolicy, value: Value) -> BTreeSet<Rule> {
    policy
        .check(&pod(value))
        .into_iter()
        .map(|v| v.rule)
        .collect()
}

pub(super) type Mutation = fn(&mut Value);

pub(super) fn add_volume(pod: &mut Value, volume: Value) {
    if let Some(volumes) = pod["spec"]["volumes"].as_array_mut() {
        volumes.push(volume);
    }
}

/// Every baseline control, one way to break it each.
pub(super) fn baseline_breaches() -> Vec<(&'static str, Rule, Mutation)> {
    vec![
        ("hostNetwork", Rule::HostNamespaces, |p| {
            p["spec"]["hostNetwork"] = json!(true)
        }),
        ("hostPID", Rule::HostNamespaces, |p| {
            p["spec"]["hostPID"] = json!(true)
        }),
        ("hostIPC", Rule::HostNamespaces, |p| {
            p["spec"]["hostIPC"] = json!(true)
        }),
        ("privileged", Rule::Privileged, |p| {
            p["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true)
        }),
        ("privileged init container", Rule::Privileged, |p| {
            p["spec"]["initContainers"][0]["securityContext"]["privileged"] = json!(true)
        }),
        ("privileged ephemeral container", Rule::Privileged, |p| {
            p["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox", "securityContext": {"privileged": true}}])
        }),
        ("SYS_ADMIN", Rule::Capabilities, |p| {
            p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                json!(["SYS_ADMIN"])
        }),
        ("CAP_ prefixed", Rule::Capabilities, |p| {
            p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                json!(["CAP_CHOWN"])
        }),
        ("hostPath", Rule::HostPathVolumes, |p| {
            add_volume(p, json!({"name": "root", "hostPath": {"path": "/"}}))
        }),
        ("hostPort", Rule::HostPorts, |p| {
            p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(80)
        }),
        ("AppArmor field", Rule::AppArmor, |p| {
            p["spec"]["containers"][0]["securityContext"]["appArmorProfile"] =
                json!({"type": "Unconfined"})
        }),
        ("AppArmor pod field", Rule::AppArmor, |p| {
            p["spec"]["securityContext"]["appArmorProfile"] = json!({"type": "Unconfined"})
        }),
        ("AppArmor annotation", Rule::AppArmor, |p| {
            p["metadata"]["annotations"] =
                json!({"container.apparmor.security.beta.kubernetes.io/app": "unconfined"})
        }),
        ("SELinux type", Rule::SeLinux, |p| {
            p["spec"]["securityContext"]["seLinuxOptions"] = json!({"type": "spc_t"})
        }),
        ("SELinux user", Rule::SeLinux, |p| {
            p["spec"]["containers"][0]["securityContext"]["seLinuxOptions"] =
                json!({"user": "system_u"})
        }),
        ("SELinux role", Rule::SeLinux, |p| {
            p["spec"]["initContainers"][0]["securityContext"]["seLinuxOptions"] =
                json!({"role": "sysadm_r"})
        }),
        ("procMount", Rule::ProcMount, |p| {
            p["spec"]["containers"][0]["securityContext"]["procMount"] = json!("Unmasked")
        }),
        ("seccomp pod", Rule::Seccomp, |p| {
            p["spec"]["securityContext"]["seccompProfile"] = json!({"type": "Unconfined"})
        }),
        ("seccomp container", Rule::Seccomp, |p| {
            p["spec"]["containers"][0]["securityContext"]["seccompProfile"] =
                json!({"type": "Unconfined"})
        }),
        ("sysctl", Rule::Sysctls, |p| {
            p["spec"]["securityContext"]["sysctls"] =
                json!([{"name": "kernel.msgmax", "value": "65536"}])
        }),
        ("hostProcess", Rule::HostProcess, |p| {
            p["spec"]["securityContext"]["windowsOptions"] = json!({"hostProcess": true})
        }),
        ("hostProcess container", Rule::HostProcess, |p| {
            p["spec"]["containers"][0]["securityContext"]["windowsOptions"] =
                json!({"hostProcess": true})
        }),
        ("probe host", Rule::ProbeHost, |p| {
            p["spec"]["containers"][0]["livenessProbe"]["httpGet"]["host"] = json!("10.0.0.1")
        }),
        ("lifecycle host", Rule::ProbeHost, |p| {
            p["spec"]["containers"][0]["lifecycle"] =
                json!({"preStop": {"tcpSocket": {"host": "metadata.internal", "port": 80}}})
        }),
        ("service account token", Rule::ServiceAccountToken, |p| {
            add_volume(
                p,
                json!({"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}),
            )
        }),
        ("resource claim", Rule::UntranslatedReference, |p| {
            p["spec"]["resourceClaims"] =
                json!([{"name": "gpu", "resourceClaimName": "someone-elses-gpu"}])
        }),
        (
            "cross-namespace data source",
            Rule::UntranslatedReference,
            |p| {
                add_volume(
                    p,
                    json!({"name": "data", "ephemeral": {"volumeClaimTemplate": {"spec": {
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                        "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "db", "namespace": "other-tenant"}
                    }}}}),
                )
            },
        ),
    ]
}

/// The controls restricted adds.
pub(super) fn restricted_breaches() -> Vec<(&'static str, Rule, Mutation)> {
    vec![
        ("nfs volume", Rule::VolumeTypes, |p| {
            add_volume(
                p,
                json!({"name": "share", "nfs": {"server": "nfs", "path": "/"}}),
            )
        }),
        (
            "allowPrivilegeEscalation unset",
            Rule::PrivilegeEscalation,
            |p| {
                p["spec"]["containers"][0]["securityContext"]
                    .as_object_mut()
                    .expect("context")
                    .remove("allowPrivilegeEscalation");
            },
        ),
        (
            "allowPrivilegeEscalation true",
            Rule::PrivilegeEscalation,
            |p| {
                p["spec"]["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                    json!(true)
            },
        ),
        ("runAsNonRoot false", Rule::RunAsNonRoot, |p| {
            p["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false)
        }),
        ("runAsNonRoot unset", Rule::RunAsNonRoot, |p| {
            p["spec"]["securityContext"]
                .as_object_mut()
                .expect("context")
                .remove("runAsNonRoot");
        }),
        ("runAsUser 0", Rule::RunAsUser, |p| {
            p["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(0)
        }),
        ("runAsUser 0 on the pod", Rule::RunAsUser, |p| {
            p["spec"]["securityContext"]["runAsUser"] = json!(0)
        }),
        ("seccomp unset", Rule::Seccomp, |p| {
            p["spec"]["securityContext"]
                .as_object_mut()
                .expect("context")
                .remove("seccompProfile");
        }),
        ("capabilities not dropped", Rule::Capabilities, |p| {
            p["spec"]["initContainers"][0]["securityContext"]["capabilities"] =
                json!({"drop": ["NET_RAW"]})
        }),
        ("baseline capability added", Rule::Capabilities, |p| {
            p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["CHOWN"])
        }),
    ]
}
