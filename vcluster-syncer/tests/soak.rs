//! A bounded soak: many clients write and watch a virtual cluster while the
//! syncer copies everything to the host; at the end every acknowledged
//! write must have reached the host (its final state: data, or absence).
//!
//! Ignored by default (minutes, not seconds):
//!
//! ```text
//! VCLUSTER_SOAK_SECONDS=120 cargo test --release -p vcluster-syncer --test soak -- --ignored --nocapture
//! ```
//!
//! `VCLUSTER_SOAK_SECONDS` (default 120), `VCLUSTER_SOAK_WRITERS` (default
//! 8), `VCLUSTER_SOAK_WATCHERS` (default 8). Prints one `SOAK ...` line with
//! the figures. Loopback only; every loop is bounded by the duration.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{config, start_metered_syncer, Cluster, HOST_SERVICE_CIDR};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use vcluster_core::markers::OBJECT_UID_ANNOTATION;
use vcluster_syncer::runner::Selection;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The last acknowledged state of one virtual object.
#[derive(Clone, Debug, PartialEq)]
enum Expected {
    /// Exists with this data (configmaps) / with this uid (pods).
    Present(String),
    /// Deleted.
    Absent,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    conflicts: AtomicU64,
    watch_events: AtomicU64,
    watch_restarts: AtomicU64,
}

const KEYS_PER_WRITER: u64 = 40;
const NAMESPACES: [&str; 3] = ["default", "team-a", "team-b"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of minutes: run with --ignored (see the module docs)"]
async fn many_clients_writing_and_watching_while_the_syncer_runs() {
    let duration = Duration::from_secs(env("VCLUSTER_SOAK_SECONDS", 120));
    let writers = env("VCLUSTER_SOAK_WRITERS", 8);
    let watchers = env("VCLUSTER_SOAK_WATCHERS", 8);

    let virtual_cluster =
        Cluster::start_configured(|c| c.extra_service_cidrs = vec![HOST_SERVICE_CIDR.into()]).await;
    let host = Cluster::start_configured(|h| h.service_cidr = HOST_SERVICE_CIDR.into()).await;
    let host_ns = "vcluster-soak";
    host.create_namespace(host_ns).await;
    for ns in NAMESPACES {
        virtual_cluster.create_namespace(ns).await;
    }
    let mut sync_config = config("soak", host_ns);
    sync_config.syncers.config_maps = Selection::All;
    let syncer = start_metered_syncer(virtual_cluster.client(), host.client(), sync_config);

    let counters = Arc::new(Counters::default());
    let expected_cms: Arc<Mutex<BTreeMap<(String, String), Expected>>> = Arc::default();
    let expected_pods: Arc<Mutex<BTreeMap<(String, String), Expected>>> = Arc::default();
    let deadline = Instant::now() + duration;
    let started = Instant::now();

    // Watchers: each follows every configmap and pod of the virtual cluster
    // over its own connection, re-watching whenever a watch ends.
    let mut tasks = Vec::new();
    for w in 0..watchers {
        let client = virtual_cluster.client();
        let counters = counters.clone();
        tasks.push(tokio::spawn(async move {
            let cms = watcher(
                Api::<ConfigMap>::all(client.clone()),
                watcher::Config::default(),
            )
            .map(|e| e.map(|_| ()));
            let pods =
                watcher(Api::<Pod>::all(client), watcher::Config::default()).map(|e| e.map(|_| ()));
            let events = futures::stream::select(cms, pods);
            futures::pin_mut!(events);
            loop {
                let next = tokio::time::timeout_at(deadline.into(), events.next()).await;
                match next {
                    Err(_) | Ok(None) => break,
                    Ok(Some(Ok(()))) => {
                        counters.watch_events.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(Err(_))) => {
                        counters.watch_restarts.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50 + w * 10)).await;
                    }
                }
            }
        }));
    }

    // Writers: each owns a pool of keys, and creates, updates and deletes
    // configmaps and pods on them, remembering what was acknowledged.
    for w in 0..writers {
        let client = virtual_cluster.client();
        let counters = counters.clone();
        let expected_cms = expected_cms.clone();
        let expected_pods = expected_pods.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = w.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut version = 0u64;
            while Instant::now() < deadline {
                let key = next() % KEYS_PER_WRITER;
                let namespace = NAMESPACES[(next() % NAMESPACES.len() as u64) as usize];
                let name = format!("w{w}-k{key}");
                let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
                let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
                let id = (namespace.to_owned(), name.clone());
                version += 1;
                let value = format!("w{w}-v{version}");
                let action = next() % 10;
                counters.requests.fetch_add(1, Ordering::Relaxed);
                let result = match action {
                    // Create or update a configmap.
                    0..=5 => {
                        let current = expected_cms
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get(&id)
                            .cloned();
                        let outcome = if matches!(current, Some(Expected::Present(_))) {
                            cms.patch(
                                &name,
                                &PatchParams::default(),
                                &Patch::Merge(json!({"data": {"value": value}})),
                            )
                            .await
                            .map(|_| ())
                        } else {
                            let cm: ConfigMap = common::object(json!({
                                "metadata": {"name": name, "labels": {"writer": format!("w{w}")}},
                                "data": {"value": value},
                            }));
                            cms.create(&PostParams::default(), &cm).await.map(|_| ())
                        };
                        if outcome.is_ok() {
                            expected_cms
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(id, Expected::Present(value));
                        }
                        outcome
                    }
                    // Delete a configmap.
                    6 => {
                        let outcome = cms.delete(&name, &DeleteParams::default()).await;
                        match outcome {
                            Ok(_) => {
                                expected_cms
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .insert(id, Expected::Absent);
                                Ok(())
                            }
                            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                            Err(err) => Err(err),
                        }
                    }
                    // Create a pod, or delete it.
                    _ => {
                        let present = matches!(
                            expected_pods
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get(&id),
                            Some(Expected::Present(_))
                        );
                        if present {
                            match pods
                                .delete(&name, &DeleteParams::default().grace_period(0))
                                .await
                            {
                                Ok(_) => {
                                    expected_pods
                                        .lock()
                                        .unwrap_or_else(|p| p.into_inner())
                                        .insert(id, Expected::Absent);
                                    Ok(())
                                }
                                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                                Err(err) => Err(err),
                            }
                        } else {
                            let pod = common::test_pod(&name, None, &[("writer", "soak")]);
                            match pods.create(&PostParams::default(), &pod).await {
                                Ok(created) => {
                                    let uid = created.metadata.uid.unwrap_or_default();
                                    expected_pods
                                        .lock()
                                        .unwrap_or_else(|p| p.into_inner())
                                        .insert(id, Expected::Present(uid));
                                    Ok(())
                                }
                                Err(err) => Err(err),
                            }
                        }
                    }
                };
                match result {
                    Ok(()) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        counters.conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // A list now and then, as controllers do.
                if next() % 20 == 0 {
                    counters.requests.fetch_add(1, Ordering::Relaxed);
                    if cms.list(&ListParams::default().limit(50)).await.is_err() {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a soak client panicked");
    }
    let load_time = started.elapsed();

    // Every acknowledged final state reaches the host.
    let converge_start = Instant::now();
    let expected_cms = expected_cms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let expected_pods = expected_pods
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let hcms = host.api::<ConfigMap>(host_ns);
    let hpods = host.api::<Pod>(host_ns);
    let host_name = |(ns, name): &(String, String)| {
        vcluster_core::safe_concat_name(&[name, "x", ns, "x", "soak"])
    };
    let mut missing = usize::MAX;
    let converge_deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < converge_deadline {
        let cms: BTreeMap<String, String> = hcms
            .list(&ListParams::default())
            .await
            .expect("list host configmaps")
            .items
            .into_iter()
            .map(|cm| {
                let value = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("value").cloned())
                    .unwrap_or_default();
                (cm.metadata.name.unwrap_or_default(), value)
            })
            .collect();
        // Host pod name -> the uid of the virtual pod it is a copy of.
        let pods: BTreeMap<String, String> = hpods
            .list(&ListParams::default())
            .await
            .expect("list host pods")
            .items
            .into_iter()
            .map(|p| {
                let uid = p
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(OBJECT_UID_ANNOTATION).cloned())
                    .unwrap_or_default();
                (p.metadata.name.unwrap_or_default(), uid)
            })
            .collect();
        missing = expected_cms
            .iter()
            .filter(|(id, state)| match state {
                Expected::Present(value) => cms.get(&host_name(id)) != Some(value),
                Expected::Absent => cms.contains_key(&host_name(id)),
            })
            .count()
            + expected_pods
                .iter()
                .filter(|(id, state)| match state {
                    Expected::Present(uid) => pods.get(&host_name(id)) != Some(uid),
                    Expected::Absent => pods.contains_key(&host_name(id)),
                })
                .count();
        if missing == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converged_in = converge_start.elapsed();
    let metrics = syncer.metrics();
    let total = |f: fn(&vcluster_syncer::engine::MetricsSnapshot) -> u64| -> u64 {
        metrics.values().map(f).sum()
    };
    let requests = counters.requests.load(Ordering::Relaxed);
    println!(
        "SOAK {:.0}s: {writers} writers, {watchers} watchers; {requests} client requests ({:.0}/s), \
         {} errors, {} conflicts; {} watch events, {} watch restarts; \
         {} configmaps and {} pods with an acknowledged final state; \
         syncer: {} reconciles, {} writes, {} conflicts, {} errors; \
         host in step {:.1}s after the load; unmatched: {missing}",
        load_time.as_secs_f64(),
        requests as f64 / load_time.as_secs_f64(),
        counters.errors.load(Ordering::Relaxed),
        counters.conflicts.load(Ordering::Relaxed),
        counters.watch_events.load(Ordering::Relaxed),
        counters.watch_restarts.load(Ordering::Relaxed),
        expected_cms.len(),
        expected_pods.len(),
        total(|m| m.reconciles),
        total(|m| m.writes),
        total(|m| m.conflicts),
        total(|m| m.errors),
        converged_in.as_secs_f64(),
    );
    assert_eq!(
        missing, 0,
        "acknowledged writes that never reached the host"
    );
    assert_eq!(
        counters.errors.load(Ordering::Relaxed),
        0,
        "client requests failed"
    );
    syncer.stop_within(Duration::from_secs(10)).await;
}
