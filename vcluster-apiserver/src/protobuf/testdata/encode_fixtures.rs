//! Writes protobuf fixtures for vcluster-apiserver's protobuf decoder tests.
//!
//! Each object is built with k8s-pb 0.9 (prost 0.14) types, encoded, and
//! wrapped like client-go does: `k8s\0` + runtime.Unknown{typeMeta, raw}.
//! Optional scalars set to `Some(zero)` mimic Go's marshaller, which writes
//! every non-pointer field (the decoder must drop the `omitempty` ones and
//! keep pointer ones such as `replicas: 0`).
//!
//! Run from a scratch crate that depends on k8s-pb = "0.9" and prost = "0.14":
//!     cargo run --example encode_fixtures -- <output dir>
use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::coordination::v1 as coord;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn envelope(api_version: &str, kind: &str, msg: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(msg.encode_to_vec()),
        content_encoding: s(""),
        content_type: s(""),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// ObjectMeta the way Go writes it: every value field present.
fn go_meta(name: &str, namespace: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

fn main() {
    let dir = std::env::args().nth(1).expect("output directory");
    let write = |name: &str, bytes: Vec<u8>| {
        std::fs::write(format!("{dir}/{name}.pb"), bytes).expect("write fixture");
    };

    // What `kubectl create namespace demo` sends, plus labels.
    let mut ns_meta = go_meta("demo", "");
    ns_meta.labels = map(&[("team", "a"), ("env", "dev")]);
    let ns = core::Namespace {
        metadata: Some(ns_meta),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus {
            phase: s(""),
            ..Default::default()
        }),
    };
    write("namespace_labels", envelope("v1", "Namespace", &ns));

    let cm = core::ConfigMap {
        metadata: Some(go_meta("cfg", "default")),
        immutable: Some(false),
        data: map(&[("a", "1"), ("empty", "")]),
        binary_data: [("bin".to_string(), vec![0u8, 1, 2, 255])]
            .into_iter()
            .collect(),
    };
    write("configmap", envelope("v1", "ConfigMap", &cm));

    let secret = core::Secret {
        metadata: Some(go_meta("s", "default")),
        immutable: None,
        data: [
            ("k".to_string(), b"v".to_vec()),
            ("empty".to_string(), Vec::new()),
        ]
        .into_iter()
        .collect(),
        string_data: BTreeMap::new(),
        r#type: s("Opaque"),
    };
    write("secret", envelope("v1", "Secret", &secret));

    let mut tmpl_meta = go_meta("", "");
    tmpl_meta.labels = map(&[("app", "web")]);
    tmpl_meta.creation_timestamp = Some(meta::Time {
        seconds: Some(1_704_164_645),
        nanos: Some(0),
    });
    let container = core::Container {
        name: s("web"),
        image: s("nginx:1.25"),
        ports: vec![core::ContainerPort {
            name: s("http"),
            host_port: Some(0),
            container_port: Some(80),
            protocol: s("TCP"),
            host_ip: s(""),
        }],
        env: vec![core::EnvVar {
            name: s("A"),
            value: s("1"),
            value_from: None,
        }],
        resources: Some(core::ResourceRequirements {
            limits: [
                ("cpu".to_string(), quantity("500m")),
                ("memory".to_string(), quantity("128Mi")),
            ]
            .into_iter()
            .collect(),
            requests: [("cpu".to_string(), quantity("250m"))]
                .into_iter()
                .collect(),
            claims: Vec::new(),
        }),
        termination_message_path: s("/dev/termination-log"),
        image_pull_policy: s("IfNotPresent"),
        working_dir: s(""),
        stdin: Some(false),
        tty: Some(false),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: Some(go_meta("web", "default")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: map(&[("app", "web")]),
                match_expressions: Vec::new(),
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(tmpl_meta),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    restart_policy: s("Always"),
                    dns_policy: s(""),
                    service_account_name: s(""),
                    host_network: Some(false),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(0),
                        str_val: s(""),
                    }),
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("25%"),
                    }),
                }),
            }),
            min_ready_seconds: Some(0),
            revision_history_limit: Some(10),
            paused: Some(false),
            progress_deadline_seconds: Some(600),
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    write("deployment", envelope("apps/v1", "Deployment", &deployment));

    let service = core::Service {
        metadata: Some(go_meta("svc", "default")),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: s("http"),
                protocol: s("TCP"),
                app_protocol: None,
                port: Some(80),
                target_port: Some(IntOrString {
                    r#type: Some(0),
                    int_val: Some(8080),
                    str_val: s(""),
                }),
                node_port: Some(0),
            }],
            selector: map(&[("app", "web")]),
            cluster_ip: s("10.0.0.10"),
            cluster_ips: vec!["10.0.0.10".to_string()],
            r#type: s("ClusterIP"),
            session_affinity: s("None"),
            ip_families: vec!["IPv4".to_string()],
            external_name: s(""),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus::default()),
    };
    write("service", envelope("v1", "Service", &service));

    let job = batch::Job {
        metadata: Some(go_meta("j", "default")),
        spec: Some(batch::JobSpec {
            parallelism: Some(1),
            completions: Some(1),
            backoff_limit: Some(0),
            template: Some(core::PodTemplateSpec {
                metadata: Some(go_meta("", "")),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: s("c"),
                        image: s("busybox"),
                        command: vec!["sh".into(), "-c".into(), "echo hi".into()],
                        ..Default::default()
                    }],
                    restart_policy: s("Never"),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    write("job", envelope("batch/v1", "Job", &job));

    let delete = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("3f2a1c9e-0000-4000-8000-000000000001"),
            resource_version: s("42"),
        }),
        orphan_dependents: None,
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".to_string()],
        ignore_store_read_error_with_cluster_breaking_potential: None,
    };
    // Typed clients label DeleteOptions with their own group version.
    write(
        "deleteoptions_apps",
        envelope("apps/v1", "DeleteOptions", &delete),
    );
    write(
        "deleteoptions_meta",
        envelope("meta.k8s.io/v1", "DeleteOptions", &delete),
    );

    let ssar = authz::SelfSubjectAccessReview {
        metadata: Some(go_meta("", "")),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("default"),
                verb: s("create"),
                group: s("apps"),
                version: s(""),
                resource: s("deployments"),
                subresource: s(""),
                name: s(""),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            denied: Some(false),
            reason: s(""),
            evaluation_error: s(""),
        }),
    };
    write(
        "selfsubjectaccessreview",
        envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", &ssar),
    );

    let sar = authz::SubjectAccessReview {
        metadata: Some(meta::ObjectMeta::default()),
        spec: Some(authz::SubjectAccessReviewSpec {
            non_resource_attributes: Some(authz::NonResourceAttributes {
                path: s("/healthz"),
                verb: s("get"),
            }),
            user: s("alice"),
            groups: vec!["dev".into(), "system:authenticated".into()],
            extra: [(
                "scopes".to_string(),
                authz::ExtraValue {
                    items: vec!["read".into(), "write".into()],
                },
            )]
            .into_iter()
            .collect(),
            uid: s("u-1"),
            ..Default::default()
        }),
        status: None,
    };
    write(
        "subjectaccessreview",
        envelope("authorization.k8s.io/v1", "SubjectAccessReview", &sar),
    );

    let lease = coord::Lease {
        metadata: Some(go_meta("leader", "kube-system")),
        spec: Some(coord::LeaseSpec {
            holder_identity: s("node-a"),
            lease_duration_seconds: Some(15),
            acquire_time: Some(meta::MicroTime {
                seconds: Some(1_704_164_645),
                nanos: Some(123_456_789),
            }),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_704_164_650),
                nanos: Some(0),
            }),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    write("lease", envelope("coordination.k8s.io/v1", "Lease", &lease));

    let mut rev_meta = go_meta("web-5d8f", "default");
    rev_meta.managed_fields = vec![meta::ManagedFieldsEntry {
        manager: s("kube-controller-manager"),
        operation: s("Update"),
        api_version: s("apps/v1"),
        time: Some(meta::Time {
            seconds: Some(1_704_164_645),
            nanos: Some(0),
        }),
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta::FieldsV1 {
            raw: Some(br#"{"f:data":{},"f:revision":{}}"#.to_vec()),
        }),
        subresource: s(""),
    }];
    let revision = apps::ControllerRevision {
        metadata: Some(rev_meta),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"template":{"metadata":{"labels":{"app":"web"}}}}}"#.to_vec()),
        }),
        revision: Some(3),
    };
    write(
        "controllerrevision",
        envelope("apps/v1", "ControllerRevision", &revision),
    );

    // A RawExtension carrying a nested protobuf object.
    let event = meta::WatchEvent {
        r#type: s("ADDED"),
        object: Some(RawExtension {
            raw: Some(envelope("v1", "ConfigMap", &cm)),
        }),
    };
    write(
        "watchevent_nested",
        envelope("meta.k8s.io/v1", "WatchEvent", &event),
    );

    let int_prop = apiext::JsonSchemaProps {
        r#type: s("integer"),
        minimum: Some(1.0),
        maximum: Some(10.5),
        default: Some(apiext::Json {
            raw: Some(b"3".to_vec()),
        }),
        ..Default::default()
    };
    let string_list = apiext::JsonSchemaProps {
        r#type: s("array"),
        items: Some(Box::new(apiext::JsonSchemaPropsOrArray {
            schema: Some(Box::new(apiext::JsonSchemaProps {
                r#type: s("string"),
                ..Default::default()
            })),
            j_son_schemas: Vec::new(),
        })),
        ..Default::default()
    };
    let open_map = apiext::JsonSchemaProps {
        r#type: s("object"),
        additional_properties: Some(Box::new(apiext::JsonSchemaPropsOrBool {
            allows: Some(true),
            schema: None,
        })),
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..Default::default()
    };
    let crd = apiext::CustomResourceDefinition {
        metadata: Some(go_meta("widgets.example.com", "")),
        spec: Some(apiext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(apiext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                singular: s("widget"),
                kind: s("Widget"),
                list_kind: s("WidgetList"),
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![apiext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(apiext::CustomResourceValidation {
                    open_apiv3_schema: Some(apiext::JsonSchemaProps {
                        r#type: s("object"),
                        required: vec!["spec".into()],
                        properties: [
                            ("size".to_string(), int_prop),
                            ("tags".to_string(), string_list),
                            ("extra".to_string(), open_map),
                        ]
                        .into_iter()
                        .collect(),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    write(
        "crd",
        envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd),
    );
}
