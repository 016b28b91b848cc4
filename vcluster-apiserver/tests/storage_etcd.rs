//! The etcd backend against a real etcd server: the shared conformance
//! suite, tenant isolation by key prefix, and error mapping.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use vcluster_apiserver::storage::etcd::{EtcdConnectError, EtcdOptions};
use vcluster_apiserver::storage::{
    conformance, EtcdStorage, ListRequest, Storage, StorageConfig, StorageError,
};
use vcluster_testkit::etcd::EtcdServer;

const DEADLINE: Duration = Duration::from_secs(20);

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let etcd = EtcdServer::start();
    let endpoint = etcd.endpoint();
    let next = AtomicUsize::new(0);
    conformance::run(|| {
        // A fresh prefix per case: an empty view of the shared server.
        let prefix = format!("/conformance-{}", next.fetch_add(1, Ordering::Relaxed));
        let endpoint = endpoint.clone();
        async move {
            EtcdStorage::connect(&[endpoint], &prefix)
                .await
                .expect("connect to etcd")
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_virtual_clusters_apart() {
    let etcd = EtcdServer::start();
    let vc1 = EtcdStorage::connect(&[etcd.endpoint()], "/vc1/")
        .await
        .expect("connect vc1");
    let vc10 = EtcdStorage::connect(&[etcd.endpoint()], "/vc10")
        .await
        .expect("connect vc10");
    let raw = EtcdStorage::connect(&[etcd.endpoint()], "")
        .await
        .expect("connect without prefix");
    assert_eq!(vc1.prefix(), "/vc1", "a trailing slash is dropped");

    let start = vc1.current_revision().await.expect("revision");
    let mut watch = vc1.watch("", start).await.expect("watch all of vc1");
    let key = "/registry/core/pods/default/web";
    vc10.create(key, value("ten"))
        .await
        .expect("create in vc10");
    let mine = vc1.create(key, value("one")).await.expect("create in vc1");

    let event = tokio::time::timeout(DEADLINE, watch.next())
        .await
        .expect("event in time")
        .expect("stream open")
        .expect("event");
    assert_eq!(
        (event.key.as_str(), event.revision),
        (key, mine.mod_revision)
    );

    let listed = vc1.list(ListRequest::prefix("")).await.expect("list vc1");
    let keys: Vec<_> = listed.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [key],
        "vc1 sees only its own keys, without the prefix"
    );
    assert_eq!(listed.items[0].value, value("one"));

    let stored = raw
        .get(&format!("/vc1{key}"))
        .await
        .expect("raw get")
        .expect("the prefixed key exists in etcd");
    assert_eq!(stored.value, value("one"));
    assert_eq!(
        raw.get(&format!("/vc10{key}"))
            .await
            .expect("raw get")
            .map(|kv| kv.value),
        Some(value("ten"))
    );

    match vc1.create("no-leading-slash", value("x")).await {
        Err(StorageError::Backend { message, .. }) => {
            assert!(message.contains("must start with '/'"))
        }
        other => panic!("a key that could leak into another prefix must be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_dead_etcd_gives_backend_errors() {
    let fast = EtcdOptions {
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        watch_resume: Duration::from_secs(2),
        ..EtcdOptions::with_prefix("/dead")
    };
    // Nothing listens on a port we just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let endpoint = format!("127.0.0.1:{port}");
    match EtcdStorage::connect_with(&[endpoint.as_str()], fast.clone()).await {
        Err(err @ EtcdConnectError::Unreachable { .. }) => {
            assert!(err.to_string().contains(&endpoint), "{err}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(matches!(
        EtcdStorage::connect_with::<&str>(&[], fast.clone()).await,
        Err(EtcdConnectError::NoEndpoints)
    ));

    let mut etcd = EtcdServer::start();
    let store = EtcdStorage::connect_with(&[etcd.endpoint()], fast)
        .await
        .expect("connect");
    let created = store.create("/k", value("v")).await.expect("create");
    let mut watch = store.watch("/", created.mod_revision).await.expect("watch");
    etcd.kill();
    match store.get("/k").await {
        Err(StorageError::Backend {
            backend, message, ..
        }) => {
            assert_eq!(backend, "etcd");
            assert!(
                message.contains(&etcd.endpoint()),
                "context names the server: {message}"
            );
        }
        other => panic!("a dead etcd must be a Backend error, got {other:?}"),
    }
    // A watch tries to resume for a while, then says it cannot go on.
    match tokio::time::timeout(DEADLINE, watch.next()).await {
        Ok(Some(Err(StorageError::Backend { message, .. }))) => {
            assert!(message.contains("could not resume"), "{message}")
        }
        other => panic!("a watch on a dead etcd must end with a Backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_compaction_is_expired_with_the_oldest_revision() {
    let etcd = EtcdServer::start();
    let store = EtcdStorage::connect(&[etcd.endpoint()], "/compact")
        .await
        .expect("connect");
    let a = store.create("/a", value("1")).await.expect("create");
    let b = store
        .update("/a", value("2"), a.mod_revision)
        .await
        .expect("update");
    store.compact(b.mod_revision).await.expect("compact");
    // Compacting again, or below, is a no-op rather than an error.
    store.compact(a.mod_revision).await.expect("compact below");
    store
        .compact(u64::MAX)
        .await
        .expect("compact beyond the current revision");
    let current = store.current_revision().await.expect("revision");
    match store
        .list(ListRequest {
            revision: Some(a.mod_revision),
            ..ListRequest::prefix("/")
        })
        .await
    {
        Err(StorageError::Expired { requested, oldest }) => {
            assert_eq!((requested, oldest), (a.mod_revision, current))
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    let mut watch = store.watch("/", 0).await.expect("watch");
    match tokio::time::timeout(DEADLINE, watch.next()).await {
        Ok(Some(Err(StorageError::Expired { requested, oldest }))) => {
            assert_eq!((requested, oldest), (0, current))
        }
        other => panic!("a watch from before the compaction must be Expired, got {other:?}"),
    }
    match store
        .list(ListRequest {
            revision: Some(current + 10),
            ..ListRequest::prefix("/")
        })
        .await
    {
        Err(StorageError::FutureRevision {
            requested,
            current: now,
        }) => {
            assert_eq!((requested, now), (current + 10, current))
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_by_url() {
    let etcd = EtcdServer::start();
    let config = StorageConfig::from_str(&format!("etcd://{}?prefix=/vc-url", etcd.address()))
        .expect("parse");
    let store = config.open().await.expect("open");
    let kv = store.create("/a", value("1")).await.expect("create");
    let raw = EtcdStorage::connect(&[etcd.endpoint()], "")
        .await
        .expect("connect");
    assert_eq!(
        raw.get("/vc-url/a")
            .await
            .expect("get")
            .map(|kv| kv.mod_revision),
        Some(kv.mod_revision)
    );
}

/// The harness's test CA, etcd's serving certificate for 127.0.0.1 and a
/// client certificate, as PEM files in `dir`.
fn write_pki(
    dir: &std::path::Path,
) -> (
    vcluster_testkit::etcd::EtcdTlsFiles,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let pki = vcluster_testkit::pki::TestCa::new();
    let (server_cert, server_key) = pki.server_cert();
    let (client_cert, client_key) = pki.client_cert("vcluster", &[]);
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write a PEM file");
        path
    };
    let files = vcluster_testkit::etcd::EtcdTlsFiles {
        client_ca: write("ca.pem", &pki.ca_pem),
        cert: write("etcd.pem", &server_cert),
        key: write("etcd-key.pem", &server_key),
    };
    (
        files,
        write("client.pem", &client_cert),
        write("client-key.pem", &client_key),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_passes_the_conformance_suite() {
    let pki = tempfile::tempdir().expect("tempdir");
    let (files, client_cert, client_key) = write_pki(pki.path());
    let ca = files.client_ca.clone();
    let etcd = EtcdServer::start_tls(files);
    let url = |prefix: &str, client: bool| {
        let mut url = format!(
            "etcd://{}?prefix={prefix}&ca={}",
            etcd.address(),
            ca.display()
        );
        if client {
            url.push_str(&format!(
                "&cert={}&key={}",
                client_cert.display(),
                client_key.display()
            ));
        }
        url
    };
    let next = AtomicUsize::new(0);
    conformance::run(|| {
        let config = StorageConfig::from_str(&url(
            &format!("/tls-{}", next.fetch_add(1, Ordering::Relaxed)),
            true,
        ))
        .expect("a TLS storage URL");
        let StorageConfig::Etcd {
            endpoints,
            prefix,
            tls,
        } = config
        else {
            panic!("an etcd URL gives an etcd configuration");
        };
        assert!(endpoints.iter().all(|e| e.starts_with("https://")));
        async move {
            let options = EtcdOptions {
                tls,
                ..EtcdOptions::with_prefix(prefix)
            };
            EtcdStorage::connect_with(&endpoints, options)
                .await
                .expect("connect to etcd over TLS")
        }
    })
    .await;
    // The URL opens the same way.
    let store = StorageConfig::from_str(&url("/via-url", true))
        .expect("url")
        .open()
        .await
        .expect("open over TLS");
    store
        .create("/registry/core/configmaps/default/a", value("a"))
        .await
        .expect("a write over TLS");

    // etcd asks for a client certificate: without one, no connection, and
    // the error says where.
    let without_cert = StorageConfig::from_str(&url("/none", false)).expect("url");
    let err = without_cert
        .open()
        .await
        .err()
        .expect("refused without a client certificate");
    assert!(err.to_string().contains(&etcd.address()), "{err}");
    // Plain HTTP to a TLS etcd fails too.
    assert!(EtcdStorage::connect(&[etcd.address()], "/plain")
        .await
        .is_err());
    // A CA file that does not exist is named.
    let missing =
        StorageConfig::from_str(&format!("etcd://{}?ca=/nonexistent/ca.pem", etcd.address()))
            .expect("url");
    let err = missing.open().await.err().expect("no CA file");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

/// Over a three-member cluster named by all its endpoints (what HA
/// replicas of the control plane use), the store keeps working when one
/// member dies: reads, compare-and-swap writes and a watch carry on
/// through the other two (a request that was in flight to the dead member
/// may fail; the next ones must not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_member_cluster_survives_a_dead_member() {
    let mut cluster = vcluster_testkit::etcd::EtcdCluster::start(3);
    let url = cluster.store_url("/ha");
    let config = StorageConfig::from_str(&url).expect("a multi-endpoint URL");
    let store = config.open().await.expect("connect to the cluster");
    let first = store
        .create("/registry/core/configmaps/default/a", value("1"))
        .await
        .expect("create");
    let mut watch = store
        .watch("/registry/core/configmaps/", first.mod_revision)
        .await
        .expect("watch");

    // The member the client most likely talks to: the first endpoint.
    cluster.kill(0);
    assert!(!cluster.is_healthy(0));
    let mut written = 0;
    let mut last = first.mod_revision;
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    while written < 20 {
        assert!(
            started.elapsed() < DEADLINE,
            "writes did not go on after a member died: {failures:?}"
        );
        let current = store
            .get("/registry/core/configmaps/default/a")
            .await
            .ok()
            .flatten();
        let Some(current) = current else {
            failures.push("read failed".to_owned());
            continue;
        };
        match store
            .update(
                "/registry/core/configmaps/default/a",
                value(&written.to_string()),
                current.mod_revision,
            )
            .await
        {
            Ok(kv) => {
                assert!(kv.mod_revision > last);
                last = kv.mod_revision;
                written += 1;
            }
            Err(err) => failures.push(err.to_string()),
        }
    }
    assert!(
        failures.len() <= 3,
        "more than a request or so failed after the member died: {failures:?}"
    );
    // The watch saw every one of the 20 updates, in order.
    let mut seen = 0;
    while seen < 20 {
        let event = tokio::time::timeout(DEADLINE, watch.next())
            .await
            .expect("the watch carries on")
            .expect("not ended")
            .expect("an event");
        assert_eq!(event.value, value(&seen.to_string()));
        seen += 1;
    }
}
