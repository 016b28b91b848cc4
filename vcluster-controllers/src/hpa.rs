//! HorizontalPodAutoscalers: scale a workload to keep its pods' resource
//! use at the target, as upstream's horizontal pod autoscaler does
//! (`pkg/controller/podautoscaler`), for `Resource` and
//! `ContainerResource` metrics.
//!
//! Each sync reads the target's `scale` subresource (any kind serving
//! one), lists the pods its selector selects, asks a [`MetricsSource`] for
//! their usage (what metrics-server answers upstream; this crate has no
//! metrics API, so the embedder plugs one in: [`FixedUsage`] for tests,
//! [`AnnotatedUsage`] for the demo), and computes the replicas as
//! upstream's replica calculator does: usage over requests against the
//! target, a 10% tolerance, pods without metrics counted against the
//! move, unready pods not counted when scaling up. The recommendation is
//! then stabilized (the highest of the last five minutes when scaling
//! down, [`ControllerOptions::hpa_downscale_stabilization`], or the
//! `behavior` windows), limited (`minReplicas`, `maxReplicas`, and at most
//! double or +4 per step, or the `behavior` policies counting the rescales
//! of their period) and written to the target's scale; the status
//! (current and desired replicas, current metrics, `AbleToScale`,
//! `ScalingActive`, `ScalingLimited`) says what was found.
//!
//! Not like upstream: `Pods`, `Object` and `External` metrics, which need
//! a custom metrics API, report `ScalingActive` false; the scale events
//! `behavior` policies count are kept in memory (a restarted manager
//! starts without them, as kube-controller-manager does).
//!
//! [`ControllerOptions::hpa_downscale_stabilization`]: crate::ControllerOptions::hpa_downscale_stabilization

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
    MetricSpec, MetricStatus, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use vcluster_core::selector::Selector;
use vcluster_core::FieldManager;

use crate::error::{ApiContext, Result};
use crate::meta::{labels, name_of, namespace_of, time};
use crate::pods;
use crate::runtime::{drive, Shared};
use crate::scale;

const KIND: &str = "HorizontalPodAutoscaler";
/// The reporting controller of its events.
const CONTROLLER: &str = "horizontal-pod-autoscaler";
/// Upstream's default tolerance: no change for usage within 10% of the
/// target.
const TOLERANCE: f64 = 0.1;

/// Where the autoscaler reads how much of a resource a pod uses now (what
/// metrics-server's `PodMetrics` answer upstream).
pub trait MetricsSource: Send + Sync + fmt::Debug {
    /// What each container of `pod` uses of `resource` (`cpu` in
    /// millicores, others in thousandths of their unit), by container
    /// name; `None` when the pod has no metrics (yet).
    fn pod_usage(&self, pod: &Pod, resource: &str) -> Option<BTreeMap<String, i64>>;
}

/// The same usage for every container of every running pod: what tests
/// pin to see the autoscaler move.
#[derive(Clone, Debug, Default)]
pub struct FixedUsage {
    /// Usage per container by resource name, in milli-units (`cpu`: 250 is
    /// a quarter of a core).
    pub per_container: BTreeMap<String, i64>,
}

impl FixedUsage {
    /// Every container uses `millicores` of CPU.
    pub fn cpu(millicores: i64) -> Self {
        Self {
            per_container: BTreeMap::from([("cpu".to_owned(), millicores)]),
        }
    }
}

impl MetricsSource for FixedUsage {
    fn pod_usage(&self, pod: &Pod, resource: &str) -> Option<BTreeMap<String, i64>> {
        let usage = *self.per_container.get(resource)?;
        (pods::phase(pod) == "Running")
            .then(|| containers(pod).map(|c| (c.name.clone(), usage)).collect())
    }
}

/// The annotation through which a pod states its simulated usage of a
/// resource (`metrics.vcluster.dev/cpu: 400m`), per container.
pub const USAGE_ANNOTATION_PREFIX: &str = "metrics.vcluster.dev/";

/// Simulated usage for a cluster without real metrics (the demo): a pod's
/// `metrics.vcluster.dev/<resource>` annotation (a quantity, for each of
/// its containers) when it has one, else `percent_of_request` of each
/// container's request. Running pods only.
#[derive(Clone, Debug)]
pub struct AnnotatedUsage {
    /// Usage of a pod without the annotation, as a share of its requests.
    pub percent_of_request: i64,
}

impl MetricsSource for AnnotatedUsage {
    fn pod_usage(&self, pod: &Pod, resource: &str) -> Option<BTreeMap<String, i64>> {
        if pods::phase(pod) != "Running" {
            return None;
        }
        let annotated = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(&format!("{USAGE_ANNOTATION_PREFIX}{resource}")))
            .and_then(|q| milli_value(&Quantity(q.clone())));
        Some(
            containers(pod)
                .map(|c| {
                    let usage = annotated.unwrap_or_else(|| {
                        request_of(c, resource).unwrap_or(0) * self.percent_of_request / 100
                    });
                    (c.name.clone(), usage)
                })
                .collect(),
        )
    }
}

fn containers(pod: &Pod) -> impl Iterator<Item = &k8s_openapi::api::core::v1::Container> {
    pod.spec.iter().flat_map(|s| s.containers.iter())
}

/// A container's request of `resource`, in milli-units.
fn request_of(container: &k8s_openapi::api::core::v1::Container, resource: &str) -> Option<i64> {
    container
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get(resource)
        .and_then(milli_value)
}

/// A quantity in thousandths of its unit (`100m` is 100, `1` is 1000,
/// `1Ki` is 1024000).
pub fn milli_value(quantity: &Quantity) -> Option<i64> {
    let text = quantity.0.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        // metrics-server reports CPU in nanocores.
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 0.001,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let e: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some((number * factor * 1000.0).ceil() as i64)
}

/// One autoscaler's recent rescales: `(when, replicas added)` and
/// `(when, replicas removed)`.
type ScaleEvents = (Vec<(jiff::Timestamp, i32)>, Vec<(jiff::Timestamp, i32)>);

/// State kept between syncs: each autoscaler's recent recommendations
/// (upstream's `recommendations`, for the stabilization windows).
#[derive(Default)]
struct History {
    recommendations: Mutex<HashMap<String, Vec<(jiff::Timestamp, i32)>>>,
    /// Each autoscaler's recent rescales `(when, replicas added)` and
    /// `(when, replicas removed)`, for `behavior` policies' periods
    /// (upstream's `scaleUpEvents` and `scaleDownEvents`).
    events: Mutex<HashMap<String, ScaleEvents>>,
}

struct Ctx {
    shared: Arc<Shared>,
    metrics: Arc<dyn MetricsSource>,
    history: History,
}

impl AsRef<Shared> for Ctx {
    fn as_ref(&self) -> &Shared {
        &self.shared
    }
}

/// Runs the horizontal pod autoscaler until `cancel` fires; without a
/// [`MetricsSource`] in the options it does not run (upstream's needs a
/// metrics API too).
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let Some(metrics) = shared.options.metrics.clone() else {
        tracing::info!("no metrics source: the horizontal pod autoscaler does not run");
        return;
    };
    let client = shared.client.clone();
    let controller = Controller::new(
        Api::<HorizontalPodAutoscaler>::all(client),
        watcher::Config::default(),
    );
    let ctx = Arc::new(Ctx {
        shared,
        metrics,
        history: History::default(),
    });
    drive(
        "horizontalpodautoscaling",
        controller,
        ctx,
        reconcile,
        cancel,
    )
    .await;
}

/// One condition of the status.
fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
) -> HorizontalPodAutoscalerCondition {
    HorizontalPodAutoscalerCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: None,
    }
}

/// What one metric recommends.
struct Recommendation {
    replicas: i32,
    status: MetricStatus,
    /// How upstream names the metric in events and conditions.
    name: String,
}

async fn reconcile(obj: Arc<HorizontalPodAutoscaler>, ctx: Arc<Ctx>) -> Result<Action> {
    let shared = &ctx.shared;
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(shared.client.clone(), &namespace);
    let Some(hpa) = api.get_opt(&name).await.context("get", KIND, &key)? else {
        ctx.history
            .recommendations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        return Ok(Action::await_change());
    };
    let spec = hpa.spec.clone().unwrap_or_default();
    let target = &spec.scale_target_ref;
    let api_version = target.api_version.clone().unwrap_or_else(|| "v1".into());
    let reference = format!("{}/{}", target.kind, target.name);
    let mut conditions = Vec::new();
    let now = shared.now();
    let scale = match scale::get(
        &shared.client,
        &namespace,
        &api_version,
        &target.kind,
        &target.name,
    )
    .await
    {
        Ok(Some(scale)) => scale,
        Ok(None) | Err(_) => {
            let message = format!("the HPA controller was unable to get the target's current scale: {} {:?} not found", target.kind, target.name);
            if !already_reported(&hpa, "AbleToScale", "FailedGetScale") {
                shared
                    .event(CONTROLLER, &hpa, true, "FailedGetScale", message.clone())
                    .await;
            }
            conditions.push(condition("AbleToScale", false, "FailedGetScale", message));
            write_status(
                &api,
                &hpa,
                &key,
                None,
                None,
                Vec::new(),
                conditions,
                false,
                now,
            )
            .await?;
            return Ok(Action::requeue(shared.options.hpa_sync_period));
        }
    };
    let current = scale.status.as_ref().map_or(0, |s| s.replicas);
    let spec_replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    conditions.push(condition(
        "AbleToScale",
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale".into(),
    ));

    let mut metric_statuses = Vec::new();
    let desired;
    let mut limited = None;
    if spec_replicas == 0 && min != 0 {
        // Autoscaling is off while the target is scaled to zero.
        desired = 0;
        conditions.push(condition(
            "ScalingActive",
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero".into(),
        ));
    } else if spec_replicas > max {
        desired = max;
        limited = Some((
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        ));
    } else if spec_replicas < min {
        desired = min;
        limited = Some((
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        ));
    } else {
        let selector = scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        let pods = selected_pods(shared, &namespace, &selector, &key).await?;
        let mut best: Option<Recommendation> = None;
        let mut failure = None;
        for metric in spec.metrics.iter().flatten() {
            match recommend(ctx.metrics.as_ref(), metric, &pods, spec_replicas) {
                Ok(rec) => {
                    metric_statuses.push(rec.status.clone());
                    if best.as_ref().is_none_or(|b| rec.replicas > b.replicas) {
                        best = Some(rec);
                    }
                }
                Err((reason, message)) => {
                    failure.get_or_insert((reason, message));
                }
            }
        }
        match (best, failure) {
            (None, Some((reason, message))) => {
                if !already_reported(&hpa, "ScalingActive", reason) {
                    shared
                        .event(CONTROLLER, &hpa, true, reason, message.clone())
                        .await;
                }
                conditions.push(condition("ScalingActive", false, reason, message));
                write_status(
                    &api,
                    &hpa,
                    &key,
                    Some(current),
                    Some(spec_replicas),
                    metric_statuses,
                    conditions,
                    false,
                    now,
                )
                .await?;
                return Ok(Action::requeue(shared.options.hpa_sync_period));
            }
            (None, None) => {
                desired = spec_replicas;
            }
            (Some(rec), _) => {
                conditions.push(condition(
                    "ScalingActive",
                    true,
                    "ValidMetricFound",
                    format!(
                        "the HPA was able to successfully calculate a replica count from {}",
                        rec.name
                    ),
                ));
                let stabilized = ctx.stabilize(&key, &hpa, rec.replicas, spec_replicas, now);
                let (normalized, why) = match hpa.spec.as_ref().and_then(|s| s.behavior.as_ref()) {
                    None => limit(stabilized, spec_replicas, min, max),
                    Some(behavior) => {
                        let events = ctx.events_of(&key);
                        limit_with_behavior(
                            behavior,
                            &events,
                            now,
                            stabilized,
                            spec_replicas,
                            min,
                            max,
                        )
                    }
                };
                limited = why;
                desired = normalized;
            }
        }
    }
    match limited {
        Some((reason, message)) => {
            conditions.push(condition("ScalingLimited", true, reason, message.into()))
        }
        None => conditions.push(condition(
            "ScalingLimited",
            false,
            "DesiredWithinRange",
            "the desired count is within the acceptable range".into(),
        )),
    }
    let mut rescaled = false;
    if desired != spec_replicas {
        match scale::set_replicas(
            &shared.client,
            &namespace,
            &api_version,
            &target.kind,
            &target.name,
            desired,
        )
        .await
        {
            Ok(_) => {
                rescaled = true;
                ctx.record_rescale(&key, &hpa, spec_replicas, desired, now);
                let reason = if desired > spec_replicas {
                    "above target"
                } else {
                    "All metrics below target"
                };
                let message = match metric_statuses.first() {
                    Some(status) if desired > spec_replicas => format!(
                        "New size: {desired}; reason: {} {reason}",
                        metric_name(status)
                    ),
                    _ => format!("New size: {desired}; reason: {reason}"),
                };
                tracing::info!(%reference, from = spec_replicas, to = desired, "rescaled");
                shared
                    .event(CONTROLLER, &hpa, false, "SuccessfulRescale", message)
                    .await;
                if let Some(c) = conditions.iter_mut().find(|c| c.type_ == "AbleToScale") {
                    *c = condition(
                        "AbleToScale",
                        true,
                        "SucceededRescale",
                        format!(
                            "the HPA controller was able to update the target scale to {desired}"
                        ),
                    );
                }
            }
            Err(err) => {
                let message =
                    format!("the HPA controller was unable to update the target scale: {err}");
                shared
                    .event(CONTROLLER, &hpa, true, "FailedRescale", message.clone())
                    .await;
                if let Some(c) = conditions.iter_mut().find(|c| c.type_ == "AbleToScale") {
                    *c = condition("AbleToScale", false, "FailedUpdateScale", message);
                }
            }
        }
    } else if let Some(c) = conditions.iter_mut().find(|c| c.type_ == "AbleToScale") {
        *c = condition(
            "AbleToScale",
            true,
            "ReadyForNewScale",
            "recommended size matches current size".into(),
        );
    }
    write_status(
        &api,
        &hpa,
        &key,
        Some(current),
        Some(desired),
        metric_statuses,
        conditions,
        rescaled,
        now,
    )
    .await?;
    Ok(Action::requeue(shared.options.hpa_sync_period))
}

/// Whether the status already shows this failure: its event was recorded
/// when it began (upstream's recorder folds repeats into one event with a
/// count; not recording them again keeps a failing autoscaler from adding
/// an event every sync).
fn already_reported(hpa: &HorizontalPodAutoscaler, type_: &str, reason: &str) -> bool {
    hpa.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "False" && c.reason.as_deref() == Some(reason))
}

/// How upstream names a metric in messages.
fn metric_name(status: &MetricStatus) -> String {
    let resource = status
        .resource
        .as_ref()
        .map(|r| r.name.clone())
        .or_else(|| status.container_resource.as_ref().map(|r| r.name.clone()))
        .unwrap_or_default();
    let utilization = status
        .resource
        .as_ref()
        .map(|r| &r.current)
        .or_else(|| status.container_resource.as_ref().map(|r| &r.current))
        .and_then(|c| c.average_utilization)
        .is_some();
    if utilization {
        format!("{resource} resource utilization (percentage of request)")
    } else {
        format!("{resource} resource")
    }
}

/// The pods the target's scale selects.
async fn selected_pods(
    shared: &Shared,
    namespace: &str,
    selector: &str,
    key: &str,
) -> Result<Vec<Pod>> {
    let parsed = Selector::parse(selector).map_err(|e| crate::error::Error::InvalidSpec {
        kind: KIND,
        key: key.to_owned(),
        message: format!("invalid selector {selector:?}: {e}"),
    })?;
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), namespace);
    Ok(pods
        .list(&ListParams::default())
        .await
        .context("list", "Pod", key)?
        .items
        .into_iter()
        .filter(|p| parsed.matches(labels(&p.metadata)))
        .collect())
}

/// One resource metric's recommendation (upstream's `GetResourceReplicas`
/// and `GetRawResourceReplicas`), or the failure's reason and message.
fn recommend(
    source: &dyn MetricsSource,
    metric: &MetricSpec,
    pods: &[Pod],
    current: i32,
) -> std::result::Result<Recommendation, (&'static str, String)> {
    let (resource, container, target) = match (metric.type_.as_str(), &metric.resource, &metric.container_resource) {
        ("Resource", Some(r), _) => (r.name.clone(), None, r.target.clone()),
        ("ContainerResource", _, Some(r)) => (r.name.clone(), Some(r.container.clone()), r.target.clone()),
        (kind, ..) => {
            return Err((
                match kind {
                    "Pods" => "FailedGetPodsMetric",
                    "Object" => "FailedGetObjectMetric",
                    "External" => "FailedGetExternalMetric",
                    _ => "InvalidMetricSourceType",
                },
                format!("the HPA was unable to compute the replica count: no custom or external metrics API serves {kind} metrics here"),
            ))
        }
    };
    let failed = |message: String| ("FailedGetResourceMetric", message);
    // Upstream's groupPods: deleted and failed pods are ignored, pods
    // without metrics missing, pending pods unready (CPU).
    let mut usage: BTreeMap<String, i64> = BTreeMap::new();
    let mut requests: BTreeMap<String, i64> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut unready = Vec::new();
    for pod in pods {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() || pods::phase(pod) == "Failed" {
            continue;
        }
        let mut request = 0;
        for c in containers(pod).filter(|c| container.as_ref().is_none_or(|n| &c.name == n)) {
            match request_of(c, &resource) {
                Some(r) => request += r,
                None if target.type_ == "Utilization" => {
                    return Err(failed(format!(
                        "failed to get {resource} utilization: missing request for {resource} in container {} of Pod {pod_name}",
                        c.name
                    )))
                }
                None => {}
            }
        }
        requests.insert(pod_name.clone(), request);
        let measured = source.pod_usage(pod, &resource).map(|by_container| {
            by_container
                .iter()
                .filter(|(c, _)| container.as_ref().is_none_or(|n| *c == n))
                .map(|(_, v)| *v)
                .sum::<i64>()
        });
        match measured {
            None => missing.push(pod_name),
            Some(value) => {
                if resource == "cpu" && (pods::phase(pod) == "Pending" || !pods::is_ready(pod)) {
                    unready.push(pod_name.clone());
                    continue;
                }
                usage.insert(pod_name, value);
            }
        }
    }
    if usage.is_empty() {
        return Err(failed(format!(
            "failed to get {resource} utilization: unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
        )));
    }
    let ready_count = usage.len() as f64;
    let total_usage: i64 = usage.values().sum();
    let (ratio, status_current, scale_of) = if target.type_ == "Utilization" {
        let goal = f64::from(target.average_utilization.unwrap_or(80));
        let total_request: i64 = usage.keys().filter_map(|p| requests.get(p)).sum();
        if total_request == 0 {
            return Err(failed(format!(
                "failed to get {resource} utilization: no requests"
            )));
        }
        let utilization = (total_usage * 100) as f64 / total_request as f64;
        let current = MetricValueStatus {
            average_utilization: Some(utilization as i32),
            average_value: Some(Quantity(format_milli(total_usage / usage.len() as i64))),
            value: None,
        };
        (
            utilization / goal,
            current,
            Box::new(
                move |u: &BTreeMap<String, i64>, req: &BTreeMap<String, i64>| {
                    let used: i64 = u.values().sum();
                    let asked: i64 = u.keys().filter_map(|p| req.get(p)).sum();
                    if asked == 0 {
                        0.0
                    } else {
                        (used * 100) as f64 / asked as f64 / goal
                    }
                },
            ) as Box<dyn Fn(&BTreeMap<String, i64>, &BTreeMap<String, i64>) -> f64>,
        )
    } else {
        let goal = target
            .average_value
            .as_ref()
            .and_then(milli_value)
            .filter(|g| *g > 0)
            .ok_or_else(|| failed("the metric target has no average value".into()))?
            as f64;
        let current = MetricValueStatus {
            average_utilization: None,
            average_value: Some(Quantity(format_milli(total_usage / usage.len() as i64))),
            value: None,
        };
        (
            total_usage as f64 / ready_count / goal,
            current,
            Box::new(
                move |u: &BTreeMap<String, i64>, _: &BTreeMap<String, i64>| {
                    let used: i64 = u.values().sum();
                    used as f64 / u.len().max(1) as f64 / goal
                },
            ) as Box<dyn Fn(&BTreeMap<String, i64>, &BTreeMap<String, i64>) -> f64>,
        )
    };
    let scale_up_with_unready = !unready.is_empty() && ratio > 1.0;
    let replicas = if !scale_up_with_unready && missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            current
        } else {
            (ratio * ready_count).ceil() as i32
        }
    } else {
        // Pods without metrics count against the move: at their request
        // when scaling down, at nothing when scaling up; unready pods at
        // nothing when scaling up.
        let mut assumed = usage.clone();
        for pod in &missing {
            let value = if ratio < 1.0 {
                if target.type_ == "Utilization" {
                    requests.get(pod).copied().unwrap_or(0)
                } else {
                    target
                        .average_value
                        .as_ref()
                        .and_then(milli_value)
                        .unwrap_or(0)
                }
            } else {
                0
            };
            assumed.insert(pod.clone(), value);
        }
        if scale_up_with_unready {
            for pod in &unready {
                assumed.insert(pod.clone(), 0);
            }
        }
        let new_ratio = scale_of(&assumed, &requests);
        if (1.0 - new_ratio).abs() <= TOLERANCE
            || (ratio < 1.0 && new_ratio > 1.0)
            || (ratio > 1.0 && new_ratio < 1.0)
        {
            current
        } else {
            let proposed = (new_ratio * assumed.len() as f64).ceil() as i32;
            if (new_ratio < 1.0 && proposed > current) || (new_ratio > 1.0 && proposed < current) {
                current
            } else {
                proposed
            }
        }
    };
    let status = if let Some(container) = container {
        MetricStatus {
            type_: "ContainerResource".into(),
            container_resource: Some(
                k8s_openapi::api::autoscaling::v2::ContainerResourceMetricStatus {
                    name: resource.clone(),
                    container,
                    current: status_current,
                },
            ),
            ..Default::default()
        }
    } else {
        MetricStatus {
            type_: "Resource".into(),
            resource: Some(ResourceMetricStatus {
                name: resource.clone(),
                current: status_current,
            }),
            ..Default::default()
        }
    };
    let name = metric_name(&status);
    Ok(Recommendation {
        replicas,
        status,
        name,
    })
}

/// Milli-units as a quantity (`250m`, `2`).
fn format_milli(milli: i64) -> String {
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

impl Ctx {
    /// Upstream's stabilization: records `recommended` and answers, without
    /// `behavior`, the highest recommendation of the scale-down window
    /// (`stabilizeRecommendation`: a dip does not scale down at once); with
    /// `behavior`, `current` moved only as far as every recommendation of
    /// the scale-up window (their lowest) or of the scale-down window (their
    /// highest) agrees (`stabilizeRecommendationWithBehaviors`).
    fn stabilize(
        &self,
        key: &str,
        hpa: &HorizontalPodAutoscaler,
        recommended: i32,
        current: i32,
        now: jiff::Timestamp,
    ) -> i32 {
        let behavior = hpa.spec.as_ref().and_then(|s| s.behavior.as_ref());
        let seconds = |s: Option<i32>| s.map(|s| i64::from(s.max(0)));
        let down_window = behavior
            .and_then(|b| b.scale_down.as_ref())
            .and_then(|r| seconds(r.stabilization_window_seconds))
            .unwrap_or(self.shared.options.hpa_downscale_stabilization.as_secs() as i64);
        let up_window = behavior
            .and_then(|b| b.scale_up.as_ref())
            .and_then(|r| seconds(r.stabilization_window_seconds))
            .unwrap_or(0);
        let mut all = self
            .history
            .recommendations
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let history = all.entry(key.to_owned()).or_default();
        let longest = down_window.max(up_window);
        history.retain(|(at, _)| now.as_second() - at.as_second() <= longest);
        history.push((now, recommended));
        let within = |window: i64| {
            history
                .iter()
                .filter(move |(at, _)| now.as_second() - at.as_second() <= window)
                .map(|(_, r)| *r)
        };
        let highest_down = within(down_window).max().unwrap_or(recommended);
        if behavior.is_none() {
            return highest_down;
        }
        let lowest_up = within(up_window).min().unwrap_or(recommended);
        let mut stabilized = current;
        if stabilized < lowest_up {
            stabilized = lowest_up;
        }
        if stabilized > highest_down {
            stabilized = highest_down;
        }
        stabilized
    }

    /// The recent rescales of `key`.
    fn events_of(&self, key: &str) -> ScaleEvents {
        self.history
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Records a rescale for the `behavior` policies' periods, forgetting
    /// those older than the longest period (upstream's `storeScaleEvent`).
    fn record_rescale(
        &self,
        key: &str,
        hpa: &HorizontalPodAutoscaler,
        from: i32,
        to: i32,
        now: jiff::Timestamp,
    ) {
        let Some(behavior) = hpa.spec.as_ref().and_then(|s| s.behavior.as_ref()) else {
            return;
        };
        let longest = |rules: Option<&k8s_openapi::api::autoscaling::v2::HPAScalingRules>| {
            rules
                .and_then(|r| r.policies.as_ref())
                .into_iter()
                .flatten()
                .map(|p| i64::from(p.period_seconds))
                .max()
                .unwrap_or(0)
        };
        let mut all = self
            .history
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (ups, downs) = all.entry(key.to_owned()).or_default();
        let (list, period) = if to > from {
            (ups, longest(behavior.scale_up.as_ref()))
        } else {
            (downs, longest(behavior.scale_down.as_ref()))
        };
        list.retain(|(at, _)| now.as_second() - at.as_second() <= period);
        list.push((now, (to - from).abs()));
    }
}

/// `minReplicas`, `maxReplicas` and, without `behavior`, at most double
/// (or +4) per step, and why the count was limited (upstream's
/// `convertDesiredReplicasWithRules`).
fn limit(
    desired: i32,
    current: i32,
    min: i32,
    max: i32,
) -> (i32, Option<(&'static str, &'static str)>) {
    let scale_up_limit = (current * 2).max(4);
    let (maximum, why) = if max > scale_up_limit {
        (
            scale_up_limit,
            (
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            ),
        )
    } else {
        (
            max,
            (
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            ),
        )
    };
    if desired < min {
        return (
            min,
            Some((
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )),
        );
    }
    if desired > maximum {
        return (maximum, Some(why));
    }
    (desired, None)
}

/// The bounds and the `behavior` policies (upstream's
/// `convertDesiredReplicasWithBehaviorRate`): a step goes at most as far as
/// the selected policy allows from the replicas at the start of its
/// period (the current ones less the rescales within it).
fn limit_with_behavior(
    behavior: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior,
    (ups, downs): &ScaleEvents,
    now: jiff::Timestamp,
    desired: i32,
    current: i32,
    min: i32,
    max: i32,
) -> (i32, Option<(&'static str, &'static str)>) {
    let changed_within = |events: &[(jiff::Timestamp, i32)], period: i32| -> i32 {
        events
            .iter()
            .filter(|(at, _)| now.as_second() - at.as_second() <= i64::from(period))
            .map(|(_, n)| *n)
            .sum()
    };
    let proposals = |rules: Option<&k8s_openapi::api::autoscaling::v2::HPAScalingRules>,
                     up: bool| {
        let defaults: Vec<(String, i32, i32)> = if up {
            vec![("Pods".into(), 4, 15), ("Percent".into(), 100, 15)]
        } else {
            vec![("Percent".into(), 100, 15)]
        };
        let policies: Vec<(String, i32, i32)> = match rules.and_then(|r| r.policies.as_ref()) {
            Some(p) if !p.is_empty() => p
                .iter()
                .map(|p| (p.type_.clone(), p.value, p.period_seconds))
                .collect(),
            _ => defaults,
        };
        policies
            .into_iter()
            .map(|(kind, value, period)| {
                let start = current - changed_within(ups, period) + changed_within(downs, period);
                let start_f = f64::from(start);
                match (kind.as_str(), up) {
                    ("Pods", true) => start + value,
                    ("Pods", false) => start - value,
                    (_, true) => (start_f * (1.0 + f64::from(value) / 100.0)).ceil() as i32,
                    (_, false) => (start_f * (1.0 - f64::from(value) / 100.0)) as i32,
                }
            })
            .collect::<Vec<i32>>()
    };
    let select = |rules: Option<&k8s_openapi::api::autoscaling::v2::HPAScalingRules>| {
        rules
            .and_then(|r| r.select_policy.clone())
            .unwrap_or_else(|| "Max".into())
    };
    if desired > current {
        let rules = behavior.scale_up.as_ref();
        let limit = match select(rules).as_str() {
            "Disabled" => current,
            "Min" => proposals(rules, true).into_iter().min().unwrap_or(current),
            _ => proposals(rules, true).into_iter().max().unwrap_or(current),
        }
        .max(current);
        let (maximum, why) = if max > limit {
            (
                limit,
                (
                    "ScaleUpLimit",
                    "the desired replica count is increasing faster than the maximum scale rate",
                ),
            )
        } else {
            (
                max,
                (
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count",
                ),
            )
        };
        if desired > maximum {
            return (maximum, Some(why));
        }
    } else if desired < current {
        let rules = behavior.scale_down.as_ref();
        let limit = match select(rules).as_str() {
            "Disabled" => current,
            "Min" => proposals(rules, false).into_iter().max().unwrap_or(current),
            _ => proposals(rules, false).into_iter().min().unwrap_or(current),
        }
        .min(current);
        let (minimum, why) = if min < limit {
            (
                limit,
                (
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate",
                ),
            )
        } else {
            (
                min,
                (
                    "TooFewReplicas",
                    "the desired replica count is less than the minimum replica count",
                ),
            )
        };
        if desired < minimum {
            return (minimum, Some(why));
        }
    }
    (desired, None)
}

/// Writes the status when it changed (conditions keep their transition
/// time while their status stays).
#[allow(clippy::too_many_arguments)]
async fn write_status(
    api: &Api<HorizontalPodAutoscaler>,
    hpa: &HorizontalPodAutoscaler,
    key: &str,
    current: Option<i32>,
    desired: Option<i32>,
    metrics: Vec<MetricStatus>,
    mut conditions: Vec<HorizontalPodAutoscalerCondition>,
    rescaled: bool,
    now: jiff::Timestamp,
) -> Result<()> {
    let old = hpa.status.clone().unwrap_or_default();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    for c in &mut conditions {
        c.last_transition_time = Some(
            old_conditions
                .iter()
                .find(|o| o.type_ == c.type_ && o.status == c.status)
                .and_then(|o| o.last_transition_time.clone())
                .unwrap_or_else(|| time(now)),
        );
    }
    let status = HorizontalPodAutoscalerStatus {
        current_replicas: current.or(old.current_replicas),
        desired_replicas: desired.unwrap_or(old.desired_replicas),
        current_metrics: if metrics.is_empty() {
            None
        } else {
            Some(metrics)
        },
        conditions: Some(conditions),
        last_scale_time: if rescaled {
            Some(time(now))
        } else {
            old.last_scale_time.clone()
        },
        observed_generation: hpa.metadata.generation,
    };
    if hpa.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut updated = hpa.clone();
    updated.status = Some(status);
    let name = hpa.metadata.name.clone().unwrap_or_default();
    api.replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &updated)
        .await
        .context("update status of", KIND, key)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::autoscaling::v2::{MetricTarget, ResourceMetricSource};
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};

    fn pod_with_request(name: &str, cpu: &str) -> Pod {
        let mut pod = crate::pods::testing::pod(name, "Running", Some(0));
        pod.spec = Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([("cpu".to_owned(), Quantity(cpu.into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        });
        pod
    }

    fn cpu_target(percent: i32) -> MetricSpec {
        MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(percent),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }
    }

    #[test]
    fn quantities_read_in_thousandths() {
        assert_eq!(milli_value(&Quantity("100m".into())), Some(100));
        assert_eq!(milli_value(&Quantity("1.5".into())), Some(1500));
        assert_eq!(milli_value(&Quantity("1Ki".into())), Some(1_024_000));
        assert_eq!(milli_value(&Quantity("2e3".into())), Some(2_000_000));
    }

    #[test]
    fn replicas_follow_usage_over_target_with_a_tolerance() {
        let pods = [pod_with_request("a", "100m"), pod_with_request("b", "100m")];
        // 200% of request against 50%: four times the pods.
        let rec =
            recommend(&FixedUsage::cpu(200), &cpu_target(50), &pods, 2).expect("recommendation");
        assert_eq!(rec.replicas, 8);
        let current = &rec.status.resource.as_ref().expect("resource").current;
        assert_eq!(current.average_utilization, Some(200));
        // 54% against 50% is within the 10% tolerance.
        let rec =
            recommend(&FixedUsage::cpu(54), &cpu_target(50), &pods, 2).expect("recommendation");
        assert_eq!(rec.replicas, 2);
        // 10% against 50%: one pod (a fifth of two, rounded up).
        let rec =
            recommend(&FixedUsage::cpu(10), &cpu_target(50), &pods, 2).expect("recommendation");
        assert_eq!(rec.replicas, 1);
        // No request: no utilization.
        let bare = [crate::pods::testing::pod("c", "Running", Some(0))];
        let mut bare = bare.to_vec();
        bare[0].spec = Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(recommend(&FixedUsage::cpu(10), &cpu_target(50), &bare, 1).is_err());
    }

    #[test]
    fn steps_are_limited_to_double_or_four_and_to_the_bounds() {
        assert_eq!(limit(8, 1, 1, 10).0, 4);
        assert_eq!(limit(8, 3, 1, 10).0, 6);
        assert_eq!(
            limit(20, 6, 1, 10),
            (
                10,
                Some((
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count"
                ))
            )
        );
        assert_eq!(limit(0, 3, 1, 10).0, 1);
    }

    #[test]
    fn behavior_policies_count_the_rescales_of_their_period() {
        use k8s_openapi::api::autoscaling::v2::{
            HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscalerBehavior,
        };
        let behavior = HorizontalPodAutoscalerBehavior {
            scale_up: Some(HPAScalingRules {
                policies: Some(vec![HPAScalingPolicy {
                    type_: "Pods".into(),
                    value: 2,
                    period_seconds: 60,
                }]),
                ..Default::default()
            }),
            scale_down: None,
        };
        let now = jiff::Timestamp::from_second(1_000).expect("ts");
        let none = (Vec::new(), Vec::new());
        assert_eq!(
            limit_with_behavior(&behavior, &none, now, 10, 2, 1, 20).0,
            4
        );
        // Two pods were added 30 s ago: the period started at 2, so 4 it is.
        let recent = (
            vec![(jiff::Timestamp::from_second(970).expect("ts"), 2)],
            Vec::new(),
        );
        assert_eq!(
            limit_with_behavior(&behavior, &recent, now, 10, 4, 1, 20).0,
            4
        );
        // Default scale-down: 100% per 15 s, down to the minimum.
        assert_eq!(limit_with_behavior(&behavior, &none, now, 0, 4, 1, 20).0, 1);
    }
}
