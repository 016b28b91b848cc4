//! The built-in resources, with the discovery facts kube-apiserver publishes
//! for them and their k8s-openapi types for normalisation.

use k8s_openapi::api::{
    apps, batch, coordination, core, discovery, events, networking, rbac, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use serde_json::Value;

use super::ResourceInfo;

/// Round-trips a JSON object through the typed form `T`.
fn typed<T>(value: Value) -> Result<Value, serde_json::Error>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(value)?;
    serde_json::to_value(typed)
}

/// Scope of a resource in the table below.
#[derive(Clone, Copy)]
enum Scope {
    Namespaced,
    Cluster,
}

/// Subresources of a resource in the table below.
#[derive(Clone, Copy)]
enum Sub {
    None,
    Status,
    StatusScale,
}

struct Row {
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    scope: Scope,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    sub: Sub,
    normalize: super::Normalizer,
}

const ALL: &[&str] = &["all"];

/// Every built-in resource this server stores and serves (version `v1` for all).
#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { group: "", plural: "namespaces", singular: "namespace", kind: "Namespace", scope: Scope::Cluster, short_names: &["ns"], categories: &[], sub: Sub::Status, normalize: typed::<core::v1::Namespace> },
    Row { group: "", plural: "pods", singular: "pod", kind: "Pod", scope: Scope::Namespaced, short_names: &["po"], categories: ALL, sub: Sub::Status, normalize: typed::<core::v1::Pod> },
    Row { group: "", plural: "services", singular: "service", kind: "Service", scope: Scope::Namespaced, short_names: &["svc"], categories: ALL, sub: Sub::Status, normalize: typed::<core::v1::Service> },
    Row { group: "", plural: "endpoints", singular: "endpoints", kind: "Endpoints", scope: Scope::Namespaced, short_names: &["ep"], categories: &[], sub: Sub::None, normalize: typed::<core::v1::Endpoints> },
    Row { group: "", plural: "configmaps", singular: "configmap", kind: "ConfigMap", scope: Scope::Namespaced, short_names: &["cm"], categories: &[], sub: Sub::None, normalize: typed::<core::v1::ConfigMap> },
    Row { group: "", plural: "secrets", singular: "secret", kind: "Secret", scope: Scope::Namespaced, short_names: &[], categories: &[], sub: Sub::None, normalize: typed::<core::v1::Secret> },
    Row { group: "", plural: "serviceaccounts", singular: "serviceaccount", kind: "ServiceAccount", scope: Scope::Namespaced, short_names: &["sa"], categories: &[], sub: Sub::None, normalize: typed::<core::v1::ServiceAccount> },
    Row { group: "", plural: "persistentvolumeclaims", singular: "persistentvolumeclaim", kind: "PersistentVolumeClaim", scope: Scope::Namespaced, short_names: &["pvc"], categories: &[], sub: Sub::Status, normalize: typed::<core::v1::PersistentVolumeClaim> },
    Row { group: "", plural: "persistentvolumes", singular: "persistentvolume", kind: "PersistentVolume", scope: Scope::Cluster, short_names: &["pv"], categories: &[], sub: Sub::Status, normalize: typed::<core::v1::PersistentVolume> },
    Row { group: "", plural: "nodes", singular: "node", kind: "Node", scope: Scope::Cluster, short_names: &["no"], categories: &[], sub: Sub::Status, normalize: typed::<core::v1::Node> },
    Row { group: "", plural: "events", singular: "event", kind: "Event", scope: Scope::Namespaced, short_names: &["ev"], categories: &[], sub: Sub::None, normalize: typed::<core::v1::Event> },
    Row { group: "apps", plural: "deployments", singular: "deployment", kind: "Deployment", scope: Scope::Namespaced, short_names: &["deploy"], categories: ALL, sub: Sub::StatusScale, normalize: typed::<apps::v1::Deployment> },
    Row { group: "apps", plural: "replicasets", singular: "replicaset", kind: "ReplicaSet", scope: Scope::Namespaced, short_names: &["rs"], categories: ALL, sub: Sub::StatusScale, normalize: typed::<apps::v1::ReplicaSet> },
    Row { group: "apps", plural: "statefulsets", singular: "statefulset", kind: "StatefulSet", scope: Scope::Namespaced, short_names: &["sts"], categories: ALL, sub: Sub::StatusScale, normalize: typed::<apps::v1::StatefulSet> },
    Row { group: "apps", plural: "controllerrevisions", singular: "controllerrevision", kind: "ControllerRevision", scope: Scope::Namespaced, short_names: &[], categories: &[], sub: Sub::None, normalize: typed::<apps::v1::ControllerRevision> },
    Row { group: "apps", plural: "daemonsets", singular: "daemonset", kind: "DaemonSet", scope: Scope::Namespaced, short_names: &["ds"], categories: ALL, sub: Sub::Status, normalize: typed::<apps::v1::DaemonSet> },
    Row { group: "batch", plural: "jobs", singular: "job", kind: "Job", scope: Scope::Namespaced, short_names: &[], categories: ALL, sub: Sub::Status, normalize: typed::<batch::v1::Job> },
    Row { group: "batch", plural: "cronjobs", singular: "cronjob", kind: "CronJob", scope: Scope::Namespaced, short_names: &["cj"], categories: ALL, sub: Sub::Status, normalize: typed::<batch::v1::CronJob> },
    Row { group: "coordination.k8s.io", plural: "leases", singular: "lease", kind: "Lease", scope: Scope::Namespaced, short_names: &[], categories: &[], sub: Sub::None, normalize: typed::<coordination::v1::Lease> },
    Row { group: "discovery.k8s.io", plural: "endpointslices", singular: "endpointslice", kind: "EndpointSlice", scope: Scope::Namespaced, short_names: &[], categories: &[], sub: Sub::None, normalize: typed::<discovery::v1::EndpointSlice> },
    Row { group: "events.k8s.io", plural: "events", singular: "event", kind: "Event", scope: Scope::Namespaced, short_names: &["ev"], categories: &[], sub: Sub::None, normalize: typed::<events::v1::Event> },
    Row { group: "networking.k8s.io", plural: "ingresses", singular: "ingress", kind: "Ingress", scope: Scope::Namespaced, short_names: &["ing"], categories: &[], sub: Sub::Status, normalize: typed::<networking::v1::Ingress> },
    Row { group: "networking.k8s.io", plural: "networkpolicies", singular: "networkpolicy", kind: "NetworkPolicy", scope: Scope::Namespaced, short_names: &["netpol"], categories: &[], sub: Sub::None, normalize: typed::<networking::v1::NetworkPolicy> },
    Row { group: "apiextensions.k8s.io", plural: "customresourcedefinitions", singular: "customresourcedefinition", kind: "CustomResourceDefinition", scope: Scope::Cluster, short_names: &["crd", "crds"], categories: &["api-extensions"], sub: Sub::Status, normalize: typed::<apiextensions::v1::CustomResourceDefinition> },
    Row { group: "rbac.authorization.k8s.io", plural: "roles", singular: "role", kind: "Role", scope: Scope::Namespaced, short_names: &[], categories: &[], sub: Sub::None, normalize: typed::<rbac::v1::Role> },
    Row { group: "rbac.authorization.k8s.io", plural: "rolebindings", singular: "rolebinding", kind: "RoleBinding", scope: Scope::Namespaced, short_names: &[], categories: &[], sub: Sub::None, normalize: typed::<rbac::v1::RoleBinding> },
    Row { group: "rbac.authorization.k8s.io", plural: "clusterroles", singular: "clusterrole", kind: "ClusterRole", scope: Scope::Cluster, short_names: &[], categories: &[], sub: Sub::None, normalize: typed::<rbac::v1::ClusterRole> },
    Row { group: "rbac.authorization.k8s.io", plural: "clusterrolebindings", singular: "clusterrolebinding", kind: "ClusterRoleBinding", scope: Scope::Cluster, short_names: &[], categories: &[], sub: Sub::None, normalize: typed::<rbac::v1::ClusterRoleBinding> },
    Row { group: "storage.k8s.io", plural: "storageclasses", singular: "storageclass", kind: "StorageClass", scope: Scope::Cluster, short_names: &["sc"], categories: &[], sub: Sub::None, normalize: typed::<storage::v1::StorageClass> },
];

/// The built-in resources, ready for a [`super::Catalog`].
pub fn builtin_resources() -> Vec<ResourceInfo> {
    ROWS.iter()
        .map(|row| ResourceInfo {
            group: row.group.to_owned(),
            version: "v1".to_owned(),
            plural: row.plural.to_owned(),
            singular: row.singular.to_owned(),
            kind: row.kind.to_owned(),
            namespaced: matches!(row.scope, Scope::Namespaced),
            short_names: row.short_names.iter().map(|s| (*s).to_owned()).collect(),
            categories: row.categories.iter().map(|s| (*s).to_owned()).collect(),
            status_subresource: matches!(row.sub, Sub::Status | Sub::StatusScale),
            scale_subresource: matches!(row.sub, Sub::StatusScale),
            normalize: Some(row.normalize),
            custom: None,
        })
        .collect()
}
