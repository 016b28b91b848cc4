//! The built-in kinds we serve, each with an ordinary object of upstream's
//! documentation and an invalid one, and the life of one object of each
//! kind as every client lives it: create, conflicts, reads in every form,
//! the three patch types and apply, updates, dry runs, deletion.

use serde_json::{json, Value};

use crate::case::{
    Scenario, Step, APPLY, JSON_PATCH, MERGE, METADATA, METADATA_LIST, STRATEGIC, TABLE,
};

/// A PEM certificate request (CN `diff-user`, O `diff-group`, EC P-256),
/// base64 as JSON carries bytes: the same bytes to both servers.
const DIFF_CSR: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlIak1JR0xBZ0VBTUNreEVqQVFCZ05WQkFNTUNXUnBabVl0ZFhObGNqRVRNQkVHQTFVRUNnd0taR2xtWmkxbgpjbTkxY0RCWk1CTUdCeXFHU000OUFnRUdDQ3FHU000OUF3RUhBMElBQkkyck9nUGl2cjdyU0dsOWNlb29rZ1ArCjgwZHhGb0o3SVZ2MENxbHcwSzZDZkRiUm9DenVUaDdSNnFWc3hOWVFJZTlZZVZMWVdLa0p5K290cjBZY0p4bWcKQURBS0JnZ3Foa2pPUFFRREFnTkhBREJFQWlBazBtdmhKcEpVTGlweXZVVFp0Sk40ZEkvN0x5RU96VWRCVkp4SwpOYTNrMHdJZ0ljRndGdG11ZCtKRzZ2aWtIa1NvdDNPaXRVNVZYWm03TGtGOUlCa09xQ289Ci0tLS0tRU5EIENFUlRJRklDQVRFIFJFUVVFU1QtLS0tLQo=";

/// What makes an example invalid (merged over its body), and its name.
pub type Invalid = (&'static str, fn() -> Value);

/// A built-in kind and its example objects.
pub struct Kind {
    /// `/api/v1` or `/apis/<group>/<version>`.
    pub prefix: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// The object's fields besides `apiVersion`, `kind` and `metadata`.
    pub body: fn() -> Value,
    /// Fields that make it invalid (merged over `body`), and what.
    pub invalid: Option<Invalid>,
}

impl Kind {
    fn api_version(&self) -> &'static str {
        self.prefix
            .trim_start_matches("/api/")
            .trim_start_matches("/apis/")
    }

    /// The collection's path (namespaced in the scenario's namespace).
    pub fn collection(&self) -> String {
        if self.namespaced {
            format!("{}/namespaces/{{ns}}/{}", self.prefix, self.plural)
        } else {
            format!("{}/{}", self.prefix, self.plural)
        }
    }

    /// An object named `name` with `labels` (JSON text).
    pub fn object(&self, name: &str, labels: Value) -> String {
        let mut object = json!({
            "apiVersion": self.api_version(),
            "kind": self.kind,
            "metadata": {"name": name, "labels": labels},
        });
        merge(&mut object, (self.body)());
        object.to_string()
    }
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                merge(into.entry(k).or_insert(Value::Null), v);
            }
        }
        (into, from) => *into = from,
    }
}

fn pod_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]})
}

fn template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}}, "spec": pod_spec()})
}

/// Every kind compared, with its examples.
pub fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            prefix: "/api/v1",
            plural: "configmaps",
            kind: "ConfigMap",
            namespaced: true,
            body: || json!({"data": {"color": "blue", "size": "large"}}),
            invalid: Some(("bad-key", || json!({"data": {"not a key!": "x"}}))),
        },
        Kind {
            prefix: "/api/v1",
            plural: "secrets",
            kind: "Secret",
            namespaced: true,
            body: || json!({"type": "Opaque", "data": {"password": "czNjcjN0"}}),
            invalid: Some(("bad-data", || json!({"data": {"password": "not base64!"}}))),
        },
        Kind {
            prefix: "/api/v1",
            plural: "services",
            kind: "Service",
            namespaced: true,
            body: || json!({"spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
            invalid: Some(("port-zero", || json!({"spec": {"ports": [{"port": 0}]}}))),
        },
        Kind {
            prefix: "/api/v1",
            plural: "pods",
            kind: "Pod",
            namespaced: true,
            body: || json!({"spec": pod_spec()}),
            invalid: Some(("no-containers", || json!({"spec": {"containers": []}}))),
        },
        Kind {
            prefix: "/api/v1",
            plural: "podtemplates",
            kind: "PodTemplate",
            namespaced: true,
            body: || json!({"template": template("web")}),
            invalid: Some((
                "bad-restart",
                || json!({"template": {"spec": {"restartPolicy": "Sometimes"}}}),
            )),
        },
        Kind {
            prefix: "/api/v1",
            plural: "endpoints",
            kind: "Endpoints",
            namespaced: true,
            body: || json!({"subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"name": "http", "port": 8080}]}]}),
            invalid: Some((
                "bad-ip",
                || json!({"subsets": [{"addresses": [{"ip": "not-an-ip"}], "ports": [{"port": 80}]}]}),
            )),
        },
        Kind {
            prefix: "/api/v1",
            plural: "replicationcontrollers",
            kind: "ReplicationController",
            namespaced: true,
            body: || json!({"spec": {"replicas": 2, "selector": {"app": "web"}, "template": template("web")}}),
            invalid: Some((
                "restart-never",
                || json!({"spec": {"template": {"spec": {"restartPolicy": "Never"}}}}),
            )),
        },
        Kind {
            prefix: "/api/v1",
            plural: "serviceaccounts",
            kind: "ServiceAccount",
            namespaced: true,
            body: || json!({"automountServiceAccountToken": false}),
            invalid: None,
        },
        Kind {
            prefix: "/api/v1",
            plural: "persistentvolumeclaims",
            kind: "PersistentVolumeClaim",
            namespaced: true,
            body: || json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
            invalid: Some(("no-modes", || json!({"spec": {"accessModes": []}}))),
        },
        Kind {
            prefix: "/api/v1",
            plural: "persistentvolumes",
            kind: "PersistentVolume",
            namespaced: false,
            body: || json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/diff"}}}),
            invalid: Some(("no-capacity", || json!({"spec": {"capacity": null}}))),
        },
        Kind {
            prefix: "/api/v1",
            plural: "nodes",
            kind: "Node",
            namespaced: false,
            body: || json!({"spec": {"podCIDR": "10.244.0.0/24"}}),
            invalid: Some(("bad-cidr", || json!({"spec": {"podCIDR": "nonsense"}}))),
        },
        Kind {
            prefix: "/api/v1",
            plural: "events",
            kind: "Event",
            namespaced: true,
            body: || json!({"involvedObject": {"kind": "Pod", "name": "web", "namespace": "{ns}"}, "reason": "Started", "message": "started", "type": "Normal", "source": {"component": "diff"}}),
            invalid: Some(("bad-type", || json!({"type": "Unusual"}))),
        },
        Kind {
            prefix: "/api/v1",
            plural: "limitranges",
            kind: "LimitRange",
            namespaced: true,
            body: || json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"}, "default": {"memory": "256Mi"}}]}}),
            invalid: Some((
                "min-above-max",
                || json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "2"}}]}}),
            )),
        },
        Kind {
            prefix: "/api/v1",
            plural: "resourcequotas",
            kind: "ResourceQuota",
            namespaced: true,
            body: || json!({"spec": {"hard": {"pods": "10", "requests.cpu": "4", "count/configmaps": "5"}}}),
            invalid: Some(("negative", || json!({"spec": {"hard": {"pods": "-1"}}}))),
        },
        Kind {
            prefix: "/apis/apps/v1",
            plural: "deployments",
            kind: "Deployment",
            namespaced: true,
            body: || json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")}}),
            invalid: Some((
                "selector-mismatch",
                || json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}}),
            )),
        },
        Kind {
            prefix: "/apis/apps/v1",
            plural: "replicasets",
            kind: "ReplicaSet",
            namespaced: true,
            body: || json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")}}),
            invalid: Some(("negative-replicas", || json!({"spec": {"replicas": -1}}))),
        },
        Kind {
            prefix: "/apis/apps/v1",
            plural: "statefulsets",
            kind: "StatefulSet",
            namespaced: true,
            body: || json!({"spec": {"serviceName": "web", "replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")}}),
            invalid: Some((
                "bad-policy",
                || json!({"spec": {"podManagementPolicy": "Whenever"}}),
            )),
        },
        Kind {
            prefix: "/apis/apps/v1",
            plural: "controllerrevisions",
            kind: "ControllerRevision",
            namespaced: true,
            body: || json!({"revision": 1, "data": {"spec": {"template": {}}}}),
            invalid: Some(("negative-revision", || json!({"revision": -1}))),
        },
        Kind {
            prefix: "/apis/apps/v1",
            plural: "daemonsets",
            kind: "DaemonSet",
            namespaced: true,
            body: || json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web")}}),
            invalid: Some((
                "bad-strategy",
                || json!({"spec": {"updateStrategy": {"type": "Sometimes"}}}),
            )),
        },
        Kind {
            prefix: "/apis/autoscaling/v2",
            plural: "horizontalpodautoscalers",
            kind: "HorizontalPodAutoscaler",
            namespaced: true,
            body: || json!({"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}], "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
            invalid: Some(("max-zero", || json!({"spec": {"maxReplicas": 0}}))),
        },
        Kind {
            prefix: "/apis/autoscaling/v1",
            plural: "horizontalpodautoscalers",
            kind: "HorizontalPodAutoscaler",
            namespaced: true,
            body: || json!({"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}}),
            invalid: Some((
                "cpu-zero",
                || json!({"spec": {"targetCPUUtilizationPercentage": 0}}),
            )),
        },
        Kind {
            prefix: "/apis/batch/v1",
            plural: "jobs",
            kind: "Job",
            namespaced: true,
            body: || json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "busybox", "command": ["true"]}]}}}}),
            invalid: Some((
                "restart-always",
                || json!({"spec": {"template": {"spec": {"restartPolicy": "Always"}}}}),
            )),
        },
        Kind {
            prefix: "/apis/batch/v1",
            plural: "cronjobs",
            kind: "CronJob",
            namespaced: true,
            body: || json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "work", "image": "busybox"}]}}}}}}),
            invalid: Some((
                "bad-schedule",
                || json!({"spec": {"schedule": "every day"}}),
            )),
        },
        Kind {
            prefix: "/apis/coordination.k8s.io/v1",
            plural: "leases",
            kind: "Lease",
            namespaced: true,
            body: || json!({"spec": {"holderIdentity": "replica-1", "leaseDurationSeconds": 15}}),
            invalid: Some((
                "zero-duration",
                || json!({"spec": {"leaseDurationSeconds": 0}}),
            )),
        },
        Kind {
            prefix: "/apis/discovery.k8s.io/v1",
            plural: "endpointslices",
            kind: "EndpointSlice",
            namespaced: true,
            body: || json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.1.2.3"]}], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
            invalid: Some(("bad-type", || json!({"addressType": "IPv5"}))),
        },
        Kind {
            prefix: "/apis/events.k8s.io/v1",
            plural: "events",
            kind: "Event",
            namespaced: true,
            body: || json!({"eventTime": "2026-01-02T03:04:05.000000Z", "reportingController": "example.com/diff", "reportingInstance": "diff-1", "action": "Start", "reason": "Started", "type": "Normal", "regarding": {"kind": "Pod", "name": "web", "namespace": "{ns}"}, "note": "started"}),
            invalid: Some(("no-time", || json!({"eventTime": null}))),
        },
        Kind {
            prefix: "/apis/networking.k8s.io/v1",
            plural: "ingresses",
            kind: "Ingress",
            namespaced: true,
            body: || json!({"spec": {"rules": [{"host": "example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
            invalid: Some((
                "bad-host",
                || json!({"spec": {"rules": [{"host": "Not A Host"}]}}),
            )),
        },
        Kind {
            prefix: "/apis/networking.k8s.io/v1",
            plural: "networkpolicies",
            kind: "NetworkPolicy",
            namespaced: true,
            body: || json!({"spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]}}),
            invalid: Some((
                "bad-policy-type",
                || json!({"spec": {"policyTypes": ["Sideways"]}}),
            )),
        },
        Kind {
            prefix: "/apis/policy/v1",
            plural: "poddisruptionbudgets",
            kind: "PodDisruptionBudget",
            namespaced: true,
            body: || json!({"spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
            invalid: Some((
                "both-bounds",
                || json!({"spec": {"maxUnavailable": "150%"}}),
            )),
        },
        Kind {
            prefix: "/apis/rbac.authorization.k8s.io/v1",
            plural: "roles",
            kind: "Role",
            namespaced: true,
            body: || json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
            invalid: Some((
                "no-verbs",
                || json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}),
            )),
        },
        Kind {
            prefix: "/apis/rbac.authorization.k8s.io/v1",
            plural: "rolebindings",
            kind: "RoleBinding",
            namespaced: true,
            body: || json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}, "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]}),
            invalid: Some(("bad-ref", || json!({"roleRef": {"kind": "Pod"}}))),
        },
        Kind {
            prefix: "/apis/rbac.authorization.k8s.io/v1",
            plural: "clusterroles",
            kind: "ClusterRole",
            namespaced: false,
            body: || json!({"rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]}),
            invalid: Some((
                "no-verbs",
                || json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}),
            )),
        },
        Kind {
            prefix: "/apis/rbac.authorization.k8s.io/v1",
            plural: "clusterrolebindings",
            kind: "ClusterRoleBinding",
            namespaced: false,
            body: || json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "readers"}]}),
            invalid: Some(("bad-ref", || json!({"roleRef": {"kind": "Role"}}))),
        },
        Kind {
            prefix: "/apis/scheduling.k8s.io/v1",
            plural: "priorityclasses",
            kind: "PriorityClass",
            namespaced: false,
            body: || json!({"value": 1000, "description": "a class for the differential suite"}),
            invalid: Some(("too-high", || json!({"value": 2000000000}))),
        },
        Kind {
            prefix: "/apis/storage.k8s.io/v1",
            plural: "storageclasses",
            kind: "StorageClass",
            namespaced: false,
            body: || json!({"provisioner": "example.com/disk", "parameters": {"type": "fast"}, "reclaimPolicy": "Retain"}),
            invalid: Some(("bad-policy", || json!({"reclaimPolicy": "Recycle-ish"}))),
        },
        Kind {
            prefix: "/apis/storage.k8s.io/v1",
            plural: "csidrivers",
            kind: "CSIDriver",
            namespaced: false,
            body: || json!({"spec": {"attachRequired": false, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"]}}),
            invalid: Some((
                "bad-mode",
                || json!({"spec": {"volumeLifecycleModes": ["Sometimes"]}}),
            )),
        },
        Kind {
            prefix: "/apis/storage.k8s.io/v1",
            plural: "csinodes",
            kind: "CSINode",
            namespaced: false,
            body: || json!({"spec": {"drivers": [{"name": "disk.example.com", "nodeID": "node-1", "topologyKeys": ["topology.example.com/zone"]}]}}),
            invalid: Some((
                "no-node-id",
                || json!({"spec": {"drivers": [{"name": "disk.example.com"}]}}),
            )),
        },
        Kind {
            prefix: "/apis/storage.k8s.io/v1",
            plural: "volumeattachments",
            kind: "VolumeAttachment",
            namespaced: false,
            body: || json!({"spec": {"attacher": "disk.example.com", "nodeName": "node-1", "source": {"persistentVolumeName": "pv-1"}}}),
            invalid: Some((
                "no-source",
                || json!({"spec": {"source": {"persistentVolumeName": null}}}),
            )),
        },
        Kind {
            prefix: "/apis/storage.k8s.io/v1",
            plural: "csistoragecapacities",
            kind: "CSIStorageCapacity",
            namespaced: true,
            body: || json!({"storageClassName": "fast", "capacity": "10Gi", "nodeTopology": {"matchLabels": {"topology.example.com/zone": "a"}}}),
            invalid: Some(("no-class", || json!({"storageClassName": ""}))),
        },
        Kind {
            prefix: "/apis/storage.k8s.io/v1",
            plural: "volumeattributesclasses",
            kind: "VolumeAttributesClass",
            namespaced: false,
            body: || json!({"driverName": "example.com/disk", "parameters": {"iops": "3000"}}),
            invalid: Some(("no-driver", || json!({"driverName": ""}))),
        },
        Kind {
            prefix: "/apis/node.k8s.io/v1",
            plural: "runtimeclasses",
            kind: "RuntimeClass",
            namespaced: false,
            body: || json!({"handler": "runsc", "overhead": {"podFixed": {"cpu": "250m"}}}),
            invalid: Some(("bad-handler", || json!({"handler": "Not_A_Label"}))),
        },
        Kind {
            prefix: "/apis/networking.k8s.io/v1",
            plural: "ingressclasses",
            kind: "IngressClass",
            namespaced: false,
            body: || json!({"spec": {"controller": "example.com/ingress-controller", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}}),
            invalid: Some(("no-controller", || json!({"spec": {"controller": ""}}))),
        },
        Kind {
            prefix: "/apis/networking.k8s.io/v1",
            plural: "ipaddresses",
            kind: "IPAddress",
            namespaced: false,
            body: || json!({"spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "web"}}}),
            invalid: Some(("no-parent", || json!({"spec": {"parentRef": null}}))),
        },
        Kind {
            prefix: "/apis/networking.k8s.io/v1",
            plural: "servicecidrs",
            kind: "ServiceCIDR",
            namespaced: false,
            body: || json!({"spec": {"cidrs": ["10.250.0.0/24"]}}),
            invalid: Some((
                "not-canonical",
                || json!({"spec": {"cidrs": ["10.250.0.7/24"]}}),
            )),
        },
        Kind {
            prefix: "/apis/resource.k8s.io/v1",
            plural: "deviceclasses",
            kind: "DeviceClass",
            namespaced: false,
            body: || json!({"spec": {"selectors": [{"cel": {"expression": "device.driver == \"gpu.example.com\""}}]}}),
            invalid: None,
        },
        Kind {
            prefix: "/apis/resource.k8s.io/v1",
            plural: "resourceclaims",
            kind: "ResourceClaim",
            namespaced: true,
            body: || json!({"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}]}}}),
            invalid: Some((
                "no-class",
                || json!({"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": ""}}]}}}),
            )),
        },
        Kind {
            prefix: "/apis/resource.k8s.io/v1",
            plural: "resourceclaimtemplates",
            kind: "ResourceClaimTemplate",
            namespaced: true,
            body: || json!({"spec": {"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}]}}}}),
            invalid: Some((
                "no-class",
                || json!({"spec": {"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": ""}}]}}}}),
            )),
        },
        Kind {
            prefix: "/apis/resource.k8s.io/v1",
            plural: "resourceslices",
            kind: "ResourceSlice",
            namespaced: false,
            body: || json!({"spec": {"driver": "gpu.example.com", "nodeName": "node-1", "pool": {"name": "node-1", "generation": 1, "resourceSliceCount": 1}, "devices": [{"name": "gpu-0"}]}}),
            invalid: Some(("no-placement", || json!({"spec": {"nodeName": null}}))),
        },
        Kind {
            prefix: "/apis/admissionregistration.k8s.io/v1",
            plural: "validatingwebhookconfigurations",
            kind: "ValidatingWebhookConfiguration",
            namespaced: false,
            body: || json!({"webhooks": [{"name": "check.example.com", "clientConfig": {"service": {"namespace": "default", "name": "checker", "path": "/validate"}}, "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}], "sideEffects": "None", "admissionReviewVersions": ["v1"]}]}),
            invalid: Some((
                "short-name",
                || json!({"webhooks": [{"name": "check", "clientConfig": {"url": "http://example.com"}, "sideEffects": "Some", "admissionReviewVersions": ["v1"]}]}),
            )),
        },
        Kind {
            prefix: "/apis/admissionregistration.k8s.io/v1",
            plural: "mutatingwebhookconfigurations",
            kind: "MutatingWebhookConfiguration",
            namespaced: false,
            body: || json!({"webhooks": [{"name": "inject.example.com", "clientConfig": {"url": "https://inject.example.com/mutate"}, "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"], "scope": "Namespaced"}], "sideEffects": "NoneOnDryRun", "admissionReviewVersions": ["v1", "v1beta1"], "timeoutSeconds": 5}]}),
            invalid: Some((
                "no-client",
                || json!({"webhooks": [{"name": "inject.example.com", "clientConfig": {"url": null}, "sideEffects": "None", "admissionReviewVersions": []}]}),
            )),
        },
        Kind {
            prefix: "/apis/admissionregistration.k8s.io/v1",
            plural: "validatingadmissionpolicies",
            kind: "ValidatingAdmissionPolicy",
            namespaced: false,
            body: || json!({"spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]}, "validations": [{"expression": "object.spec.replicas <= 5"}]}}),
            invalid: Some(("no-validations", || json!({"spec": {"validations": []}}))),
        },
        Kind {
            prefix: "/apis/admissionregistration.k8s.io/v1",
            plural: "validatingadmissionpolicybindings",
            kind: "ValidatingAdmissionPolicyBinding",
            namespaced: false,
            body: || json!({"spec": {"policyName": "replica-limit", "validationActions": ["Deny"], "matchResources": {"namespaceSelector": {"matchLabels": {"env": "test"}}}}}),
            invalid: Some((
                "deny-and-warn",
                || json!({"spec": {"validationActions": ["Deny", "Warn"]}}),
            )),
        },
        Kind {
            prefix: "/apis/flowcontrol.apiserver.k8s.io/v1",
            plural: "flowschemas",
            kind: "FlowSchema",
            namespaced: false,
            body: || json!({"spec": {"priorityLevelConfiguration": {"name": "workload-low"}, "distinguisherMethod": {"type": "ByUser"}, "rules": [{"subjects": [{"kind": "Group", "group": {"name": "team-a"}}], "resourceRules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"], "namespaces": ["*"]}]}]}}),
            invalid: Some((
                "bad-precedence",
                || json!({"spec": {"matchingPrecedence": 20000}}),
            )),
        },
        Kind {
            prefix: "/apis/flowcontrol.apiserver.k8s.io/v1",
            plural: "prioritylevelconfigurations",
            kind: "PriorityLevelConfiguration",
            namespaced: false,
            body: || json!({"spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 10, "limitResponse": {"type": "Queue", "queuing": {"queues": 16}}}}}),
            invalid: Some(("no-type", || json!({"spec": {"type": null}}))),
        },
        Kind {
            prefix: "/apis/certificates.k8s.io/v1",
            plural: "certificatesigningrequests",
            kind: "CertificateSigningRequest",
            namespaced: false,
            body: || json!({"spec": {"request": DIFF_CSR, "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"], "expirationSeconds": 3600}}),
            invalid: Some((
                "not-a-request",
                || json!({"spec": {"request": "bm90IGEgcmVxdWVzdA==", "usages": ["sightseeing"]}}),
            )),
        },
    ]
}

/// One object's life, for every kind: one scenario per kind.
pub fn lifecycles() -> Vec<Scenario> {
    kinds().iter().map(lifecycle).collect()
}

fn lifecycle(kind: &Kind) -> Scenario {
    let group = kind
        .prefix
        .trim_start_matches("/api/")
        .trim_start_matches("/apis/")
        .split('/')
        .next()
        .unwrap_or_default();
    let version = kind.api_version().rsplit('/').next().unwrap_or_default();
    // A kind served at several versions has a scenario per version, named
    // as kubectl names a resource at a version (`hpa.v2.autoscaling`).
    let label = if group.starts_with('v') {
        kind.plural.to_owned()
    } else if version == "v1" {
        format!("{}.{}", kind.plural, group)
    } else {
        format!("{}.{version}.{}", kind.plural, group)
    };
    let case = |what: &str| format!("{label}/{what}");
    // Cluster-scoped names are shared by all scenarios: keep them apart.
    // An IPAddress is named by its address.
    let name = match kind.kind {
        "IPAddress" => "10.250.0.9".to_owned(),
        other => format!("diff-{}", other.to_ascii_lowercase()),
    };
    let collection = kind.collection();
    let item = format!("{collection}/{name}");
    let labels = json!({"app": "diff"});
    let object = kind.object(&name, labels.clone());
    let selector = "labelSelector=app%3Ddiff";

    let mut steps = vec![
        Step::post(case("create"), &collection, &object),
        Step::post(case("create-again"), &collection, &object),
        Step::get(case("get"), &item),
        Step::get(case("get-table"), &item).accept(TABLE),
        Step::get(case("get-metadata"), &item).accept(METADATA),
        Step::get(case("list-selected"), format!("{collection}?{selector}")),
        Step::get(case("list-table"), format!("{collection}?{selector}")).accept(TABLE),
        Step::get(case("list-metadata"), format!("{collection}?{selector}")).accept(METADATA_LIST),
        Step::get(
            case("list-field-selected"),
            format!("{collection}?fieldSelector=metadata.name%3D{name}"),
        ),
        Step::patch(
            case("patch-merge"),
            &item,
            MERGE,
            r#"{"metadata":{"labels":{"patched":"merge"}}}"#,
        ),
        Step::patch(
            case("patch-strategic"),
            &item,
            STRATEGIC,
            r#"{"metadata":{"labels":{"patched":"strategic"}}}"#,
        ),
        Step::patch(
            case("patch-json"),
            &item,
            JSON_PATCH,
            r#"[{"op":"add","path":"/metadata/annotations","value":{"note":"json-patch"}}]"#,
        ),
        Step::patch(
            case("patch-json-test-fails"),
            &item,
            JSON_PATCH,
            r#"[{"op":"test","path":"/metadata/name","value":"someone-else"}]"#,
        ),
        Step::get(case("get-before-update"), &item).setup(),
        Step::put(
            case("update"),
            &item,
            kind.object(&name, json!({"app": "diff", "updated": "yes"}))
                .replacen(
                    "\"metadata\":{",
                    "\"metadata\":{\"resourceVersion\":\"{rv}\",",
                    1,
                ),
        ),
        Step::put(
            case("update-stale"),
            &item,
            kind.object(&name, labels.clone()).replacen(
                "\"metadata\":{",
                "\"metadata\":{\"resourceVersion\":\"1\",",
                1,
            ),
        ),
        Step::patch(
            case("apply-create"),
            format!("{item}-applied?fieldManager=diff-one"),
            APPLY,
            kind.object(&format!("{name}-applied"), json!({"owner": "one"})),
        ),
        Step::patch(
            case("apply-conflict"),
            format!("{item}-applied?fieldManager=diff-two"),
            APPLY,
            kind.object(&format!("{name}-applied"), json!({"owner": "two"})),
        ),
        Step::patch(
            case("apply-force"),
            format!("{item}-applied?fieldManager=diff-two&force=true"),
            APPLY,
            kind.object(&format!("{name}-applied"), json!({"owner": "two"})),
        ),
        Step::post(
            case("create-dry-run"),
            format!("{collection}?dryRun=All"),
            kind.object(&format!("{name}-dry"), labels.clone()),
        ),
        Step::get(case("get-dry-run-created"), format!("{item}-dry")),
        Step::post(
            case("create-generated-name"),
            &collection,
            kind.object("", labels.clone()).replacen(
                "\"name\":\"\"",
                &format!("\"generateName\":\"{name}-\""),
                1,
            ),
        ),
        Step::post(
            case("create-invalid-name"),
            &collection,
            kind.object("Not_A_Name", labels.clone()),
        ),
        Step::delete(case("delete-dry-run"), format!("{item}?dryRun=All")),
        Step::delete(case("delete"), &item),
        Step::get(case("get-deleted"), &item).until(404),
        Step::delete(case("delete-missing"), &item),
    ];
    if let Some((what, invalid)) = kind.invalid {
        let mut object: Value =
            serde_json::from_str(&kind.object(&format!("{name}-bad"), labels)).unwrap_or_default();
        merge(&mut object, invalid());
        steps.push(Step::post(
            case(&format!("create-invalid-{what}")),
            &collection,
            object.to_string(),
        ));
    }
    // The objects left behind (applied, generated) go with the namespace;
    // cluster-scoped ones are removed here so later runs start clean.
    if !kind.namespaced {
        steps.push(Step::delete(case("delete-applied"), format!("{item}-applied")).status_only());
        steps.push(
            Step::delete(
                case("delete-collection"),
                format!("{collection}?{selector}"),
            )
            .status_only(),
        );
    }
    Scenario::new(label.replace('.', "-"), steps)
}
