//! The official Python `kubernetes` client against the server: the script
//! `tests/python/pods.py` lists, creates and watches pods while this test
//! writes concurrently, and both sides check what the other did.
//!
//! The interpreter comes from `VCLUSTER_E2E_PYTHON` (CI points it at a
//! virtualenv with the `kubernetes` package; see `.ci/run`).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::eventually;

const ENV: &str = vcluster_testkit::python::PYTHON_ENV;
/// The whole script may take this long before it is killed.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How many pods the test runs through ADDED, MODIFIED and DELETED.
const COUNT: usize = 6;

fn python() -> PathBuf {
    vcluster_testkit::python::interpreter()
}

fn pod(name: &str, role: &str) -> Pod {
    serde_json::from_value(vcluster_testkit::http::pod_json(name, &[("role", role)]))
        .expect("a valid pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_lists_creates_and_watches_pods() {
    let python = python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/pods.py");
    let t = Cluster::start().await;
    let client = t.server.client();
    let mut ns = Namespace::default();
    ns.metadata.name = Some("py".into());
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "py");
    let seeds = ["seed-a", "seed-b", "seed-c", "seed-d", "seed-e"];
    for name in seeds {
        pods.create(&PostParams::default(), &pod(name, "seed"))
            .await
            .unwrap();
    }

    let mut child = Command::new(&python)
        .arg(&script)
        .arg(&t.url)
        .arg("py")
        .arg(seeds.join(","))
        .arg(COUNT.to_string())
        .arg("30")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({ENV}): {e}", python.display()));
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stdout = child.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut stdout = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = stdout.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text).await;
        text
    });

    let ready = eventually("the script to print READY", || {
        let ready = lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.starts_with("READY "))
            .cloned();
        let exited = child.try_wait().ok().flatten();
        async move {
            if let Some(status) = exited {
                if ready.is_none() {
                    return Some(Err(status));
                }
            }
            ready.map(Ok)
        }
    })
    .await;
    let ready = match ready {
        Ok(line) => line,
        Err(status) => panic!(
            "the script exited ({status}) before READY; stderr:\n{}",
            stderr.await.unwrap()
        ),
    };

    // The script's own pod is stored.
    let made = t.stored("", "pods", Some("py"), "py-made").await.unwrap();
    assert_eq!(made["metadata"]["labels"]["role"], "python");
    assert_eq!(made["spec"]["containers"][0]["image"], "python:3.12");
    assert_eq!(
        ready,
        format!(
            "READY {}",
            made["metadata"]["resourceVersion"].as_str().unwrap()
        )
    );

    // Writes while the script watches: each selected pod is created,
    // patched and deleted; unselected ones must not show up.
    let mut expected = Vec::new();
    for i in 0..COUNT {
        let name = format!("rs-{i}");
        pods.create(&PostParams::default(), &pod(&name, "rust"))
            .await
            .unwrap();
        expected.push(format!("ADDED {name}"));
        pods.create(&PostParams::default(), &pod(&format!("other-{i}"), "other"))
            .await
            .unwrap();
        pods.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"step": "patched"}}})),
        )
        .await
        .unwrap();
        expected.push(format!("MODIFIED {name}"));
        pods.delete(&name, &DeleteParams::default()).await.unwrap();
        expected.push(format!("DELETED {name}"));
    }

    let status = match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "the script did not finish within {SCRIPT_TIMEOUT:?}; stdout so far: {:#?}",
                lines.lock().unwrap()
            );
        }
    };
    let _ = reader.await;
    let stderr = stderr.await.unwrap();
    let out = lines.lock().unwrap().clone();
    assert!(
        status.success(),
        "the script failed ({status}):\nstdout: {out:#?}\nstderr: {stderr}"
    );

    // Exactly the selected events, in the order they were written.
    let events: Vec<String> = out
        .iter()
        .filter_map(|l| l.strip_prefix("EVENT "))
        .map(|l| {
            l.rsplit_once(' ')
                .map(|(head, _rv)| head.to_owned())
                .unwrap()
        })
        .collect();
    assert_eq!(events, expected, "stdout: {out:#?}");
    assert_eq!(out.last().map(String::as_str), Some("DONE"), "{out:#?}");

    // And the script's delete reached the store.
    let err = t
        .stored("", "pods", Some("py"), "py-made")
        .await
        .unwrap_err();
    assert_eq!(err.code.as_u16(), 404);
    let mut left = t.stored_names("", "pods", Some("py")).await;
    left.sort();
    let mut want: Vec<String> = seeds.iter().map(|s| (*s).to_owned()).collect();
    want.extend((0..COUNT).map(|i| format!("other-{i}")));
    want.sort();
    assert_eq!(left, want);
}
