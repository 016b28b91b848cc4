//! The demo's data directory holds the cluster-admin key and every Secret:
//! nothing in it may be readable by another local user. Every directory
//! the demo leaves is 0700 and every file 0600 (keys, certificates,
//! kubeconfigs, the database and SQLite's side files), and a directory an
//! older build left loose is tightened at start.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use vcluster_testkit::demo::DemoProcess;
use vcluster_testkit::free_port;
use vcluster_testkit::kubectl::run_ok as kubectl_ok;

/// Every path below `dir` (and `dir` itself) with its permission bits.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).expect("metadata");
        out.push((path.clone(), metadata.permissions().mode() & 0o777));
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).expect("list") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    out.sort();
    out
}

/// Asserts that nobody but the owner can read anything under `dir`.
fn assert_owner_only(dir: &Path) {
    let loose: Vec<String> = modes(dir)
        .into_iter()
        .filter(|(_, mode)| mode & 0o077 != 0)
        .map(|(path, mode)| format!("{} {mode:o}", path.display()))
        .collect();
    assert!(loose.is_empty(), "readable by other users: {loose:#?}");
}

#[test]
fn the_data_directory_is_owner_only_and_loose_modes_are_tightened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let demo = DemoProcess::start(&data_dir, free_port(), free_port(), &[]);
    let kubeconfig = data_dir.join("kubeconfig");
    kubectl_ok(
        &kubeconfig,
        &["create", "secret", "generic", "s", "--from-literal=k=v"],
    );
    // While it runs (SQLite's -wal and -shm files exist now) and after.
    let names: Vec<String> = modes(&data_dir)
        .iter()
        .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in ["admin.key", "server.key", "kubeconfig", "sa.key"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert_owner_only(&data_dir);
    demo.terminate();
    assert_owner_only(&data_dir);

    // An older build's loose modes: tightened when the demo starts again.
    let admin_key = data_dir.join("admin.key");
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&admin_key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let demo = DemoProcess::start(&data_dir, free_port(), free_port(), &[]);
    assert_owner_only(&data_dir);
    let value = kubectl_ok(
        &kubeconfig,
        &["get", "secret", "s", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(value, "dg==", "the state survived");
    demo.terminate();
}
