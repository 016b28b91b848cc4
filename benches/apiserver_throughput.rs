//! API server throughput per storage backend (memory, SQLite, etcd) and
//! transport (HTTP/1.1 over loopback TCP, or the router called in-process):
//! create, get, list (of 1,000 objects) and update of configmaps by a pool
//! of raw clients, and watch fan-out (one writer, 1,000 watchers of one
//! resource).
//!
//! Against kube-apiserver: unless `VCLUSTER_BENCH_UPSTREAM=0`, the same
//! workload also runs against upstream kube-apiserver (the test kit's real
//! host, built by `tools/upstream/build`) over TLS as the admin, and
//! against our server over TLS with client-certificate authentication and
//! authorization, our etcd backend on kube-apiserver's own etcd; then
//! `name=apiserver_vs_kube_apiserver` lines give ours / kube-apiserver per
//! (backend, operation), measured in the same run.
//!
//! `cargo bench --bench apiserver_throughput`. Environment:
//! - `VCLUSTER_BENCH_QUICK=1`: fewer objects, watchers and samples;
//! - `VCLUSTER_BENCH_BACKENDS=memory,sqlite,etcd` (default all three;
//!   etcd with `--features etcd`);
//! - `VCLUSTER_BENCH_UPSTREAM=0`: no kube-apiserver comparison;
//! - `VCLUSTER_BENCH_CONCURRENCY` (default 8), `VCLUSTER_BENCH_SAMPLES`,
//!   `VCLUSTER_BENCH_OBJECTS`, `VCLUSTER_BENCH_WATCHERS`.
//!
//! One `BENCH name=apiserver_throughput ...` line per (backend, transport,
//! operation), then `name=apiserver_ratio` lines (each backend against
//! memory, in-process against TCP).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use vcluster_testkit::bench::http::{for_each_line, number_after, send_all, Request, Target, JSON};
use vcluster_testkit::bench::report::{note, Line};
use vcluster_testkit::bench::servers::{Backend, LocalServer, Stores, Transport};
use vcluster_testkit::bench::stats::{per_second, Latencies, Spread};
use vcluster_testkit::real_host::{RealHost, RealHostOptions};

/// What to run.
struct Params {
    concurrency: usize,
    samples: usize,
    /// Objects created, read and updated per sample (and listed at once).
    objects: usize,
    /// Full lists per sample.
    lists: usize,
    watchers: usize,
    /// Writes per fan-out sample.
    fanout_events: usize,
    /// Pace of the writer in the latency run.
    fanout_rate: f64,
    fanout_samples: usize,
}

impl Params {
    fn from_env() -> Self {
        let quick = vcluster_testkit::bench::quick();
        Self {
            concurrency: vcluster_testkit::bench::env_usize("VCLUSTER_BENCH_CONCURRENCY", 8),
            samples: vcluster_testkit::bench::env_usize(
                "VCLUSTER_BENCH_SAMPLES",
                if quick { 2 } else { 5 },
            ),
            objects: vcluster_testkit::bench::env_usize(
                "VCLUSTER_BENCH_OBJECTS",
                if quick { 200 } else { 1_000 },
            ),
            lists: if quick { 10 } else { 40 },
            watchers: vcluster_testkit::bench::env_usize(
                "VCLUSTER_BENCH_WATCHERS",
                if quick { 100 } else { 1_000 },
            ),
            fanout_events: if quick { 30 } else { 100 },
            fanout_rate: 20.0,
            fanout_samples: if quick { 2 } else { 3 },
        }
    }
}

/// The CRUD operations, in the order a sample runs them.
const OPERATIONS: [&str; 4] = ["create", "get", "list", "update"];

/// Per-operation results over all samples.
#[derive(Default)]
struct OpResult {
    requests_per_s: Vec<f64>,
    objects_per_s: Vec<f64>,
    latencies: Latencies,
    requests: usize,
}

fn collection(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps")
}

/// One sample: a fresh namespace, `objects` creates, as many gets, `lists`
/// lists of the whole namespace and `objects` updates.
async fn crud_sample(
    target: &Target,
    params: &Params,
    namespace: &str,
    results: &mut BTreeMap<&'static str, OpResult>,
) {
    let mut admin = target.connect().await.expect("connect the admin client");
    let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    admin
        .call(
            Method::POST,
            "/api/v1/namespaces",
            Some((JSON, Bytes::from(body.to_string()))),
        )
        .await
        .expect("create the sample's namespace");
    let path = collection(namespace);
    let n = params.objects;
    let name = |i: usize| format!("cm-{i:05}");
    for op in OPERATIONS {
        let requests: Vec<Request> = match op {
            "create" => (0..n)
                .map(|i| {
                    let body = vcluster_testkit::bench::fixtures::config_map_body(
                        namespace,
                        &name(i),
                        i as u64,
                    );
                    Request::json(Method::POST, path.clone(), body)
                })
                .collect(),
            // A fixed stride visits every object once, not in order.
            "get" => (0..n)
                .map(|i| Request::get(format!("{path}/{}", name(i * 7919 % n))))
                .collect(),
            "list" => (0..params.lists)
                .map(|_| Request::get(path.clone()))
                .collect(),
            // Unconditional updates (no resourceVersion) with new data.
            "update" => (0..n)
                .map(|i| {
                    let seq = (n + i) as u64;
                    let body = vcluster_testkit::bench::fixtures::config_map_body(
                        namespace,
                        &name(i),
                        seq,
                    );
                    Request::json(Method::PUT, format!("{path}/{}", name(i)), body)
                })
                .collect(),
            _ => unreachable!("OPERATIONS lists every operation"),
        };
        let count = requests.len();
        let batch = send_all(target, params.concurrency, requests).await;
        if op == "list" {
            assert!(
                batch.bytes > count * n * 100,
                "a list of {n} configmaps returned only {} bytes per list",
                batch.bytes / count.max(1)
            );
        }
        let result = results.entry(op).or_default();
        let rate = per_second(count, batch.elapsed);
        result.requests_per_s.push(rate);
        result
            .objects_per_s
            .push(if op == "list" { rate * n as f64 } else { rate });
        result.requests += count;
        result.latencies.extend(batch.latencies);
    }
}

/// Medians of one (backend, transport): requests per second by operation.
type Medians = BTreeMap<&'static str, f64>;

async fn crud(target: &Target, backend: &str, params: &Params, run: &str) -> Medians {
    // Warm-up: a sample that is not reported (connections, allocator,
    // storage files, the watch cache's first events).
    let warm = Params {
        objects: params.objects.min(200),
        lists: 2,
        ..Params::from_env()
    };
    crud_sample(target, &warm, &format!("warm-{run}"), &mut BTreeMap::new()).await;
    let mut results = BTreeMap::new();
    for sample in 0..params.samples {
        crud_sample(
            target,
            params,
            &format!("bench-{run}-{sample}"),
            &mut results,
        )
        .await;
    }
    let mut medians = Medians::new();
    for op in OPERATIONS {
        let result = &results[op];
        let rate = Spread::of(&result.requests_per_s);
        medians.insert(op, rate.median);
        let mut line = Line::new("apiserver_throughput")
            .tag("backend", backend)
            .tag("transport", target.transport())
            .tag("op", op)
            .tag("objects", params.objects)
            .tag("concurrency", params.concurrency)
            .tag("requests", result.requests)
            .spread("req_per_s", rate, 1);
        if op == "list" {
            line = line.num("objects_per_s", Spread::of(&result.objects_per_s).median, 0);
        }
        line.latencies("", result.latencies.summary()).print();
    }
    medians
}

/// Deliveries of one fan-out sample.
struct Fanout {
    /// Events received by all watchers together.
    delivered: usize,
    expected: usize,
    /// From the first write to the last receipt.
    elapsed: Duration,
    /// Write acknowledged -> line received, per delivery.
    latencies: Latencies,
    /// Write sent -> line received, per delivery (an upper bound: it
    /// includes the write itself).
    from_send: Latencies,
    /// Deliveries read before the writer had read its acknowledgement
    /// (their ack latency counts as zero).
    before_ack: usize,
}

/// One writer updates one configmap `events` times (at `rate` per second,
/// or as fast as it is answered); `watchers` clients watch the configmaps
/// of the namespace. Latency: from the writer's acknowledgement of write
/// `n` to a watcher reading the line of event `n`.
async fn fanout_sample(
    target: &Target,
    watchers: usize,
    events: usize,
    rate: Option<f64>,
    namespace: &str,
) -> Fanout {
    let mut writer = target.connect().await.expect("connect the writer");
    let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    writer
        .call(
            Method::POST,
            "/api/v1/namespaces",
            Some((JSON, Bytes::from(body.to_string()))),
        )
        .await
        .expect("create the fan-out namespace");
    let path = collection(namespace);
    let created = writer
        .call(
            Method::POST,
            &path,
            Some((
                JSON,
                vcluster_testkit::bench::fixtures::config_map_body(namespace, "target", 1_000_000),
            )),
        )
        .await
        .expect("create the watched configmap");
    let created: serde_json::Value =
        serde_json::from_slice(&created).expect("the server answers a create with JSON");
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("a created object has a resourceVersion")
        .to_owned();

    // Watchers: connected and answered (the watch is registered) before
    // the first write.
    let watch_path = format!("{path}?watch=true&resourceVersion={rv}");
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let mut client = target.connect().await.expect("connect a watcher");
        let body = client.watch(&watch_path).await.expect("open a watch");
        ready.fetch_add(1, Ordering::Relaxed);
        tasks.push(tokio::spawn(async move {
            let mut received: Vec<(u64, Instant)> = Vec::with_capacity(events);
            let result = for_each_line(body, |line| {
                if let Some(seq) = number_after(line, b"\"seq\":\"") {
                    received.push((seq, Instant::now()));
                    return seq + 1 < events as u64;
                }
                true
            })
            .await;
            if let Err(err) = result {
                note(format!("a watch ended with an error: {err}"));
            }
            received
        }));
    }
    assert_eq!(ready.load(Ordering::Relaxed), watchers);

    let acks: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; events]));
    let mut sent = Vec::with_capacity(events);
    let start = Instant::now();
    for seq in 0..events {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(seq as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        sent.push(Instant::now());
        writer
            .call(
                Method::PUT,
                &format!("{path}/target"),
                Some((
                    JSON,
                    vcluster_testkit::bench::fixtures::config_map_body(
                        namespace, "target", seq as u64,
                    ),
                )),
            )
            .await
            .expect("the writer's update is accepted");
        acks.lock().unwrap_or_else(|p| p.into_inner())[seq] = Some(Instant::now());
    }

    let deadline = Duration::from_secs(30);
    let mut latencies = Latencies::with_capacity(watchers * events);
    let mut from_send = Latencies::with_capacity(watchers * events);
    let mut delivered = 0;
    let mut before_ack = 0;
    let mut last = start;
    let acks = acks.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for task in tasks {
        let received = match tokio::time::timeout(deadline, task).await {
            Ok(received) => received.expect("a watcher task panicked"),
            Err(_) => {
                note("a watcher did not receive every event within 30s");
                continue;
            }
        };
        for (seq, at) in received {
            let Some(Some(ack)) = acks.get(seq as usize) else {
                continue;
            };
            delivered += 1;
            last = last.max(at);
            if at < *ack {
                before_ack += 1;
            }
            latencies.push(at.saturating_duration_since(*ack));
            from_send.push(at.saturating_duration_since(sent[seq as usize]));
        }
    }
    Fanout {
        delivered,
        expected: watchers * events,
        elapsed: last - start,
        latencies,
        from_send,
        before_ack,
    }
}

async fn fanout(target: &Target, backend: &str, params: &Params, run: &str) {
    // Warm-up: connections and the watch path, not reported.
    fanout_sample(
        target,
        params.watchers.min(100),
        10,
        None,
        &format!("fanout-warm-{run}"),
    )
    .await;
    for (mode, rate) in [("paced", Some(params.fanout_rate)), ("max", None)] {
        let mut rates = Vec::new();
        let mut latencies = Latencies::default();
        let mut from_send = Latencies::default();
        let (mut delivered, mut expected, mut before_ack) = (0, 0, 0);
        for sample in 0..params.fanout_samples {
            let result = fanout_sample(
                target,
                params.watchers,
                params.fanout_events,
                rate,
                &format!("fanout-{run}-{mode}-{sample}"),
            )
            .await;
            rates.push(per_second(result.delivered, result.elapsed));
            delivered += result.delivered;
            expected += result.expected;
            before_ack += result.before_ack;
            latencies.extend(result.latencies);
            from_send.extend(result.from_send);
        }
        let mut line = Line::new("apiserver_throughput")
            .tag("backend", backend)
            .tag("transport", target.transport())
            .tag("op", format!("watch_fanout_{mode}"))
            .tag("watchers", params.watchers)
            .tag("events", params.fanout_events);
        if let Some(rate) = rate {
            line = line.num("writes_per_s", rate, 0);
        }
        line.spread("events_per_s", Spread::of(&rates), 0)
            .num("delivered_fraction", delivered as f64 / expected as f64, 4)
            .tag("before_ack", before_ack)
            .latencies("", latencies.summary())
            .latencies("from_send", from_send.summary())
            .print();
    }
}

/// kube-apiserver, when the comparison runs: the real host (its etcd is
/// where our etcd backend stores too).
fn upstream() -> Option<RealHost> {
    if matches!(std::env::var("VCLUSTER_BENCH_UPSTREAM"), Ok(v) if v == "0") {
        return None;
    }
    match RealHost::start(RealHostOptions::default()) {
        Ok(host) => Some(host),
        Err(err) => {
            note(format!(
                "apiserver_throughput: no kube-apiserver comparison ({err}); set \
                 VCLUSTER_BENCH_UPSTREAM=0 to skip it quietly"
            ));
            None
        }
    }
}

fn main() {
    let params = Params::from_env();
    let backends = Backend::from_env();
    let upstream = upstream();
    vcluster_testkit::bench::runtime().block_on(async {
        let mut stores = Stores::default();
        stores.external_etcd = upstream.as_ref().map(|h| h.etcd_endpoint().to_owned());
        let mut transports = vec![Transport::Tcp, Transport::InProcess];
        if upstream.is_some() {
            transports.push(Transport::Tls);
        }
        // requests/s medians by (backend, transport).
        let mut medians: BTreeMap<(&'static str, &'static str), Medians> = BTreeMap::new();
        for backend in &backends {
            for &transport in &transports {
                let store = stores.open(*backend).await;
                let server = match &upstream {
                    Some(host) => LocalServer::start_with_tls(store, host.pki()).await,
                    None => LocalServer::start(store).await,
                };
                let target = server.target(transport);
                let run = format!("{}-{}", backend.name(), target.transport());
                note(format!("apiserver_throughput: {run}: CRUD"));
                let result = crud(&target, backend.name(), &params, &run).await;
                medians.insert((backend.name(), target.transport()), result);
                note(format!("apiserver_throughput: {run}: watch fan-out"));
                fanout(&target, backend.name(), &params, &run).await;
            }
        }
        if let Some(host) = &upstream {
            let (addr, connector, name) = host
                .tls_connector()
                .expect("a TLS connector to kube-apiserver");
            let target = Target::Tls {
                addr,
                connector,
                name,
            };
            note("apiserver_throughput: kube-apiserver: CRUD");
            let result = crud(&target, KUBE_APISERVER, &params, "kube").await;
            medians.insert((KUBE_APISERVER, "tls"), result);
            note("apiserver_throughput: kube-apiserver: watch fan-out");
            fanout(&target, KUBE_APISERVER, &params, "kube").await;
        }
        for ((backend, transport), ops) in &medians {
            if *backend == KUBE_APISERVER {
                continue;
            }
            for (op, rate) in ops {
                let mut line = Line::new("apiserver_ratio")
                    .tag("backend", backend)
                    .tag("transport", transport)
                    .tag("op", op);
                if let Some(memory) = medians.get(&("memory", transport)) {
                    line = line.num("ratio_to_memory", rate / memory[op], 3);
                }
                if *transport == "inprocess" {
                    if let Some(tcp) = medians.get(&(backend, "tcp")) {
                        line = line.num("inprocess_over_tcp", rate / tcp[op], 3);
                    }
                }
                line.print();
            }
        }
        // Ours over TLS (authenticated, authorized) against kube-apiserver,
        // same run, same machine; our etcd backend on its etcd.
        if let Some(kube) = medians.get(&(KUBE_APISERVER, "tls")) {
            for ((backend, transport), ops) in &medians {
                if *transport != "tls" || *backend == KUBE_APISERVER {
                    continue;
                }
                for (op, rate) in ops {
                    Line::new("apiserver_vs_kube_apiserver")
                        .tag("backend", backend)
                        .tag("op", op)
                        .num("ours_req_per_s", *rate, 1)
                        .num("kube_apiserver_req_per_s", kube[op], 1)
                        .num("ratio", rate / kube[op], 3)
                        .print();
                }
            }
        }
    });
    // The real host stops here (its processes die with this process in
    // any case).
    drop(upstream);
}

/// The backend name of kube-apiserver's lines.
const KUBE_APISERVER: &str = "kube-apiserver";
