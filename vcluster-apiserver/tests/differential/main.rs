//! Differential tests: the same requests sent to our API server and to the
//! real kube-apiserver of the same release (the test kit's `RealHost`, with
//! only the controllers whose work our API server does itself), their
//! answers compared after blanking what no two servers share (identities,
//! instants, allocated addresses; see `json::normalize`). Status codes,
//! reasons, messages, causes, defaulted fields and the order of keys are
//! compared as they are.
//!
//! Every case is named. The run ends with `differential: N identical, M
//! differ`; `baseline.txt` lists the cases that differ today, each with the
//! reason. The test fails when a case outside the baseline differs (a
//! regression, or a new case that does) and when a case of the baseline
//! has become identical (take it out: the baseline only shrinks). The full
//! answers of every differing case are written to
//! `target/tmp/differential-report.txt`. `DIFFERENTIAL_BLESS=1` rewrites
//! the baseline from the run (keeping the reasons already written).

mod api_resources;
mod case;
mod cases;
mod json;
mod kubectl;
mod side;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::real_host::{RealHost, RealHostOptions};

use case::Scenario;
use json::{first_difference, Json};
use side::Side;

/// What one case showed.
struct Outcome {
    name: String,
    /// `None` when identical; else the first difference.
    difference: Option<String>,
    ours: Json,
    upstream: Json,
}

fn baseline_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/differential/baseline.txt")
}

/// How a baseline reason starts when the case races with one of
/// kube-apiserver's own controllers: either outcome is accepted.
const RACES: &str = "races with upstream:";

/// `case  reason` lines; `#` starts a comment.
fn read_baseline() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(baseline_path()).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((name, reason)) => (name.to_owned(), reason.trim().to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect()
}

fn write_baseline(outcomes: &[Outcome], old: &BTreeMap<String, String>) {
    let mut text = String::from(
        "# Cases of tests/differential whose answers differ from kube-apiserver's today,\n\
         # each with the reason. This list may only shrink: the test fails when a case\n\
         # listed here becomes identical, and when one not listed differs. A reason\n\
         # that starts with \"races with upstream:\" marks a case whose upstream\n\
         # answer depends on when kube-apiserver's own controllers run: either\n\
         # outcome is accepted.\n",
    );
    for outcome in outcomes {
        if let Some(difference) = &outcome.difference {
            let reason = old
                .get(&outcome.name)
                .filter(|r| !r.is_empty())
                .cloned()
                .unwrap_or_else(|| difference.replace('\n', " "));
            let _ = writeln!(text, "{}  {}", outcome.name, reason);
        }
    }
    std::fs::write(baseline_path(), text).expect("write the baseline");
}

async fn create_namespace(ours: &Side, upstream: &Side, namespace: &str) {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": namespace}
    }))
    .expect("a namespace");
    for side in [ours, upstream] {
        Api::<Namespace>::all(side.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {namespace}: {e}"));
    }
    // kube-apiserver's service-account controller adds `default`; ours is
    // the controllers crate's job, absent here, so the test adds it.
    let account: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "default"}
    }))
    .expect("a service account");
    Api::<ServiceAccount>::namespaced(ours.client.clone(), namespace)
        .create(&PostParams::default(), &account)
        .await
        .expect("create the default service account");
    let accounts = Api::<ServiceAccount>::namespaced(upstream.client.clone(), namespace);
    let deadline = Instant::now() + Duration::from_secs(30);
    while accounts.get_opt("default").await.ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "kube-apiserver's default service account of {namespace} did not appear"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_scenario(
    scenario: &Scenario,
    ours: &mut Side,
    upstream: &mut Side,
    outcomes: &mut Vec<Outcome>,
) {
    let namespace = scenario.namespace();
    create_namespace(ours, upstream, &namespace).await;
    for step in &scenario.steps {
        let (a, b) = tokio::join!(ours.send(step, &namespace), upstream.send(step, &namespace));
        let a = a.unwrap_or_else(|e| panic!("{}: our server: {e}", step.name));
        let b = b.unwrap_or_else(|e| panic!("{}: kube-apiserver: {e}", step.name));
        if step.setup {
            assert!(
                a.status < 300 && b.status < 300,
                "set-up step {} failed: ours {} {:?} / upstream {} {:?}",
                step.name,
                a.status,
                a.documents.first().map(Json::pretty),
                b.status,
                b.documents.first().map(Json::pretty),
            );
            continue;
        }
        let (ours_json, upstream_json) = (
            a.comparable(step.status_only),
            b.comparable(step.status_only),
        );
        outcomes.push(Outcome {
            name: step.name.clone(),
            difference: first_difference(&ours_json, &upstream_json),
            ours: ours_json,
            upstream: upstream_json,
        });
    }
}

fn report(outcomes: &[Outcome]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differential-report.txt");
    let mut text = String::new();
    for outcome in outcomes {
        if let Some(difference) = &outcome.difference {
            let _ = writeln!(
                text,
                "=== {}\n{difference}\n--- ours\n{}\n--- kube-apiserver\n{}\n",
                outcome.name,
                outcome.ours.pretty(),
                outcome.upstream.pretty()
            );
        }
    }
    std::fs::write(&path, text).expect("write the report");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_answers_match_kube_apiserver() {
    let host = tokio::task::block_in_place(|| RealHost::start(RealHostOptions::quiet()))
        .expect("the real kube-apiserver starts");
    let cluster = Cluster::start_secure().await;
    let mut ours = Side::new(cluster.client_from(&cluster.kubeconfig).await);
    let mut upstream = Side::new(host.client());

    let scenarios = cases::all();
    let mut names = BTreeSet::new();
    for step in scenarios.iter().flat_map(|s| &s.steps) {
        assert!(
            names.insert(step.name.clone()),
            "two cases are named {}",
            step.name
        );
    }
    let mut outcomes = Vec::new();
    for scenario in &scenarios {
        run_scenario(scenario, &mut ours, &mut upstream, &mut outcomes).await;
    }
    outcomes.extend(kubectl::compare(&cluster.kubeconfig, host.kubeconfig()));
    let (served_upstream, api_resource_problems) =
        api_resources::compare(&cluster.kubeconfig, host.kubeconfig());

    let identical = outcomes.iter().filter(|o| o.difference.is_none()).count();
    let differ = outcomes.len() - identical;
    let report = report(&outcomes);
    let baseline = read_baseline();
    if std::env::var_os("DIFFERENTIAL_BLESS").is_some() {
        write_baseline(&outcomes, &baseline);
    }
    let mut regressions = Vec::new();
    let mut fixed = Vec::new();
    for outcome in &outcomes {
        match (&outcome.difference, baseline.contains_key(&outcome.name)) {
            (Some(difference), false) => {
                regressions.push(format!("  {}: {difference}", outcome.name))
            }
            // A case whose upstream answer depends on when kube-apiserver's
            // own controllers run may come out identical in one run and
            // not in the next; its reason says so.
            (None, true) if !baseline[&outcome.name].starts_with(RACES) => {
                fixed.push(format!("  {}", outcome.name))
            }
            _ => {}
        }
    }
    let unknown: Vec<&String> = baseline
        .keys()
        .filter(|name| !names.contains(*name) && !outcomes.iter().any(|o| &o.name == *name))
        .collect();
    println!(
        "differential: {identical} identical, {differ} differ ({:.1}% identical; details: {})",
        100.0 * identical as f64 / outcomes.len().max(1) as f64,
        report.display()
    );
    assert!(
        api_resource_problems.is_empty(),
        "kubectl api-resources differs from kube-apiserver's ({served_upstream} resources there):\n  {}",
        api_resource_problems.join("\n  ")
    );
    assert!(
        outcomes.len() >= 300,
        "only {} cases: the suite has shrunk",
        outcomes.len()
    );
    assert!(
        regressions.is_empty() && fixed.is_empty() && unknown.is_empty(),
        "the differential suite disagrees with its baseline:\n\
         differ but are not in baseline.txt ({}):\n{}\n\
         identical now, take them out of baseline.txt ({}):\n{}\n\
         in baseline.txt but no such case: {unknown:?}",
        regressions.len(),
        regressions.join("\n"),
        fixed.len(),
        fixed.join("\n"),
    );
}
