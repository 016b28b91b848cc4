//! The host objects of one virtual cluster's control plane, generated from
//! code (no templates): what `vcluster create` applies and `vcluster
//! delete` removes. Names and labels are vCluster's, so tooling that knows
//! vCluster finds ours.
//!
//! Pure: [`ControlPlane::objects`] decides everything; [`crate::host`]
//! writes it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, SeccompProfile, Secret, SecretVolumeSource, SecurityContext,
    Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;
use vcluster_syncer::permissions::HostRule;

/// The port the API server listens on inside the pod (vCluster's).
pub const API_PORT: u16 = 8443;
/// The port of the Service in front of it.
pub const SERVICE_PORT: u16 = 443;
/// The DNS server's port inside the pod (unprivileged).
pub const DNS_PORT: u16 = 1053;
/// Where the config secret is mounted.
pub const CONFIG_DIR: &str = "/etc/vcluster";
/// The config file's key in the config secret.
pub const CONFIG_KEY: &str = "config.yaml";
/// Where the data volume is mounted.
pub const DATA_DIR: &str = "/data";
/// The user the control plane runs as (not root; the image's user).
pub const RUN_AS_USER: i64 = 12345;
/// The label every control-plane object carries (`app=vcluster`).
pub const APP_LABEL: (&str, &str) = ("app", "vcluster");
/// The label naming the virtual cluster (`release=<name>`, as vCluster's
/// Helm release).
pub const RELEASE_LABEL: &str = "release";
/// The StatefulSet annotation `vcluster pause` sets.
pub const PAUSED_ANNOTATION: &str = "vcluster.loft.sh/paused";
/// The replicas to restore on `vcluster resume`.
pub const PAUSED_REPLICAS_ANNOTATION: &str = "vcluster.loft.sh/paused-replicas";

/// Everything that shapes one control plane's host objects.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    /// The virtual cluster's name.
    pub name: String,
    /// The host namespace.
    pub namespace: String,
    /// The control plane image.
    pub image: String,
    /// StatefulSet replicas (more than one needs an external etcd).
    pub replicas: i32,
    /// The data volume per replica (`None`: no claim, an emptyDir).
    pub persistence: Option<Persistence>,
    /// The Service type (`ClusterIP`, `NodePort`, `LoadBalancer`).
    pub service_type: String,
    /// The `vcluster.yaml` the control plane reads (stored in a Secret: it
    /// may hold etcd credentials' paths and policies).
    pub config_yaml: String,
    /// What the syncer needs on the host ([`vcluster_syncer::permissions`]).
    pub host_rules: Vec<HostRule>,
    /// Container resources (`requests`/`limits`), as vcluster.yaml gives them.
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
    /// The kubeconfig Secret the control plane writes
    /// (`exportKubeConfig.secret.name`, default `vc-<name>`).
    pub kubeconfig_secret: String,
}

/// The data volume claim of each replica.
#[derive(Clone, Debug)]
pub struct Persistence {
    /// Its size (`5Gi`).
    pub size: String,
    /// Its storage class (`None`: the host's default).
    pub storage_class: Option<String>,
}

/// One object to apply, typed.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum HostObject {
    ServiceAccount(ServiceAccount),
    Role(Role),
    RoleBinding(RoleBinding),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    Secret(Secret),
    Service(Box<Service>),
    StatefulSet(Box<StatefulSet>),
}

impl HostObject {
    /// `kind/name`, for progress lines.
    pub fn describe(&self) -> String {
        let (kind, meta) = match self {
            HostObject::ServiceAccount(o) => ("serviceaccount", &o.metadata),
            HostObject::Role(o) => ("role", &o.metadata),
            HostObject::RoleBinding(o) => ("rolebinding", &o.metadata),
            HostObject::ClusterRole(o) => ("clusterrole", &o.metadata),
            HostObject::ClusterRoleBinding(o) => ("clusterrolebinding", &o.metadata),
            HostObject::Secret(o) => ("secret", &o.metadata),
            HostObject::Service(o) => ("service", &o.metadata),
            HostObject::StatefulSet(o) => ("statefulset", &o.metadata),
        };
        format!("{kind}/{}", meta.name.as_deref().unwrap_or_default())
    }
}

/// The names of a control plane's objects.
#[derive(Clone, Debug)]
pub struct Names {
    /// StatefulSet and Service: the virtual cluster's name.
    pub workload: String,
    /// The headless Service of the StatefulSet.
    pub headless: String,
    /// ServiceAccount, Role and RoleBinding: `vc-<name>`.
    pub account: String,
    /// ClusterRole and ClusterRoleBinding: `vc-<name>-v-<namespace>`
    /// (cluster-wide, so the namespace is in the name).
    pub cluster_role: String,
    /// The kubeconfig Secret the control plane writes: `vc-<name>`.
    pub kubeconfig_secret: String,
    /// The config Secret: `vc-config-<name>`.
    pub config_secret: String,
    /// The credentials every replica shares (CA, signing keys), which the
    /// first control plane to start publishes: `<name>-certs`.
    pub certs_secret: String,
}

impl Names {
    /// The names for virtual cluster `name` in host namespace `namespace`.
    pub fn new(name: &str, namespace: &str) -> Self {
        Self {
            workload: name.to_owned(),
            headless: format!("{name}-headless"),
            account: format!("vc-{name}"),
            cluster_role: format!("vc-{name}-v-{namespace}"),
            kubeconfig_secret: format!("vc-{name}"),
            config_secret: format!("vc-config-{name}"),
            certs_secret: format!("{name}-certs"),
        }
    }

    /// The data claim of replica `ordinal` (the StatefulSet's naming).
    pub fn data_claim(&self, ordinal: i32) -> String {
        format!("data-{}-{ordinal}", self.workload)
    }
}

/// The labels on every object of virtual cluster `name`.
pub fn labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (APP_LABEL.0.to_owned(), APP_LABEL.1.to_owned()),
        (RELEASE_LABEL.to_owned(), name.to_owned()),
    ])
}

/// The label selector of virtual cluster `name`'s objects.
pub fn selector(name: &str) -> String {
    format!("{}={},{RELEASE_LABEL}={name}", APP_LABEL.0, APP_LABEL.1)
}

impl ControlPlane {
    /// The names of this control plane's objects.
    pub fn names(&self) -> Names {
        Names::new(&self.name, &self.namespace)
    }

    fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels(&self.name)),
            ..Default::default()
        }
    }

    /// Every object, in the order to apply them (identity and rights
    /// before the workload that uses them).
    pub fn objects(&self) -> Vec<HostObject> {
        let names = self.names();
        let mut objects = vec![
            HostObject::ServiceAccount(ServiceAccount {
                metadata: self.meta(&names.account),
                // The control plane authenticates to the host with its own
                // projected token; tenants never get it.
                automount_service_account_token: Some(true),
                ..Default::default()
            }),
            HostObject::Role(Role {
                metadata: self.meta(&names.account),
                rules: Some(self.namespaced_rules()),
            }),
            HostObject::RoleBinding(RoleBinding {
                metadata: self.meta(&names.account),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: names.account.clone(),
                },
                subjects: Some(vec![self.subject()]),
            }),
        ];
        let cluster_rules = rules_of(self.host_rules.iter().filter(|r| r.cluster_scoped));
        if !cluster_rules.is_empty() {
            let mut meta = self.meta(&names.cluster_role);
            meta.namespace = None;
            objects.push(HostObject::ClusterRole(ClusterRole {
                metadata: meta.clone(),
                rules: Some(cluster_rules),
                ..Default::default()
            }));
            objects.push(HostObject::ClusterRoleBinding(ClusterRoleBinding {
                metadata: meta,
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: names.cluster_role.clone(),
                },
                subjects: Some(vec![self.subject()]),
            }));
        }
        objects.push(HostObject::Secret(Secret {
            metadata: self.meta(&names.config_secret),
            data: Some(BTreeMap::from([(
                CONFIG_KEY.to_owned(),
                ByteString(self.config_yaml.clone().into_bytes()),
            )])),
            type_: Some("Opaque".into()),
            ..Default::default()
        }));
        objects.push(HostObject::Service(Box::new(self.service())));
        objects.push(HostObject::Service(Box::new(self.headless_service())));
        objects.push(HostObject::StatefulSet(Box::new(self.stateful_set())));
        objects
    }

    fn subject(&self) -> Subject {
        Subject {
            kind: "ServiceAccount".into(),
            name: self.names().account,
            namespace: Some(self.namespace.clone()),
            ..Default::default()
        }
    }

    /// The Role's rules: the syncer's namespaced needs, plus the control
    /// plane's own (its kubeconfig Secret and its Service's address).
    fn namespaced_rules(&self) -> Vec<PolicyRule> {
        let mut rules = rules_of(self.host_rules.iter().filter(|r| !r.cluster_scoped));
        let names = self.names();
        // Its kubeconfig and shared credentials secrets: create can't be
        // limited by name.
        rules.push(PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: vec!["create".into()],
            ..Default::default()
        });
        rules.push(PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            resource_names: Some(vec![
                self.kubeconfig_secret.clone(),
                names.certs_secret.clone(),
            ]),
            verbs: vec!["get".into(), "update".into(), "patch".into()],
            ..Default::default()
        });
        rules.push(PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["services".into()]),
            resource_names: Some(vec![names.workload.clone()]),
            verbs: vec!["get".into()],
            ..Default::default()
        });
        rules
    }

    fn service(&self) -> Service {
        let mut ports = vec![ServicePort {
            name: Some("https".into()),
            port: SERVICE_PORT.into(),
            target_port: Some(IntOrString::Int(API_PORT.into())),
            protocol: Some("TCP".into()),
            ..Default::default()
        }];
        for protocol in ["UDP", "TCP"] {
            ports.push(ServicePort {
                name: Some(format!("dns-{}", protocol.to_lowercase())),
                port: 53,
                target_port: Some(IntOrString::Int(DNS_PORT.into())),
                protocol: Some(protocol.into()),
                ..Default::default()
            });
        }
        Service {
            metadata: self.meta(&self.name),
            spec: Some(ServiceSpec {
                type_: Some(self.service_type.clone()),
                selector: Some(labels(&self.name)),
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn headless_service(&self) -> Service {
        let names = self.names();
        Service {
            metadata: self.meta(&names.headless),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                selector: Some(labels(&self.name)),
                publish_not_ready_addresses: Some(true),
                ports: Some(vec![ServicePort {
                    name: Some("https".into()),
                    port: API_PORT.into(),
                    target_port: Some(IntOrString::Int(API_PORT.into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn stateful_set(&self) -> StatefulSet {
        let names = self.names();
        let field_env = |name: &str, path: &str| EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: path.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let probe = |path: &str, failures: i32| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(API_PORT.into()),
                scheme: Some("HTTPS".into()),
                ..Default::default()
            }),
            period_seconds: Some(10),
            failure_threshold: Some(failures),
            ..Default::default()
        };
        let port = |name: &str, number: u16, protocol: &str| ContainerPort {
            name: Some(name.into()),
            container_port: number.into(),
            protocol: Some(protocol.into()),
            ..Default::default()
        };
        let mut volumes = vec![Volume {
            name: "config".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(names.config_secret.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }];
        if self.persistence.is_none() {
            volumes.push(Volume {
                name: "data".into(),
                empty_dir: Some(Default::default()),
                ..Default::default()
            });
        }
        let container = Container {
            name: "syncer".into(),
            image: Some(self.image.clone()),
            args: Some(vec![
                "run".into(),
                "--name".into(),
                self.name.clone(),
                "--config".into(),
                format!("{CONFIG_DIR}/{CONFIG_KEY}"),
                "--data-dir".into(),
                DATA_DIR.into(),
            ]),
            env: Some(vec![
                field_env("POD_NAME", "metadata.name"),
                field_env("POD_NAMESPACE", "metadata.namespace"),
                field_env("POD_IP", "status.podIP"),
            ]),
            ports: Some(vec![
                port("https", API_PORT, "TCP"),
                port("dns-udp", DNS_PORT, "UDP"),
                port("dns-tcp", DNS_PORT, "TCP"),
            ]),
            readiness_probe: Some(probe("/readyz", 3)),
            liveness_probe: Some(Probe {
                initial_delay_seconds: Some(60),
                ..probe("/livez", 10)
            }),
            resources: self.resources.clone(),
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "data".into(),
                    mount_path: DATA_DIR.into(),
                    ..Default::default()
                },
                VolumeMount {
                    name: "config".into(),
                    mount_path: CONFIG_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                },
            ]),
            // Pod Security Standards "restricted".
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Default::default()
                }),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                run_as_user: Some(RUN_AS_USER),
                run_as_group: Some(RUN_AS_USER),
                ..Default::default()
            }),
            ..Default::default()
        };
        let claims = self.persistence.as_ref().map(|persistence| {
            vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".into()),
                    labels: Some(labels(&self.name)),
                    ..Default::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    storage_class_name: persistence.storage_class.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_owned(),
                            Quantity(persistence.size.clone()),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        });
        StatefulSet {
            metadata: self.meta(&self.name),
            spec: Some(StatefulSetSpec {
                replicas: Some(self.replicas),
                service_name: Some(names.headless.clone()),
                // Replicas of an HA control plane start together.
                pod_management_policy: Some("Parallel".into()),
                selector: LabelSelector {
                    match_labels: Some(labels(&self.name)),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels(&self.name)),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        service_account_name: Some(names.account.clone()),
                        termination_grace_period_seconds: Some(10),
                        security_context: Some(PodSecurityContext {
                            fs_group: Some(RUN_AS_USER),
                            run_as_non_root: Some(true),
                            seccomp_profile: Some(SeccompProfile {
                                type_: "RuntimeDefault".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        containers: vec![container],
                        volumes: Some(volumes),
                        ..Default::default()
                    }),
                },
                volume_claim_templates: claims,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// The control plane's host rights as a Markdown table (docs/security.md
/// carries the one of the default configuration; a test keeps them equal).
pub fn rbac_table(plane: &ControlPlane) -> String {
    let mut out = String::from(
        "| scope | API group | resource | verbs | why |\n| --- | --- | --- | --- | --- |\n",
    );
    for rule in &plane.host_rules {
        let scope = if rule.cluster_scoped {
            "cluster (ClusterRole)"
        } else {
            "host namespace (Role)"
        };
        let group = if rule.group.is_empty() {
            "core"
        } else {
            rule.group
        };
        out.push_str(&format!(
            "| {scope} | {group} | {} | {} | {} |\n",
            rule.resource,
            rule.verbs.join(", "),
            rule.reason
        ));
    }
    let names = plane.names();
    out.push_str(&format!(
        "| host namespace (Role) | core | secrets | create; get, update, patch of `{}` and `{}` only | the kubeconfig Secret the control plane publishes, and the credentials its replicas share |\n",
        plane.kubeconfig_secret, names.certs_secret
    ));
    out.push_str(&format!(
        "| host namespace (Role) | core | services | get of `{}` only | its own Service's address (tenant pods reach it there) |\n",
        names.workload
    ));
    out
}

/// RBAC rules of `host_rules`, one per rule.
fn rules_of<'a>(host_rules: impl Iterator<Item = &'a HostRule>) -> Vec<PolicyRule> {
    host_rules
        .map(|rule| PolicyRule {
            api_groups: Some(vec![rule.group.to_owned()]),
            resources: Some(vec![rule.resource.to_owned()]),
            verbs: rule.verbs.iter().map(|v| (*v).to_owned()).collect(),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcluster_syncer::permissions::host_rules;
    use vcluster_syncer::SyncConfig;

    fn control_plane() -> ControlPlane {
        ControlPlane {
            name: "my-vc".into(),
            namespace: "team-a".into(),
            image: "vcluster-rs:test".into(),
            replicas: 1,
            persistence: Some(Persistence {
                size: "5Gi".into(),
                storage_class: None,
            }),
            service_type: "ClusterIP".into(),
            config_yaml: "sync: {}\n".into(),
            host_rules: host_rules(&SyncConfig::new("my-vc", "team-a")),
            resources: None,
            kubeconfig_secret: "vc-my-vc".into(),
        }
    }

    #[test]
    fn objects_carry_vclusters_names() {
        let described: Vec<String> = control_plane()
            .objects()
            .iter()
            .map(HostObject::describe)
            .collect();
        assert_eq!(
            described,
            [
                "serviceaccount/vc-my-vc",
                "role/vc-my-vc",
                "rolebinding/vc-my-vc",
                "clusterrole/vc-my-vc-v-team-a",
                "clusterrolebinding/vc-my-vc-v-team-a",
                "secret/vc-config-my-vc",
                "service/my-vc",
                "service/my-vc-headless",
                "statefulset/my-vc",
            ]
        );
    }

    #[test]
    fn the_role_grants_what_the_syncer_needs_and_no_wildcards() {
        let plane = control_plane();
        let rules = plane.namespaced_rules();
        for rule in &rules {
            assert!(!rule.verbs.iter().any(|v| v == "*"), "{rule:?}");
            let resources = rule.resources.as_deref().unwrap_or_default();
            assert!(!resources.iter().any(|r| r == "*"), "{rule:?}");
        }
        let pods = rules
            .iter()
            .find(|r| r.resources.as_deref() == Some(&["pods".to_owned()][..]))
            .expect("pods");
        assert!(pods.verbs.contains(&"create".to_owned()));
        // Nodes are cluster-scoped: not in the Role, read-only in the
        // ClusterRole.
        assert!(!rules
            .iter()
            .any(|r| r.resources.as_deref() == Some(&["nodes".to_owned()][..])));
    }

    #[test]
    fn without_persistence_the_data_volume_is_an_empty_dir() {
        let mut plane = control_plane();
        plane.persistence = None;
        let Some(HostObject::StatefulSet(set)) = plane.objects().pop() else {
            panic!("the StatefulSet is last");
        };
        let spec = set.spec.expect("spec");
        assert!(spec.volume_claim_templates.is_none());
        let volumes = spec.template.spec.expect("pod").volumes.expect("volumes");
        assert!(volumes
            .iter()
            .any(|v| v.name == "data" && v.empty_dir.is_some()));
    }
}
