//! Tenant isolation on the host, end to end: everything a tenant writes is
//! attacker-controlled, and none of it may make the syncer write outside its
//! host namespace, touch an object it does not own, or run a pod the host
//! isolation policy forbids. One test per attempt; loopback API servers
//! only, every wait a condition with a deadline.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    config, eventually, managed_outside, pod_condition, start_metered_syncer, test_config_map,
    test_pod, Cluster, Host, HostKind, MeteredSyncer, HOST_SERVICE_CIDR,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, LimitRange, LimitRangeSpec, Namespace, Pod, ResourceQuota, ResourceQuotaSpec,
    Secret, Service,
};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use vcluster_core::markers::{
    MANAGED_BY_LABEL, NAMESPACE_LABEL, OBJECT_HOST_NAMESPACE_ANNOTATION,
    OBJECT_HOST_NAME_ANNOTATION, OBJECT_NAMESPACE_ANNOTATION, OBJECT_NAME_ANNOTATION,
    OBJECT_UID_ANNOTATION,
};
use vcluster_core::prelude::*;
use vcluster_core::{safe_concat_name, SingleNamespaceTranslator, VirtualKey};
use vcluster_syncer::runner::{Selection, SyncConfig};
use vcluster_syncer::syncers::limits::{HostLimits, HostLimitsSyncer, HOST_LIMITS_LABEL};
use vcluster_syncer::syncers::pods::SYNC_BLOCKED;
use vcluster_syncer::PodSecurityLevel;
use vcluster_testkit::eventually_gone;

mod cross_tenant;
mod markers;
mod names;
mod policy;

/// A virtual cluster with a running syncer whose counters can be read.
struct Tenant {
    cluster: Cluster,
    syncer: MeteredSyncer,
    name: String,
}

impl Tenant {
    async fn start(
        name: &str,
        host: &Host,
        host_namespace: &str,
        configure: impl FnOnce(&mut SyncConfig),
    ) -> Self {
        let cluster =
            Cluster::start_configured(|c| c.extra_service_cidrs = vec![HOST_SERVICE_CIDR.into()])
                .await;
        Self::start_on(cluster, name, host, host_namespace, configure)
    }

    fn start_on(
        cluster: Cluster,
        name: &str,
        host: &Host,
        host_namespace: &str,
        configure: impl FnOnce(&mut SyncConfig),
    ) -> Self {
        let mut sync_config = config(name, host_namespace);
        configure(&mut sync_config);
        let syncer = start_metered_syncer(cluster.client(), host.client.clone(), sync_config);
        Self {
            cluster,
            syncer,
            name: name.to_owned(),
        }
    }

    fn errors(&self, engine: &str) -> u64 {
        self.syncer.metrics_of(engine).errors
    }

    async fn namespace(&self, name: &str) {
        self.cluster.create_namespace(name).await;
    }

    fn translator(&self, host_namespace: &str) -> SingleNamespaceTranslator {
        SingleNamespaceTranslator::new(&self.name, host_namespace).expect("translator")
    }
}

async fn create<K>(api: &Api<K>, object: &K) -> K
where
    K: Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    api.create(&PostParams::default(), object)
        .await
        .unwrap_or_else(|e| panic!("create {:?}: {e}", object.meta().name))
}

/// Waits until `engine` of `tenant` has failed at least `more` more times
/// than `before`: the syncer has looked at (and refused) the key.
async fn refused(tenant: &Tenant, engine: &str, before: u64, more: u64) {
    eventually(&format!("{engine} of {} refusing", tenant.name), || async {
        (tenant.errors(engine) >= before + more).then_some(())
    })
    .await;
}

fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
