//! The demo encrypts secrets at rest by default: a secret created with
//! kubectl reads back, but its value is nowhere in the demo's SQLite file;
//! `--encryption-provider-config none` stores it in clear (which also
//! shows the search below would find it).

use std::path::Path;

use vcluster_testkit::demo::DemoProcess;
use vcluster_testkit::free_port;
use vcluster_testkit::kubectl::run_ok as kubectl_ok;

const VALUE: &str = "hunter2-demo-at-rest";

/// Whether the database file or its write-ahead log holds `needle`.
fn store_contains(data_dir: &Path, needle: &str) -> bool {
    ["virtual.db", "virtual.db-wal"].iter().any(|name| {
        std::fs::read(data_dir.join(name))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

/// Starts a demo with `extra` flags, creates a secret, reads it back, stops.
fn create_secret(data_dir: &Path, extra: &[&str]) {
    let demo = DemoProcess::start(data_dir, free_port(), free_port(), extra);
    let kubeconfig = data_dir.join("kubeconfig");
    let literal = format!("--from-literal=password={VALUE}");
    kubectl_ok(
        &kubeconfig,
        &["create", "secret", "generic", "db", &literal],
    );
    let read = kubectl_ok(
        &kubeconfig,
        &["get", "secret", "db", "-o", "jsonpath={.data.password}"],
    );
    assert_eq!(
        read.trim(),
        "aHVudGVyMi1kZW1vLWF0LXJlc3Q=",
        "base64 of {VALUE}"
    );
    demo.interrupt();
}

#[test]
fn the_demos_store_never_holds_a_secret_in_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("encrypted");
    create_secret(&data_dir, &[]);
    assert!(
        !store_contains(&data_dir, VALUE),
        "the value is stored in clear"
    );
    assert!(
        !store_contains(&data_dir, "aHVudGVyMi1kZW1v"),
        "the value is stored in base64"
    );
    assert!(store_contains(&data_dir, "k8s:enc:aesgcm:v1:key1:"));
    let key_file = data_dir.join("encryption-config.yaml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is owner-only");
    }
    // A restart reads it with the kept key.
    let demo = DemoProcess::start(&data_dir, free_port(), free_port(), &[]);
    let read = kubectl_ok(
        &data_dir.join("kubeconfig"),
        &["get", "secret", "db", "-o", "jsonpath={.data.password}"],
    );
    assert_eq!(read.trim(), "aHVudGVyMi1kZW1vLWF0LXJlc3Q=");
    demo.interrupt();

    let plain_dir = dir.path().join("plain");
    create_secret(&plain_dir, &["--encryption-provider-config", "none"]);
    assert!(
        store_contains(&plain_dir, "aHVudGVyMi1kZW1v"),
        "stored as is"
    );
    assert!(!plain_dir.join("encryption-config.yaml").exists());
}
