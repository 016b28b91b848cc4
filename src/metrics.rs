//! The autoscaler's metrics from the host: the virtual API server has no
//! metrics-server, but the host's `metrics.k8s.io` API measures the host
//! pods the syncer made of virtual pods, so [`HostPodMetrics`] answers for
//! a virtual pod with what the host measured of its host pod, as vCluster
//! proxies the metrics API.
//!
//! The autoscaler asks synchronously, so a background task reads the
//! host namespace's `PodMetrics` every interval into a cache. While the
//! host has no metrics API (the task keeps asking), a fallback source
//! answers if one is given (the demo's simulated usage), else nothing:
//! the autoscaler then reports that it has no metrics, as upstream's does.
//! It lives in this facade because it joins the controllers (the
//! [`MetricsSource`] trait) with the syncer's name translation.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vcluster_controllers::hpa::{milli_value, MetricsSource};
use vcluster_core::{Translator, VirtualKey};

/// Usage by container name, then by resource name, in milli-units.
type PodUsage = BTreeMap<String, BTreeMap<String, i64>>;

/// Virtual pods' usage, as the host's metrics API measured their host pods.
pub struct HostPodMetrics {
    translator: Arc<dyn Translator>,
    usage: RwLock<HashMap<String, PodUsage>>,
    /// Whether the last read of the host's metrics API succeeded.
    available: AtomicBool,
    fallback: Option<Arc<dyn MetricsSource>>,
}

impl std::fmt::Debug for HostPodMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pods = self.usage.read().map(|u| u.len()).unwrap_or_default();
        f.debug_struct("HostPodMetrics")
            .field("pods", &pods)
            .finish_non_exhaustive()
    }
}

/// The `PodMetrics` resource of `metrics.k8s.io/v1beta1`.
fn pod_metrics_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
        "pods",
    )
}

/// One `PodMetrics` object's containers' usage.
fn usage_of(metrics: &DynamicObject) -> PodUsage {
    let containers = metrics
        .data
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    containers
        .iter()
        .filter_map(|container| {
            let name = container.get("name")?.as_str()?.to_owned();
            let usage = container
                .get("usage")?
                .as_object()?
                .iter()
                .filter_map(|(resource, quantity)| {
                    let value = milli_value(&Quantity(quantity.as_str()?.to_owned()))?;
                    Some((resource.clone(), value))
                })
                .collect();
            Some((name, usage))
        })
        .collect()
}

impl HostPodMetrics {
    /// Usage of virtual pods, named on the host by `translator`.
    pub fn new(translator: Arc<dyn Translator>) -> Self {
        Self {
            translator,
            usage: RwLock::new(HashMap::new()),
            available: AtomicBool::new(false),
            fallback: None,
        }
    }

    /// Asks `fallback` while the host has no metrics API.
    pub fn with_fallback(mut self, fallback: Arc<dyn MetricsSource>) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Replaces the cache with the `PodMetrics` objects read from the host.
    pub fn record(&self, metrics: &[DynamicObject]) {
        let fresh: HashMap<String, PodUsage> = metrics
            .iter()
            .filter_map(|m| Some((m.metadata.name.clone()?, usage_of(m))))
            .collect();
        if let Ok(mut usage) = self.usage.write() {
            *usage = fresh;
        }
        self.available.store(true, Ordering::Relaxed);
    }

    /// Reads the host namespace's pod metrics every `interval` until
    /// `cancel` fires.
    pub fn spawn(
        self: &Arc<Self>,
        host: kube::Client,
        host_namespace: &str,
        interval: Duration,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(host, host_namespace, &pod_metrics_resource());
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match api.list(&ListParams::default()).await {
                    Ok(list) => this.record(&list.items),
                    Err(err) => {
                        this.available.store(false, Ordering::Relaxed);
                        tracing::debug!(error = %err, "host pod metrics unavailable");
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        })
    }
}

impl MetricsSource for HostPodMetrics {
    fn pod_usage(&self, pod: &Pod, resource: &str) -> Option<BTreeMap<String, i64>> {
        if !self.available.load(Ordering::Relaxed) {
            return self.fallback.as_ref()?.pod_usage(pod, resource);
        }
        let key = VirtualKey::of(pod)?;
        let host = self.translator.host_key(&key).ok()?;
        let usage = self.usage.read().ok()?;
        let containers = usage.get(host.name())?;
        containers
            .iter()
            .map(|(name, usage)| Some((name.clone(), *usage.get(resource)?)))
            .collect()
    }
}
