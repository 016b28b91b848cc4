//! Translation throughput on one core: names, labels and whole objects per
//! second with vcluster-core's `SingleNamespaceTranslator` (through
//! `&dyn Translator`, as the syncer holds it) and the syncer's pod
//! translation, plus allocations per translation (a counting global
//! allocator).
//!
//! `cargo bench --bench translation`; `VCLUSTER_BENCH_QUICK=1` for a short
//! run. One `BENCH name=translation case=...` line per case.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use vcluster::core::prelude::*;
use vcluster::core::{safe_concat_name, SingleNamespaceTranslator, VirtualKey};
use vcluster::syncer::syncers::pods::translate::{host_pod, PodEnvironment};
use vcluster_testkit::bench::memory::CountingAlloc;
use vcluster_testkit::bench::report::{note, Line};
use vcluster_testkit::bench::stats::Spread;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// How long each case runs, in total and per sample.
struct Timing {
    warm_up: Duration,
    sample: Duration,
    samples: usize,
}

impl Timing {
    fn from_env() -> Self {
        let quick = vcluster_testkit::bench::quick();
        Self {
            warm_up: Duration::from_millis(if quick { 50 } else { 300 }),
            sample: Duration::from_millis(if quick { 20 } else { 200 }),
            samples: vcluster_testkit::bench::env_usize(
                "VCLUSTER_BENCH_SAMPLES",
                if quick { 3 } else { 10 },
            ),
        }
    }
}

/// Runs `op(i)` for `i = 0, 1, ...`: warm-up, then samples of a fixed
/// iteration count calibrated to the sample time. Returns the per-sample
/// operations per second, and allocations and bytes per operation.
fn measure(timing: &Timing, mut op: impl FnMut(usize)) -> (Spread, f64, f64) {
    let start = Instant::now();
    let mut i = 0usize;
    while start.elapsed() < timing.warm_up {
        for _ in 0..64 {
            op(i);
            i += 1;
        }
    }
    let per_second = i as f64 / start.elapsed().as_secs_f64();
    let iterations = ((per_second * timing.sample.as_secs_f64()) as usize).max(1);

    let mut rates = Vec::with_capacity(timing.samples);
    let before = ALLOC.snapshot();
    for _ in 0..timing.samples {
        let start = Instant::now();
        for _ in 0..iterations {
            op(i);
            i += 1;
        }
        rates.push(iterations as f64 / start.elapsed().as_secs_f64());
    }
    let after = ALLOC.snapshot();
    let ops = (iterations * timing.samples) as f64;
    (
        Spread::of(&rates),
        after.allocations_since(&before) as f64 / ops,
        after.bytes_since(&before) as f64 / ops,
    )
}

/// Measures one case and prints its line; `units` names what one operation
/// translates (`names`, `labels`, `pods`...) and how many.
fn case(timing: &Timing, name: &str, units: (&str, usize), op: impl FnMut(usize)) {
    let (ops, allocs, bytes) = measure(timing, op);
    let (unit, per_op) = units;
    let per_unit = Spread {
        median: ops.median * per_op as f64,
        min: ops.min * per_op as f64,
        max: ops.max * per_op as f64,
        samples: ops.samples,
    };
    Line::new("translation")
        .tag("case", name)
        .spread(&format!("{unit}_per_s"), per_unit, 0)
        .num("ns_per_op", 1e9 / ops.median, 1)
        .num("allocs_per_op", allocs, 2)
        .num("alloc_bytes_per_op", bytes, 0)
        .print();
}

fn main() {
    let timing = Timing::from_env();
    note(format!(
        "translation: {} samples of {:?} per case, one thread",
        timing.samples, timing.sample
    ));
    let concrete =
        SingleNamespaceTranslator::new("bench", "vcluster-bench").expect("a valid translator");
    // The syncer holds `Arc<dyn Translator>`: measure through the trait.
    let translator: &dyn Translator = &concrete;

    // Names: typical short ones, and long ones that need the hash suffix.
    let short: Vec<VirtualKey> = (0..1024)
        .map(|i| VirtualKey::namespaced(format!("team-{}", i % 16), format!("web-{i}")))
        .collect();
    let long: Vec<VirtualKey> = (0..1024)
        .map(|i| {
            VirtualKey::namespaced(
                "a-rather-long-namespace-name",
                format!("a-deployment-with-a-long-name-5d8f7c9b6-{i:05}"),
            )
        })
        .collect();
    case(&timing, "name_short", ("names", 1), |i| {
        black_box(
            translator
                .host_key(black_box(&short[i % short.len()]))
                .expect("a valid name translates"),
        );
    });
    case(&timing, "name_long_hashed", ("names", 1), |i| {
        black_box(
            translator
                .host_key(black_box(&long[i % long.len()]))
                .expect("a valid name translates"),
        );
    });
    case(&timing, "safe_concat_name", ("names", 1), |i| {
        let key = &short[i % short.len()];
        black_box(safe_concat_name(black_box(&[
            key.name(),
            "x",
            key.namespace().unwrap_or_default(),
            "x",
            "bench",
        ])));
    });

    // Labels: one key, and a typical pod's label map (4 labels plus the
    // markers the translator adds).
    let label_keys = ["app", "tier", "app.kubernetes.io/name", "pod-template-hash"];
    case(&timing, "label_key", ("labels", 1), |i| {
        black_box(
            translator
                .host_label_key(black_box(label_keys[i % label_keys.len()]))
                .expect("a valid label key translates"),
        );
    });
    let labels: BTreeMap<String, String> = [
        ("app.kubernetes.io/name", "shop"),
        ("app.kubernetes.io/component", "web"),
        ("pod-template-hash", "5d8f7c9b6"),
        ("tier", "frontend"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    case(&timing, "labels_map_4", ("labels", labels.len()), |_| {
        black_box(
            translator
                .host_labels(black_box(&labels), Some("default"))
                .expect("valid labels translate"),
        );
    });

    // Whole objects.
    let config_map = vcluster_testkit::bench::fixtures::config_map("default", "settings", 1);
    case(&timing, "configmap_full", ("configmaps", 1), |_| {
        black_box(
            translator
                .host_object(black_box(&config_map))
                .expect("a configmap translates"),
        );
    });
    let pod = vcluster_testkit::bench::fixtures::rich_pod("default", "web-5d8f7c9b6-x2x7k");
    let namespace_labels: BTreeMap<String, String> = [(
        "kubernetes.io/metadata.name".to_owned(),
        "default".to_owned(),
    )]
    .into();
    let env = PodEnvironment::default();
    case(&timing, "pod_full", ("pods", 1), |_| {
        black_box(
            host_pod(translator, black_box(&pod), Some(&namespace_labels), &env)
                .expect("a pod translates"),
        );
    });
    let host = host_pod(translator, &pod, Some(&namespace_labels), &env).expect("a pod translates");
    case(&timing, "owner_of_host_pod", ("lookups", 1), |_| {
        black_box(translator.owner_of(black_box(&host.metadata)));
    });
}
