//! The real kubectl against both servers: the output of the commands users
//! type most, compared after blanking ages, addresses, identities and
//! instants, and after collapsing the spaces that align columns (a column
//! is as wide as its widest cell, and blanked cells change widths).

use std::path::Path;
use std::process::Command;
use std::sync::LazyLock;

use regex::Regex;

use crate::json::{first_difference, Json};
use crate::Outcome;

const MANIFEST: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: diff-kubectl
  labels: {app: web}
data:
  mode: production
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: diff-kubectl
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: diff-kubectl
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 80
"#;

/// `(case name, kubectl arguments)`, run in order on both servers.
fn commands(manifest: &str, changed: &str) -> Vec<(&'static str, Vec<String>)> {
    let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let with_file = |s: &str, file: &str| {
        let mut a = args(s);
        a.push(file.to_owned());
        a
    };
    vec![
        ("kubectl/create-namespace", args("create namespace diff-kubectl")),
        ("kubectl/apply", with_file("apply -f", manifest)),
        ("kubectl/apply-unchanged", with_file("apply -f", manifest)),
        ("kubectl/get-many", args("get deployments,services,configmaps -n diff-kubectl -l app=web")),
        ("kubectl/get-wide", args("get deployment web -n diff-kubectl -o wide")),
        ("kubectl/get-yaml", args("get configmap app-config -n diff-kubectl -o yaml")),
        ("kubectl/get-json-deployment", args("get deployment web -n diff-kubectl -o json")),
        ("kubectl/get-jsonpath", args("get deployment web -n diff-kubectl -o jsonpath={.spec.template.spec.containers[0].image}")),
        ("kubectl/get-custom-columns", args("get configmaps -n diff-kubectl -l app=web -o custom-columns=NAME:.metadata.name,MODE:.data.mode")),
        ("kubectl/get-show-labels", args("get services -n diff-kubectl --show-labels")),
        ("kubectl/get-missing", args("get deployment absent -n diff-kubectl")),
        ("kubectl/get-unknown-type", args("get widgets")),
        ("kubectl/describe-configmap", args("describe configmap app-config -n diff-kubectl")),
        ("kubectl/describe-service", args("describe service web -n diff-kubectl")),
        ("kubectl/describe-deployment", args("describe deployment web -n diff-kubectl")),
        ("kubectl/describe-namespace", args("describe namespace diff-kubectl")),
        ("kubectl/diff", with_file("diff -f", changed)),
        ("kubectl/apply-server-side", with_file("apply --server-side -f", changed)),
        ("kubectl/diff-after", with_file("diff -f", changed)),
        ("kubectl/label", args("label configmap app-config -n diff-kubectl tier=backend")),
        ("kubectl/annotate", args("annotate configmap app-config -n diff-kubectl note=hello")),
        ("kubectl/scale", args("scale deployment web -n diff-kubectl --replicas=3")),
        ("kubectl/set-image", args("set image deployment/web -n diff-kubectl web=nginx:1.28")),
        ("kubectl/create-dry-run-server", args("create configmap dry -n diff-kubectl --from-literal=a=b --dry-run=server -o yaml")),
        ("kubectl/create-secret", args("create secret generic creds -n diff-kubectl --from-literal=password=s3cr3t")),
        ("kubectl/get-secret", args("get secret creds -n diff-kubectl -o jsonpath={.data.password}")),
        ("kubectl/auth-can-i", args("auth can-i create deployments -n diff-kubectl")),
        ("kubectl/auth-can-i-as", args("auth can-i list secrets -n diff-kubectl --as alice")),
        ("kubectl/auth-whoami", args("auth whoami --as alice")),
        ("kubectl/explain", args("explain deployment.spec.replicas")),
        ("kubectl/explain-recursive", args("explain configmap --recursive")),
        ("kubectl/api-versions", args("api-versions")),
        ("kubectl/api-resources", args("api-resources")),
        ("kubectl/api-resources-namespaced", args("api-resources --namespaced=false -o name")),
        ("kubectl/events", args("events -n diff-kubectl")),
        ("kubectl/rollout-history", args("rollout history deployment/web -n diff-kubectl")),
        ("kubectl/rollout-pause", args("rollout pause deployment/web -n diff-kubectl")),
        ("kubectl/rollout-resume", args("rollout resume deployment/web -n diff-kubectl")),
        ("kubectl/auth-can-i-list", args("auth can-i --list -n diff-kubectl --as alice")),
        ("kubectl/delete", with_file("delete -f", manifest)),
        ("kubectl/delete-namespace", args("delete namespace diff-kubectl --wait=false")),
    ]
}

static BLANKS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<uid>",
        ),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>"),
        (
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4}",
            "<time>",
        ),
        (
            r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}",
            "<time>",
        ),
        (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", "<ip>"),
        (r#"resourceVersion: "\d+""#, "resourceVersion: <rv>"),
        (r#""resourceVersion": "\d+""#, r#""resourceVersion": <rv>"#),
        (r"(?m)(\s)\d+(ms|s|m|h|d)(\d+(s|m|h))?(\s|$)", "$1<age>$5"),
        (r"kubectl-[a-z0-9.-]+", "kubectl"),
        // kubectl diff's scratch folders.
        (r"/tmp/(LIVE|MERGED)-\d+", "/tmp/$1"),
        (r"[ \t]+", " "),
    ]
    .into_iter()
    .map(|(pattern, blank)| (Regex::new(pattern).expect("a valid pattern"), blank))
    .collect()
});

fn blank(text: &str) -> String {
    BLANKS
        .iter()
        .fold(text.to_owned(), |text, (pattern, blank)| {
            pattern.replace_all(&text, *blank).into_owned()
        })
}

fn run(kubeconfig: &Path, cache: &Path, args: &[String]) -> Json {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--request-timeout=30s")
        .args(args)
        .output();
    let (code, stdout, stderr) = match output {
        Ok(out) => (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Err(err) => (-1, String::new(), format!("kubectl did not run: {err}")),
    };
    let lines = |text: &str| {
        Json::Array(
            blank(text)
                .lines()
                .map(|l| Json::String(l.trim_end().to_owned()))
                .collect(),
        )
    };
    Json::Object(vec![
        ("exit".into(), Json::Number(code.to_string())),
        ("stdout".into(), lines(&stdout)),
        ("stderr".into(), lines(&stderr)),
    ])
}

/// Runs every command on both servers (ours first, then kube-apiserver,
/// command by command) and compares what kubectl printed.
pub fn compare(ours: &Path, upstream: &Path) -> Vec<Outcome> {
    let dir = tempfile::tempdir().expect("a scratch folder");
    let manifest = dir.path().join("app.yaml");
    let changed = dir.path().join("app-changed.yaml");
    std::fs::write(&manifest, MANIFEST).expect("write the manifest");
    std::fs::write(
        &changed,
        MANIFEST
            .replace("mode: production", "mode: staging")
            .replace("replicas: 2", "replicas: 4"),
    )
    .expect("write the changed manifest");
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (ours_cache, upstream_cache) = (dir.path().join("cache-ours"), dir.path().join("cache-up"));
    tokio::task::block_in_place(|| {
        commands(&path(&manifest), &path(&changed))
            .into_iter()
            .map(|(name, args)| {
                let a = run(ours, &ours_cache, &args);
                let b = run(upstream, &upstream_cache, &args);
                Outcome {
                    name: name.to_owned(),
                    difference: first_difference(&a, &b),
                    ours: a,
                    upstream: b,
                }
            })
            .collect()
    })
}
