//! End-to-end sync throughput of `VirtualClusterSyncer`, against the
//! ceiling of writing the same host objects straight to the host.
//!
//! The virtual and the host API server (in-memory) each run in a child
//! process (this binary, started again) on loopback; the syncer runs in
//! this process with kube-rs clients over HTTP, as in production. Per
//! kind (configmaps, synced with `Selection::All`, and pods) and size N:
//!
//! - `direct_raw`: a raw HTTP/1.1 client writes the N translated host
//!   objects (pre-serialized) straight to a fresh host server;
//! - `direct_kube`: the same with kube-rs, the client library the syncer
//!   uses (`Api<DynamicObject>::create`);
//! - `live`: the syncer runs; a tenant writes N objects to the virtual
//!   server; the clock stops when the host has all N (end to end);
//! - `backlog`: the N objects already exist when the syncer starts; the
//!   clock runs from its start to the host having all N.
//!
//! Every mode uses the same concurrency (the syncer's workers = writers)
//! and counts host objects with the same raw watch. Ratios are per sample
//! (`live / direct_kube` of the same sample), median over samples.
//! Then: status back (host pod status patched -> visible on the virtual
//! pod) at 1,000 pods, one at a time and all at once; and resident memory
//! per synced object, each measured in a fresh child process.
//!
//! Against a real host (part `real_host`, on unless
//! `VCLUSTER_BENCH_UPSTREAM=0`): upstream kube-apiserver with its
//! controllers and a simulated node (the test kit's `RealHost`, built by
//! `tools/upstream/build`). Per kind and N, samples interleaved: `direct`,
//! kube-rs writing the N translated copies into a fresh host namespace,
//! and `live`, the syncer (the virtual API server in a child process, as
//! above) syncing the tenant's N objects into a fresh host namespace; both
//! counted by the same watch of the host. `ratio_to_direct` per sample,
//! median.
//!
//! `cargo bench --bench sync_throughput`. Environment:
//! `VCLUSTER_BENCH_QUICK=1` (N = 200 and 1,000, fewer samples),
//! `VCLUSTER_BENCH_SIZES=1000,10000`, `VCLUSTER_BENCH_KINDS=configmaps,pods`,
//! `VCLUSTER_BENCH_CONCURRENCY` (default 8, the engine's default workers),
//! `VCLUSTER_BENCH_SAMPLES`, `VCLUSTER_BENCH_STATUS_PODS` (default 1,000);
//! for profiling, `VCLUSTER_BENCH_MODES=live` and
//! `VCLUSTER_BENCH_PARTS=throughput` (of `throughput,memory,status,real_host`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::Method;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use vcluster::apiserver::storage::MemoryStorage;
use vcluster::apiserver::{ApiServer, ApiServerConfig};
use vcluster::core::prelude::*;
use vcluster::core::{SingleNamespaceTranslator, VirtualKey};
use vcluster::syncer::engine::MetricsSnapshot;
use vcluster::syncer::syncers::pods::translate::host_pod;
use vcluster::syncer::{EngineHandle, Selection, SyncConfig, VirtualClusterSyncer};
use vcluster_testkit::bench::http::{
    contains, for_each_line, send_all, Request, Target, JSON, MERGE_PATCH,
};
use vcluster_testkit::bench::memory::{cpu_time, rss_bytes, CountingAlloc};
use vcluster_testkit::bench::report::{note, Line};
use vcluster_testkit::bench::servers::{child_role, run_child, serve_child_server, ChildServer};
use vcluster_testkit::bench::stats::{per_second, Latencies, Spread};
use vcluster_testkit::real_host::{RealHost, RealHostOptions};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

const VCLUSTER: &str = "bench";
const HOST_NAMESPACE: &str = "vcluster-bench";
const NAMESPACE: &str = "default";
/// The longest any single wait may take before the bench gives up.
const DEADLINE: Duration = Duration::from_secs(180);

/// What to run.
struct Params {
    kinds: Vec<Kind>,
    sizes: Vec<usize>,
    /// Samples for N <= 1,000 and for larger N.
    samples: usize,
    large_samples: usize,
    concurrency: usize,
    status_pods: usize,
    status_rounds: usize,
    /// Which modes and parts run (all by default; fewer for profiling).
    modes: Vec<&'static str>,
    parts: Vec<String>,
}

impl Params {
    fn from_env() -> Self {
        let quick = vcluster_testkit::bench::quick();
        let kinds = std::env::var("VCLUSTER_BENCH_KINDS")
            .unwrap_or_else(|_| "configmaps,pods".into())
            .split(',')
            .map(|name| {
                Kind::from_name(name.trim()).unwrap_or_else(|| {
                    panic!("VCLUSTER_BENCH_KINDS: unknown kind {name:?} (configmaps, pods)")
                })
            })
            .collect();
        let default_sizes: &[usize] = if quick {
            &[200, 1_000]
        } else {
            &[1_000, 10_000]
        };
        Self {
            kinds,
            sizes: vcluster_testkit::bench::env_sizes("VCLUSTER_BENCH_SIZES", default_sizes),
            samples: vcluster_testkit::bench::env_usize(
                "VCLUSTER_BENCH_SAMPLES",
                if quick { 2 } else { 5 },
            ),
            large_samples: vcluster_testkit::bench::env_usize(
                "VCLUSTER_BENCH_SAMPLES",
                if quick { 2 } else { 3 },
            ),
            concurrency: vcluster_testkit::bench::env_usize("VCLUSTER_BENCH_CONCURRENCY", 8),
            status_pods: vcluster_testkit::bench::env_usize(
                "VCLUSTER_BENCH_STATUS_PODS",
                if quick { 200 } else { 1_000 },
            ),
            status_rounds: if quick { 1 } else { 3 },
            modes: match std::env::var("VCLUSTER_BENCH_MODES") {
                Ok(list) => MODES
                    .into_iter()
                    .filter(|m| list.split(',').any(|l| l.trim() == *m))
                    .collect(),
                Err(_) => MODES.to_vec(),
            },
            parts: std::env::var("VCLUSTER_BENCH_PARTS")
                .unwrap_or_else(|_| "throughput,memory,status,real_host".into())
                .split(',')
                .map(|p| p.trim().to_owned())
                .collect(),
        }
    }
}

/// The kinds the bench syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ConfigMaps,
    Pods,
}

impl Kind {
    /// The resource (and the syncer's name).
    fn name(self) -> &'static str {
        match self {
            Kind::ConfigMaps => "configmaps",
            Kind::Pods => "pods",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Kind::ConfigMaps, Kind::Pods]
            .into_iter()
            .find(|k| k.name() == name)
    }

    fn collection(self, namespace: &str) -> String {
        format!("/api/v1/namespaces/{namespace}/{}", self.name())
    }

    fn api_resource(self) -> ApiResource {
        match self {
            Kind::ConfigMaps => ApiResource::erase::<ConfigMap>(&()),
            Kind::Pods => ApiResource::erase::<Pod>(&()),
        }
    }

    /// The tenant's object `name`, as JSON.
    fn virtual_object(self, name: &str) -> Value {
        match self {
            Kind::ConfigMaps => {
                vcluster_testkit::bench::fixtures::config_map_json(NAMESPACE, name, 1)
            }
            Kind::Pods => {
                serde_json::to_value(vcluster_testkit::bench::fixtures::pod(NAMESPACE, name))
                    .expect("a pod encodes as JSON")
            }
        }
    }

    fn object_name(self, i: usize) -> String {
        match self {
            Kind::ConfigMaps => format!("cm-{i:05}"),
            Kind::Pods => format!("pod-{i:05}"),
        }
    }

    /// The default configuration, plus every configmap for the configmap
    /// runs (by default only those a pod refers to are synced).
    fn sync_config(self, workers: usize) -> SyncConfig {
        let mut config = SyncConfig::new(VCLUSTER, HOST_NAMESPACE);
        config.engine.workers = workers;
        if self == Kind::ConfigMaps {
            config.syncers.config_maps = Selection::All;
        }
        config
    }
}

fn json_body(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("JSON values always encode"))
}

/// The objects of one (kind, N), made before any clock starts.
struct Workload {
    kind: Kind,
    /// What the tenant writes to the virtual cluster.
    virtual_bodies: Vec<Bytes>,
    /// The host copies the syncer makes of them, as request bodies...
    host_bodies: Vec<Bytes>,
    /// ...and as kube-rs objects.
    host_objects: Vec<DynamicObject>,
}

impl Workload {
    fn len(&self) -> usize {
        self.virtual_bodies.len()
    }

    /// The tenant's objects only (no host copies), for runs that need no
    /// baseline.
    fn virtual_only(kind: Kind, n: usize) -> Self {
        Self {
            kind,
            virtual_bodies: (0..n)
                .map(|i| json_body(&kind.virtual_object(&kind.object_name(i))))
                .collect(),
            host_bodies: Vec::new(),
            host_objects: Vec::new(),
        }
    }

    /// The tenant's objects and their exact host copies. The copies are
    /// translated (with the syncer's own code) from the objects as a
    /// virtual API server stores them, defaults applied, which is what the
    /// syncer sees: a scratch in-process server makes them once.
    async fn prepare(kind: Kind, n: usize) -> Self {
        let scratch = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new())))
            .await
            .expect("the scratch API server starts");
        let client = scratch.client();
        let translator =
            SingleNamespaceTranslator::new(VCLUSTER, HOST_NAMESPACE).expect("a valid translator");
        let namespace_labels = Api::<Namespace>::all(client.clone())
            .get(NAMESPACE)
            .await
            .expect("the default namespace exists")
            .metadata
            .labels;
        let environment = kind.sync_config(1).pod_environment;
        let translator = &translator;
        let namespace_labels = &namespace_labels;
        let environment = &environment;
        let hosts: Vec<Value> = futures::stream::iter(0..n)
            .map(|i| {
                let client = client.clone();
                async move {
                    let object = kind.virtual_object(&kind.object_name(i));
                    let params = PostParams::default();
                    match kind {
                        Kind::ConfigMaps => {
                            let object: ConfigMap =
                                serde_json::from_value(object).expect("the fixture is a ConfigMap");
                            let stored = Api::namespaced(client, NAMESPACE)
                                .create(&params, &object)
                                .await
                                .expect("the scratch server stores a configmap");
                            let host = translator
                                .host_object(&stored)
                                .expect("a configmap translates");
                            serde_json::to_value(host).expect("a configmap encodes")
                        }
                        Kind::Pods => {
                            let object: Pod =
                                serde_json::from_value(object).expect("the fixture is a Pod");
                            let stored = Api::namespaced(client, NAMESPACE)
                                .create(&params, &object)
                                .await
                                .expect("the scratch server stores a pod");
                            let host = host_pod(
                                translator,
                                &stored,
                                namespace_labels.as_ref(),
                                environment,
                            )
                            .expect("a pod translates");
                            serde_json::to_value(host).expect("a pod encodes")
                        }
                    }
                }
            })
            .buffered(8)
            .collect()
            .await;
        scratch.shutdown();
        let mut workload = Self::virtual_only(kind, n);
        workload.host_bodies = hosts.iter().map(json_body).collect();
        workload.host_objects = hosts
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("a host object is a DynamicObject"))
            .collect();
        workload
    }

    /// The first `n` objects (for warm-up runs).
    fn prefix(&self, n: usize) -> Self {
        Self {
            kind: self.kind,
            virtual_bodies: self.virtual_bodies.iter().take(n).cloned().collect(),
            host_bodies: self.host_bodies.iter().take(n).cloned().collect(),
            host_objects: self.host_objects.iter().take(n).cloned().collect(),
        }
    }

    fn create_requests(bodies: &[Bytes], collection: &str) -> Vec<Request> {
        bodies
            .iter()
            .map(|b| Request::json(Method::POST, collection, b.clone()))
            .collect()
    }
}

/// Counts the objects added to one host collection, noting when each was
/// seen. A raw watch that only looks for `"type":"ADDED"`, so counting
/// costs this process little; every mode counts the same way.
struct AddedCounter {
    seen: Arc<Mutex<Vec<Instant>>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl AddedCounter {
    /// Watches `collection`, which must be empty, with room for
    /// `capacity` objects (allocated now, not while counting).
    async fn start(target: &Target, collection: &str, capacity: usize) -> Self {
        let mut client = target.connect().await.expect("connect the counter");
        let body = client
            .watch(&format!("{collection}?watch=true"))
            .await
            .expect("watch the host collection");
        let seen = Arc::new(Mutex::new(Vec::with_capacity(capacity)));
        let changed = Arc::new(Notify::new());
        let task = {
            let (seen, changed) = (seen.clone(), changed.clone());
            tokio::spawn(async move {
                // The watch ends with an error when the server is stopped
                // at the end of a run; a watch that fails earlier shows as
                // a timeout in `wait_for`.
                let _ = for_each_line(body, |line| {
                    if contains(line, br#""type":"ADDED""#) {
                        seen.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(Instant::now());
                        changed.notify_waiters();
                    }
                    true
                })
                .await;
            })
        };
        Self {
            seen,
            changed,
            task,
        }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Waits until `n` objects were added; returns when the `n`th was seen.
    async fn wait_for(&self, n: usize) -> Instant {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.changed.notified();
            if let Some(at) = self
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(n - 1)
            {
                return *at;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "only {} of {n} objects arrived on the host within {DEADLINE:?}",
                    self.count()
                );
            }
        }
    }
}

impl Drop for AddedCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A virtual and a host API server, each in a child process, with the
/// host namespace created.
struct Clusters {
    virtual_cluster: ChildServer,
    host: ChildServer,
}

impl Clusters {
    async fn start() -> Self {
        let (virtual_cluster, host) = tokio::join!(ChildServer::spawn(), ChildServer::spawn());
        create_host_namespace(&host).await;
        Self {
            virtual_cluster,
            host,
        }
    }
}

async fn create_host_namespace(host: &ChildServer) {
    let mut client = host.target().connect().await.expect("connect to the host");
    let body =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": HOST_NAMESPACE}});
    client
        .call(
            Method::POST,
            "/api/v1/namespaces",
            Some((JSON, json_body(&body))),
        )
        .await
        .expect("create the host namespace");
}

/// The syncer under test, running in the background.
struct RunningSyncer {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    engines: Vec<Arc<dyn EngineHandle>>,
}

impl RunningSyncer {
    fn start(kind: Kind, workers: usize, clusters: &Clusters) -> Self {
        let syncer = VirtualClusterSyncer::new(
            kind.sync_config(workers),
            clusters.virtual_cluster.kube_client(),
            clusters.host.kube_client(),
        )
        .expect("a valid syncer configuration");
        let engines = syncer.engines();
        let cancel = syncer.cancel_token();
        let task = tokio::spawn(syncer.run());
        Self {
            cancel,
            task,
            engines,
        }
    }

    fn metrics(&self, kind: Kind) -> MetricsSnapshot {
        self.engines
            .iter()
            .find(|e| e.name() == kind.name())
            .map(|e| e.metrics())
            .unwrap_or_default()
    }

    /// Waits until no engine has queued or running work, five polls in a
    /// row.
    async fn wait_idle(&self) {
        let mut quiet = 0;
        let idle = vcluster_testkit::bench::wait_until(DEADLINE, || {
            let busy = self.engines.iter().any(|e| {
                let m = e.metrics();
                m.queue_depth > 0 || m.in_flight > 0
            });
            quiet = if busy { 0 } else { quiet + 1 };
            quiet >= 5
        })
        .await;
        assert!(idle, "the syncer did not become idle within {DEADLINE:?}");
    }

    async fn stop(self) {
        self.cancel.cancel();
        if tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .is_err()
        {
            note("the syncer did not stop within 15s");
        }
    }
}

/// CPU time used by each process over a timed run.
#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    /// This process: the syncer (or the direct writer), plus the bench's
    /// raw tenant writer and host counter.
    bench: Duration,
    virtual_server: Duration,
    host_server: Duration,
}

impl Cpu {
    fn now(virtual_cluster: Option<&ChildServer>, host: &ChildServer) -> Self {
        Self {
            bench: cpu_time().unwrap_or_default(),
            virtual_server: virtual_cluster.map(|v| v.cpu_time()).unwrap_or_default(),
            host_server: host.cpu_time(),
        }
    }

    fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            bench: self.bench.saturating_sub(earlier.bench),
            virtual_server: self.virtual_server.saturating_sub(earlier.virtual_server),
            host_server: self.host_server.saturating_sub(earlier.host_server),
        }
    }

    fn add(self, other: Cpu) -> Cpu {
        Cpu {
            bench: self.bench + other.bench,
            virtual_server: self.virtual_server + other.virtual_server,
            host_server: self.host_server + other.host_server,
        }
    }
}

/// One sample of one mode.
struct Round {
    objects_per_s: f64,
    /// CPU used over the timed run, by process.
    cpu: Cpu,
    /// Per create request (the writer's; for `backlog` none).
    latencies: Latencies,
    /// Syncer counters over the run (for `live`).
    syncer: Option<MetricsSnapshot>,
}

/// A raw client writes the host copies straight to a fresh host.
async fn direct_raw(workload: &Workload, concurrency: usize) -> Round {
    let host = ChildServer::spawn().await;
    create_host_namespace(&host).await;
    let collection = workload.kind.collection(HOST_NAMESPACE);
    let counter = AddedCounter::start(&host.target(), &collection, workload.len()).await;
    let requests = Workload::create_requests(&workload.host_bodies, &collection);
    let cpu = Cpu::now(None, &host);
    let batch = send_all(&host.target(), concurrency, requests).await;
    let done = counter.wait_for(workload.len()).await;
    Round {
        objects_per_s: per_second(workload.len(), done - batch.started),
        cpu: Cpu::now(None, &host).since(cpu),
        latencies: batch.latencies,
        syncer: None,
    }
}

/// kube-rs writes the host copies straight to a fresh host, from as many
/// tasks as the syncer has workers, sharing one client (as the syncer's
/// workers share theirs).
async fn direct_kube(workload: &Workload, concurrency: usize) -> Round {
    let host = ChildServer::spawn().await;
    create_host_namespace(&host).await;
    let collection = workload.kind.collection(HOST_NAMESPACE);
    let counter = AddedCounter::start(&host.target(), &collection, workload.len()).await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        host.kube_client(),
        HOST_NAMESPACE,
        &workload.kind.api_resource(),
    );
    // One request first, so the client is set up as the syncer's is.
    api.list(&kube::api::ListParams::default().limit(1))
        .await
        .expect("the host answers a list");
    let objects = Arc::new(workload.host_objects.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = Cpu::now(None, &host);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (api, objects, next) = (api.clone(), objects.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Latencies::with_capacity(objects.len() / concurrency + 1);
                let params = PostParams::default();
                while let Some(object) = objects.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let sent = Instant::now();
                    api.create(&params, object)
                        .await
                        .unwrap_or_else(|e| panic!("kube-rs create on the host failed: {e}"));
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Latencies::with_capacity(workload.len());
    for task in tasks {
        latencies.extend(task.await.expect("a writer task panicked"));
    }
    let done = counter.wait_for(workload.len()).await;
    Round {
        objects_per_s: per_second(workload.len(), done - start),
        cpu: Cpu::now(None, &host).since(cpu),
        latencies,
        syncer: None,
    }
}

/// Starts the syncer and proves it works end to end with a first object
/// (both sides listed, connections open); returns it idle.
async fn ready_syncer(
    kind: Kind,
    concurrency: usize,
    clusters: &Clusters,
    counter: &AddedCounter,
) -> RunningSyncer {
    let syncer = RunningSyncer::start(kind, concurrency, clusters);
    probe(kind, &clusters.virtual_cluster, counter).await;
    syncer.wait_idle().await;
    syncer
}

/// A tenant's first object, seen on the host: the syncer works end to end
/// (both sides listed, connections open).
async fn probe(kind: Kind, virtual_cluster: &ChildServer, counter: &AddedCounter) {
    let mut tenant = virtual_cluster
        .target()
        .connect()
        .await
        .expect("connect to the virtual cluster");
    tenant
        .call(
            Method::POST,
            &kind.collection(NAMESPACE),
            Some((JSON, json_body(&kind.virtual_object("probe")))),
        )
        .await
        .expect("create the probe object");
    counter.wait_for(1).await;
}

fn delta(after: &MetricsSnapshot, before: &MetricsSnapshot) -> MetricsSnapshot {
    MetricsSnapshot {
        reconciles: after.reconciles - before.reconciles,
        writes: after.writes - before.writes,
        conflicts: after.conflicts - before.conflicts,
        errors: after.errors - before.errors,
        ..after.clone()
    }
}

/// The syncer runs; a tenant writes the objects to the virtual cluster;
/// done when the host has them all.
async fn live(workload: &Workload, concurrency: usize) -> Round {
    let kind = workload.kind;
    let clusters = Clusters::start().await;
    let counter = AddedCounter::start(
        &clusters.host.target(),
        &kind.collection(HOST_NAMESPACE),
        workload.len() + 1,
    )
    .await;
    let syncer = ready_syncer(kind, concurrency, &clusters, &counter).await;
    let before = syncer.metrics(kind);
    let requests = Workload::create_requests(&workload.virtual_bodies, &kind.collection(NAMESPACE));
    let cpu = Cpu::now(Some(&clusters.virtual_cluster), &clusters.host);
    let batch = send_all(&clusters.virtual_cluster.target(), concurrency, requests).await;
    let done = counter.wait_for(workload.len() + 1).await;
    let cpu = Cpu::now(Some(&clusters.virtual_cluster), &clusters.host).since(cpu);
    syncer.wait_idle().await;
    let counters = delta(&syncer.metrics(kind), &before);
    syncer.stop().await;
    Round {
        objects_per_s: per_second(workload.len(), done - batch.started),
        cpu,
        latencies: batch.latencies,
        syncer: Some(counters),
    }
}

/// The objects exist before the syncer starts; done when the host has
/// them all.
async fn backlog(workload: &Workload, concurrency: usize) -> Round {
    let kind = workload.kind;
    let clusters = Clusters::start().await;
    let requests = Workload::create_requests(&workload.virtual_bodies, &kind.collection(NAMESPACE));
    send_all(&clusters.virtual_cluster.target(), concurrency, requests).await;
    let counter = AddedCounter::start(
        &clusters.host.target(),
        &kind.collection(HOST_NAMESPACE),
        workload.len(),
    )
    .await;
    let cpu = Cpu::now(Some(&clusters.virtual_cluster), &clusters.host);
    let start = Instant::now();
    let syncer = RunningSyncer::start(kind, concurrency, &clusters);
    let done = counter.wait_for(workload.len()).await;
    let cpu = Cpu::now(Some(&clusters.virtual_cluster), &clusters.host).since(cpu);
    syncer.stop().await;
    Round {
        objects_per_s: per_second(workload.len(), done - start),
        cpu,
        latencies: Latencies::default(),
        syncer: None,
    }
}

const MODES: [&str; 4] = ["direct_raw", "direct_kube", "live", "backlog"];

async fn run_mode(mode: &str, workload: &Workload, concurrency: usize) -> Round {
    match mode {
        "direct_raw" => direct_raw(workload, concurrency).await,
        "direct_kube" => direct_kube(workload, concurrency).await,
        "live" => live(workload, concurrency).await,
        "backlog" => backlog(workload, concurrency).await,
        _ => unreachable!("MODES lists every mode"),
    }
}

/// All modes for one (kind, N), samples interleaved so that machine noise
/// hits every mode alike; one line per mode.
async fn throughput(kind: Kind, n: usize, params: &Params) {
    note(format!("sync_throughput: {} x{n}: preparing", kind.name()));
    // The host copies are only needed by the direct modes.
    let workload = if params.modes.iter().any(|m| m.starts_with("direct")) {
        Workload::prepare(kind, n).await
    } else {
        Workload::virtual_only(kind, n)
    };
    // Warm-up, not reported: child processes, connections, code paths.
    let warm = workload.prefix(n.min(200));
    for &mode in &params.modes {
        run_mode(mode, &warm, params.concurrency).await;
    }
    let samples = if n > 1_000 {
        params.large_samples
    } else {
        params.samples
    };
    let mut rounds: HashMap<&str, Vec<Round>> = HashMap::new();
    for sample in 0..samples {
        note(format!(
            "sync_throughput: {} x{n}: sample {}/{samples}",
            kind.name(),
            sample + 1
        ));
        for &mode in &params.modes {
            let round = run_mode(mode, &workload, params.concurrency).await;
            rounds.entry(mode).or_default().push(round);
        }
    }
    let rates = |mode: &str| -> Vec<f64> { rounds[mode].iter().map(|r| r.objects_per_s).collect() };
    let ratios = |mode: &str, baseline: &str| -> Spread {
        let per_sample: Vec<f64> = rates(mode)
            .iter()
            .zip(rates(baseline))
            .map(|(m, b)| m / b)
            .collect();
        Spread::of(&per_sample)
    };
    for &mode in &params.modes {
        let mut latencies = Latencies::default();
        for round in &rounds[mode] {
            latencies.extend(round.latencies.clone());
        }
        let mut line = Line::new("sync_throughput")
            .tag("kind", kind.name())
            .tag("n", n)
            .tag("mode", mode)
            .tag("concurrency", params.concurrency)
            .spread("objects_per_s", Spread::of(&rates(mode)), 1);
        let baselines = ["direct_kube", "direct_raw"].map(|b| params.modes.contains(&b));
        if (mode == "live" || mode == "backlog") && baselines == [true, true] {
            line = line
                .num("ratio_to_direct", ratios(mode, "direct_kube").median, 3)
                .num("ratio_to_direct_raw", ratios(mode, "direct_raw").median, 3);
        }
        let cpu = rounds[mode]
            .iter()
            .fold(Cpu::default(), |sum, r| sum.add(r.cpu));
        let objects = (n * rounds[mode].len()) as f64;
        let micros = |d: Duration| d.as_secs_f64() * 1e6 / objects;
        line = line
            .num("cpu_us_per_object_bench", micros(cpu.bench), 1)
            .num("cpu_us_per_object_virtual", micros(cpu.virtual_server), 1)
            .num("cpu_us_per_object_host", micros(cpu.host_server), 1);
        if !latencies.is_empty() {
            line = line.latencies("write", latencies.summary());
        }
        if let Some(counters) = rounds[mode].iter().find_map(|r| r.syncer.as_ref()) {
            line = line
                .num(
                    "reconciles_per_object",
                    counters.reconciles as f64 / n as f64,
                    2,
                )
                .num("writes_per_object", counters.writes as f64 / n as f64, 2)
                .tag("conflicts", counters.conflicts)
                .tag("errors", counters.errors);
        }
        line.print();
    }
}

/// Status back at `params.status_pods` pods: host pod status patched (as
/// a kubelet would) -> the change visible on the virtual pod through a
/// watch of the virtual cluster. Latency from sending the host patch.
async fn status_back(params: &Params) {
    let n = params.status_pods;
    note(format!("sync_status_back: {n} pods"));
    let kind = Kind::Pods;
    let workload = Workload::virtual_only(kind, n);
    let clusters = Clusters::start().await;
    let counter = AddedCounter::start(
        &clusters.host.target(),
        &kind.collection(HOST_NAMESPACE),
        n + 1,
    )
    .await;
    let syncer = ready_syncer(kind, params.concurrency, &clusters, &counter).await;
    let requests = Workload::create_requests(&workload.virtual_bodies, &kind.collection(NAMESPACE));
    send_all(
        &clusters.virtual_cluster.target(),
        params.concurrency,
        requests,
    )
    .await;
    counter.wait_for(n + 1).await;
    syncer.wait_idle().await;

    // When each virtual pod first showed each round's status message.
    let seen: Arc<Mutex<HashMap<(String, u64), Instant>>> = Arc::default();
    let changed = Arc::new(Notify::new());
    let mut watch_client = clusters
        .virtual_cluster
        .target()
        .connect()
        .await
        .expect("connect the virtual watcher");
    let body = watch_client
        .watch(&format!("{}?watch=true", kind.collection(NAMESPACE)))
        .await
        .expect("watch the virtual pods");
    let watcher = {
        let (seen, changed) = (seen.clone(), changed.clone());
        tokio::spawn(async move {
            let _ = for_each_line(body, |line| {
                let Ok(event) = serde_json::from_slice::<Value>(line) else {
                    return true;
                };
                let object = &event["object"];
                let round = object["status"]["message"]
                    .as_str()
                    .and_then(|m| m.strip_prefix("round-"))
                    .and_then(|r| r.parse::<u64>().ok());
                if let (Some(name), Some(round)) = (object["metadata"]["name"].as_str(), round) {
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry((name.to_owned(), round))
                        .or_insert_with(Instant::now);
                    changed.notify_waiters();
                }
                true
            })
            .await;
        })
    };
    let wait_seen = |name: String, round: u64| {
        let (seen, changed) = (seen.clone(), changed.clone());
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let notified = changed.notified();
                if let Some(at) = seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&(name.clone(), round))
                {
                    return Some(*at);
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return None;
                }
            }
        }
    };

    let translator =
        SingleNamespaceTranslator::new(VCLUSTER, HOST_NAMESPACE).expect("a valid translator");
    let pods: Vec<(String, String)> = (0..n)
        .map(|i| {
            let name = kind.object_name(i);
            let host = translator
                .host_key(&VirtualKey::namespaced(NAMESPACE, name.as_str()))
                .expect("a valid name translates");
            (name, host.name().to_owned())
        })
        .collect();
    let patch = |i: usize, round: u64, host_name: &str| {
        let status = json!({"status": {
            "phase": "Running",
            "message": format!("round-{round}"),
            "podIP": format!("10.244.{}.{}", i / 250, i % 250 + 2),
            "hostIP": "192.168.50.10",
            "conditions": [{"type": "Ready", "status": "True"}],
        }});
        Request {
            method: Method::PATCH,
            path: format!("{}/{host_name}/status", kind.collection(HOST_NAMESPACE)),
            body: Some(json_body(&status)),
            content_type: MERGE_PATCH,
        }
    };
    let host = clusters.host.target();
    let mut round = 0;
    for mode in ["sequential", "burst"] {
        let mut latencies = Latencies::with_capacity(n * params.status_rounds);
        let mut per_round_p99 = Vec::new();
        let mut lost = 0;
        for _ in 0..params.status_rounds {
            round += 1;
            let mut this_round = Latencies::with_capacity(n);
            if mode == "sequential" {
                // One pod at a time: the latency of an idle syncer.
                let mut client = host.connect().await.expect("connect to the host");
                for (i, (name, host_name)) in pods.iter().enumerate() {
                    let request = patch(i, round, host_name);
                    let sent = Instant::now();
                    client
                        .call(
                            request.method,
                            &request.path,
                            request.body.map(|b| (request.content_type, b)),
                        )
                        .await
                        .expect("patch a host pod's status");
                    match wait_seen(name.clone(), round).await {
                        Some(at) => this_round.push(at.saturating_duration_since(sent)),
                        None => lost += 1,
                    }
                }
            } else {
                // Every pod at once, as when a node comes up.
                let requests = pods
                    .iter()
                    .enumerate()
                    .map(|(i, (_, host_name))| patch(i, round, host_name))
                    .collect();
                let batch = send_all(&host, params.concurrency, requests).await;
                for (i, (name, _)) in pods.iter().enumerate() {
                    match wait_seen(name.clone(), round).await {
                        Some(at) => this_round.push(at.saturating_duration_since(batch.sent_at[i])),
                        None => lost += 1,
                    }
                }
            }
            per_round_p99.push(this_round.summary().p99.as_secs_f64() * 1e3);
            latencies.extend(this_round);
        }
        Line::new("sync_status_back")
            .tag("pods", n)
            .tag("mode", mode)
            .tag(
                "concurrency",
                if mode == "burst" {
                    params.concurrency
                } else {
                    1
                },
            )
            .tag("rounds", params.status_rounds)
            .latencies("", latencies.summary())
            .spread("round_p99_ms", Spread::of(&per_round_p99), 3)
            .tag("lost", lost)
            .print();
    }
    watcher.abort();
    syncer.stop().await;
}

/// The role of a memory child: `memory:<kind>:<n>`.
fn memory_role(kind: Kind, n: usize) -> String {
    format!("memory:{}:{n}", kind.name())
}

/// In a fresh child process: resident memory and live heap of this
/// process (the syncer, its clients and caches; the servers are other
/// processes) before and after syncing N objects, per object.
async fn memory_child(kind: Kind, n: usize, concurrency: usize) {
    let workload = Workload::virtual_only(kind, n);
    let clusters = Clusters::start().await;
    let counter = AddedCounter::start(
        &clusters.host.target(),
        &kind.collection(HOST_NAMESPACE),
        n + 1,
    )
    .await;
    let syncer = ready_syncer(kind, concurrency, &clusters, &counter).await;
    let settle = Duration::from_millis(500);
    tokio::time::sleep(settle).await;
    let heap_before = ALLOC.snapshot().live_bytes();
    let rss_before = rss_bytes().unwrap_or_default();
    let host_before = clusters.host.rss_bytes().unwrap_or_default();
    let virtual_before = clusters.virtual_cluster.rss_bytes().unwrap_or_default();

    let requests = Workload::create_requests(&workload.virtual_bodies, &kind.collection(NAMESPACE));
    drop(send_all(&clusters.virtual_cluster.target(), concurrency, requests).await);
    counter.wait_for(n + 1).await;
    syncer.wait_idle().await;
    tokio::time::sleep(settle).await;
    let heap_after = ALLOC.snapshot().live_bytes();
    let rss_after = rss_bytes().unwrap_or_default();
    let host_after = clusters.host.rss_bytes().unwrap_or_default();
    let virtual_after = clusters.virtual_cluster.rss_bytes().unwrap_or_default();

    // For scale: the heap that one decoded copy of each host object takes
    // (the syncer holds a virtual and a host copy of each), each in an
    // `Arc` as in a reflector store. Copied into an exactly sized vector:
    // collecting in place would keep the list's larger buffer alive.
    fn decoded<K>(items: Vec<K>) -> Vec<Arc<dyn std::any::Any>>
    where
        K: std::any::Any,
    {
        let mut copies: Vec<Arc<dyn std::any::Any>> = Vec::with_capacity(items.len());
        for item in items {
            copies.push(Arc::new(item));
        }
        copies
    }
    let host_client = clusters.host.kube_client();
    let typed_before = ALLOC.snapshot().live_bytes();
    let copies = match kind {
        Kind::ConfigMaps => decoded(
            Api::<ConfigMap>::namespaced(host_client, HOST_NAMESPACE)
                .list(&Default::default())
                .await
                .expect("list host configmaps")
                .items,
        ),
        Kind::Pods => decoded(
            Api::<Pod>::namespaced(host_client, HOST_NAMESPACE)
                .list(&Default::default())
                .await
                .expect("list host pods")
                .items,
        ),
    };
    let typed_bytes = ALLOC.snapshot().live_bytes() - typed_before;
    let per_object = |delta: i64| delta as f64 / n as f64;
    Line::new("sync_memory")
        .tag("kind", kind.name())
        .tag("n", n)
        .num(
            "rss_bytes_per_object",
            per_object(rss_after as i64 - rss_before as i64),
            0,
        )
        .num(
            "heap_bytes_per_object",
            per_object(heap_after - heap_before),
            0,
        )
        .num(
            "one_decoded_copy_bytes_per_object",
            typed_bytes as f64 / copies.len().max(1) as f64,
            0,
        )
        .tag(
            "size_of_object",
            match kind {
                Kind::ConfigMaps => std::mem::size_of::<ConfigMap>(),
                Kind::Pods => std::mem::size_of::<Pod>(),
            },
        )
        .num("rss_before_mib", rss_before as f64 / 1048576.0, 1)
        .num("rss_after_mib", rss_after as f64 / 1048576.0, 1)
        .num(
            "host_server_rss_bytes_per_object",
            per_object(host_after as i64 - host_before as i64),
            0,
        )
        .num(
            "virtual_server_rss_bytes_per_object",
            per_object(virtual_after as i64 - virtual_before as i64),
            0,
        )
        .print();
    drop(copies);
    syncer.stop().await;
}

fn main() {
    match child_role().as_deref() {
        Some("server") => return serve_child_server(),
        Some(role) => {
            let mut parts = role.split(':');
            let (Some("memory"), Some(kind), Some(n)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("unknown child role {role:?}");
            };
            let kind = Kind::from_name(kind).expect("a known kind in the child role");
            let n = n.parse().expect("a size in the child role");
            let concurrency = Params::from_env().concurrency;
            return vcluster_testkit::bench::runtime().block_on(memory_child(kind, n, concurrency));
        }
        None => {}
    }
    let params = Params::from_env();
    let part = |name: &str| params.parts.iter().any(|p| p == name);
    vcluster_testkit::bench::runtime().block_on(async {
        if part("throughput") {
            for kind in &params.kinds {
                for n in &params.sizes {
                    throughput(*kind, *n, &params).await;
                }
            }
        }
        if part("memory") {
            for kind in &params.kinds {
                for n in &params.sizes {
                    note(format!("sync_memory: {} x{n}", kind.name()));
                    run_child(&memory_role(*kind, *n)).await;
                }
            }
        }
        if part("status") {
            status_back(&params).await;
        }
    });
    if part("real_host") {
        real_host(&params);
    }
}

// ---------------------------------------------------------------------------
// Against a real kube-apiserver host.

/// The whole `real_host` part: starts the real host, runs every (kind, N).
fn real_host(params: &Params) {
    if matches!(std::env::var("VCLUSTER_BENCH_UPSTREAM"), Ok(v) if v == "0") {
        return;
    }
    let host = match RealHost::start(RealHostOptions::default()) {
        Ok(host) => host,
        Err(err) => {
            note(format!(
                "sync_throughput: no real-host part ({err}); VCLUSTER_BENCH_UPSTREAM=0 skips it quietly"
            ));
            return;
        }
    };
    vcluster_testkit::bench::runtime().block_on(async {
        let mut round = 0;
        for kind in &params.kinds {
            for n in &params.sizes {
                real_host_throughput(&host, *kind, *n, params, &mut round).await;
            }
        }
    });
}

/// A raw-client target of the real host (TLS, as the admin).
fn real_target(host: &RealHost) -> Target {
    let (addr, connector, name) = host
        .tls_connector()
        .expect("a TLS connector to the real host");
    Target::Tls {
        addr,
        connector,
        name,
    }
}

/// A fresh host namespace on the real host, ready for pods (its default
/// service account exists).
async fn real_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("a namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create a namespace on the real host");
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), name);
    vcluster_testkit::eventually_within(
        DEADLINE,
        "the namespace's default service account",
        || async { accounts.get_opt("default").await.ok().flatten() },
    )
    .await;
}

/// kube-rs writes the translated copies straight into a fresh namespace of
/// the real host.
async fn real_direct(host: &RealHost, workload: &Workload, concurrency: usize, ns: &str) -> f64 {
    let client = host.client();
    real_namespace(&client, ns).await;
    let collection = workload.kind.collection(ns);
    let counter = AddedCounter::start(&real_target(host), &collection, workload.len()).await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, ns, &workload.kind.api_resource());
    api.list(&kube::api::ListParams::default().limit(1))
        .await
        .expect("the real host answers a list");
    let objects: Arc<Vec<DynamicObject>> = Arc::new(
        workload
            .host_objects
            .iter()
            .cloned()
            .map(|mut o| {
                o.metadata.namespace = Some(ns.to_owned());
                o
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (api, objects, next) = (api.clone(), objects.clone(), next.clone());
            tokio::spawn(async move {
                let params = PostParams::default();
                while let Some(object) = objects.get(next.fetch_add(1, Ordering::Relaxed)) {
                    api.create(&params, object)
                        .await
                        .unwrap_or_else(|e| panic!("kube-rs create on the real host failed: {e}"));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a writer task panicked");
    }
    let done = counter.wait_for(workload.len()).await;
    per_second(workload.len(), done - start)
}

/// The syncer syncs the tenant's objects from a virtual API server (a child
/// process) into a fresh namespace of the real host.
async fn real_live(host: &RealHost, workload: &Workload, concurrency: usize, ns: &str) -> f64 {
    let kind = workload.kind;
    let client = host.client();
    real_namespace(&client, ns).await;
    let virtual_cluster = ChildServer::spawn().await;
    let counter =
        AddedCounter::start(&real_target(host), &kind.collection(ns), workload.len() + 1).await;
    let mut config = kind.sync_config(concurrency);
    config.host_namespace = ns.to_owned();
    let syncer = VirtualClusterSyncer::new(config, virtual_cluster.kube_client(), client)
        .expect("a valid syncer configuration");
    let cancel = syncer.cancel_token();
    let task = tokio::spawn(syncer.run());
    probe(kind, &virtual_cluster, &counter).await;
    let requests = Workload::create_requests(&workload.virtual_bodies, &kind.collection(NAMESPACE));
    let batch = send_all(&virtual_cluster.target(), concurrency, requests).await;
    let done = counter.wait_for(workload.len() + 1).await;
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
    per_second(workload.len(), done - batch.started)
}

async fn real_host_throughput(
    host: &RealHost,
    kind: Kind,
    n: usize,
    params: &Params,
    round: &mut usize,
) {
    note(format!("sync_real_host: {} x{n}: preparing", kind.name()));
    let workload = Workload::prepare(kind, n).await;
    let mut namespace = || {
        *round += 1;
        format!("bench-real-{round}")
    };
    // Warm-up, not reported.
    let warm = workload.prefix(n.min(200));
    real_direct(host, &warm, params.concurrency, &namespace()).await;
    real_live(host, &warm, params.concurrency, &namespace()).await;
    let samples = if n > 1_000 {
        params.large_samples
    } else {
        params.samples
    };
    let (mut direct, mut live) = (Vec::new(), Vec::new());
    for sample in 0..samples {
        note(format!(
            "sync_real_host: {} x{n}: sample {}/{samples}",
            kind.name(),
            sample + 1
        ));
        direct.push(real_direct(host, &workload, params.concurrency, &namespace()).await);
        live.push(real_live(host, &workload, params.concurrency, &namespace()).await);
    }
    let ratios: Vec<f64> = live.iter().zip(&direct).map(|(l, d)| l / d).collect();
    for (mode, rates) in [("direct", &direct), ("live", &live)] {
        let mut line = Line::new("sync_real_host")
            .tag("kind", kind.name())
            .tag("n", n)
            .tag("mode", mode)
            .tag("concurrency", params.concurrency)
            .spread("objects_per_s", Spread::of(rates), 1);
        if mode == "live" {
            line = line.num("ratio_to_direct", Spread::of(&ratios).median, 3);
        }
        line.print();
    }
}
