//! `kubectl api-resources -o wide` on both servers, compared as sets: the
//! kinds kube-apiserver serves that we do not (and the reverse), and for
//! the kinds both serve, every column (short names, API version, scope,
//! kind, verbs, categories). Upstream kinds we leave out on purpose are
//! listed in [`NOT_SERVED`] with the reason (docs/apiserver.md says the
//! same); every other difference fails the test.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Upstream resources this server does not serve, and why. Empty: every
/// resource a default kube-apiserver 1.34 serves is served here.
const NOT_SERVED: &[(&str, &str)] = &[];

/// `name apiVersion` -> the rest of the row, from `kubectl api-resources`.
fn api_resources(kubeconfig: &Path) -> BTreeMap<String, String> {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["api-resources", "-o", "wide", "--request-timeout=30s"])
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl api-resources failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_owned();
    // Columns are aligned under the header; cut each row at its offsets.
    let starts: Vec<usize> = [
        "NAME",
        "SHORTNAMES",
        "APIVERSION",
        "NAMESPACED",
        "KIND",
        "VERBS",
        "CATEGORIES",
    ]
    .iter()
    .map(|title| {
        header
            .find(title)
            .unwrap_or_else(|| panic!("no {title} column in {header:?}"))
    })
    .collect();
    lines
        .map(|line| {
            let cell = |i: usize| {
                let start = starts[i].min(line.len());
                let end = starts
                    .get(i + 1)
                    .copied()
                    .unwrap_or(line.len())
                    .min(line.len());
                line[start..end].trim().to_owned()
            };
            let key = format!("{} {}", cell(0), cell(2));
            let rest = format!(
                "shortnames={} namespaced={} kind={} verbs={} categories={}",
                cell(1),
                cell(3),
                cell(4),
                cell(5),
                cell(6)
            );
            (key, rest)
        })
        .collect()
}

/// Compares; returns the report lines of every difference not excused.
pub fn compare(ours: &Path, upstream: &Path) -> (usize, Vec<String>) {
    let (ours, upstream) =
        tokio::task::block_in_place(|| (api_resources(ours), api_resources(upstream)));
    let mut problems = Vec::new();
    for (key, theirs) in &upstream {
        let name = key.split(' ').next().unwrap_or_default();
        match ours.get(key) {
            None if NOT_SERVED.iter().any(|(n, _)| *n == name) => {}
            None => problems.push(format!("missing: {key} ({theirs})")),
            Some(mine) if mine != theirs => {
                problems.push(format!("differs: {key}: ours {mine} / upstream {theirs}"))
            }
            Some(_) => {}
        }
    }
    for key in ours.keys().filter(|key| !upstream.contains_key(*key)) {
        problems.push(format!("only ours: {key}"));
    }
    (upstream.len(), problems)
}
