//! The built-in kinds we serve, each with an ordinary object of upstream's
//! documentation and an invalid one, and the life of one object of each
//! kind as every client lives it: create, conflicts, reads in every form,
//! the three patch types and apply, updates, dry runs, deletion.

use serde_json::{json, Value};

use crate::case::{
    Scenario, Step, APPLY, JSON_PATCH, MERGE, METADATA, METADATA_LIST, STRATEGIC, TABLE,
};

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
            prefix: "/apis/storage.k8s.io/v1",
            plural: "storageclasses",
            kind: "StorageClass",
            namespaced: false,
            body: || json!({"provisioner": "example.com/disk", "parameters": {"type": "fast"}, "reclaimPolicy": "Retain"}),
            invalid: Some(("bad-policy", || json!({"reclaimPolicy": "Recycle-ish"}))),
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
    let name = format!("diff-{}", kind.kind.to_ascii_lowercase());
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
