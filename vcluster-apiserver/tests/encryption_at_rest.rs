//! Secrets encrypted at rest, end to end through the API (kube-rs) on
//! every backend: what lies in the store below the encryption wrapper,
//! reads back through the API, upstream's key rotation, and a missing key.
//! The etcd case needs the etcd binary: `bash tools/test -p
//! vcluster-apiserver --test encryption_at_rest` sets `VCLUSTER_ETCD_BIN`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::ByteString;
use kube::api::{Api, ListParams, PostParams};
use vcluster_apiserver::storage::{EncryptionConfig, MemoryStorage, SqliteStorage, Storage};
use vcluster_apiserver::{ApiServer, ApiServerConfig};

const VALUE: &str = "hunter2-do-not-store-me";
const KEY1: &str = "c2VjcmV0IGlzIHNlY3VyZWtleSBudW1iZXIgMTIzNDU="; // 32 bytes
const KEY2: &str = "dGhpcyBpcyBwYXNzd29yZHRoaXMgaXMgcGFzc3dvcmQ="; // 32 bytes

fn config(keys: &[(&str, &str)]) -> EncryptionConfig {
    let keys: String = keys
        .iter()
        .map(|(name, secret)| {
            format!("            - name: {name}\n              secret: {secret}\n")
        })
        .collect();
    EncryptionConfig::parse(&format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n      - aesgcm:\n          keys:\n{keys}"
    ))
    .expect("valid configuration")
}

async fn start(storage: &Arc<dyn Storage>, encryption: EncryptionConfig) -> ApiServer {
    let mut config = ApiServerConfig::new(storage.clone());
    config.encryption = Some(encryption);
    config.garbage_collector = None;
    ApiServer::start(config).await.expect("server starts")
}

fn secret(name: &str) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.data = Some(BTreeMap::from([(
        "password".into(),
        ByteString(format!("{VALUE}-{name}").into_bytes()),
    )]));
    secret
}

fn password(secret: &Secret) -> String {
    let bytes = &secret.data.as_ref().expect("data")["password"].0;
    String::from_utf8(bytes.clone()).expect("utf-8")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Reads a key below the wrapper and checks it is sealed by `key_name`.
async fn assert_sealed(raw: &Arc<dyn Storage>, name: &str, key_name: &str) {
    let key = format!("/registry/core/secrets/default/{name}");
    let stored = raw.get(&key).await.expect("raw read").expect("stored");
    let prefix = format!("k8s:enc:aesgcm:v1:{key_name}:");
    assert!(
        stored.value.starts_with(prefix.as_bytes()),
        "{key} starts with {:?}, not {prefix:?}",
        String::from_utf8_lossy(&stored.value[..stored.value.len().min(40)])
    );
    assert!(
        !contains(&stored.value, VALUE),
        "{key} holds the value in clear"
    );
    assert!(
        !contains(&stored.value, "aHVudGVy"),
        "{key} holds the value in base64"
    );
}

/// The whole scenario on one store: create, raw checks, rotation from
/// key1 to key2, and a server that lacks the key.
async fn scenario(raw: Arc<dyn Storage>) {
    // 1. Encryption on: a secret is sealed, a config map is not.
    let server = start(&raw, config(&[("key1", KEY1)])).await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    secrets
        .create(&PostParams::default(), &secret("one"))
        .await
        .expect("create one");
    secrets
        .create(&PostParams::default(), &secret("two"))
        .await
        .expect("create two");
    let maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut map = ConfigMap::default();
    map.metadata.name = Some("plain".into());
    map.data = Some(BTreeMap::from([("k".into(), VALUE.into())]));
    maps.create(&PostParams::default(), &map)
        .await
        .expect("create map");
    assert_sealed(&raw, "one", "key1").await;
    let stored_map = raw
        .get("/registry/core/configmaps/default/plain")
        .await
        .expect("raw read")
        .expect("stored");
    assert!(stored_map.value.starts_with(b"{") && contains(&stored_map.value, VALUE));
    assert_eq!(
        password(&secrets.get("one").await.expect("get")),
        format!("{VALUE}-one")
    );
    let listed = secrets.list(&ListParams::default()).await.expect("list");
    assert_eq!(listed.items.len(), 2);
    server.shutdown();

    // 2. Rotation, as upstream documents it: key2 first, key1 still read.
    let server = start(&raw, config(&[("key2", KEY2), ("key1", KEY1)])).await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    assert_eq!(
        password(&secrets.get("two").await.expect("old")),
        format!("{VALUE}-two")
    );
    // Rewrite every secret (`kubectl get secrets -A -o json | kubectl replace -f -`).
    for item in secrets
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
    {
        let name = item.metadata.name.clone().expect("name");
        secrets
            .replace(&name, &PostParams::default(), &item)
            .await
            .expect("replace");
        assert_sealed(&raw, &name, "key2").await;
    }
    server.shutdown();

    // 3. key1 removed: everything still reads.
    let server = start(&raw, config(&[("key2", KEY2)])).await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    for name in ["one", "two"] {
        assert_eq!(
            password(&secrets.get(name).await.expect("get")),
            format!("{VALUE}-{name}")
        );
    }
    server.shutdown();

    // 4. A restart without the key: a clear error, never ciphertext.
    let server = start(&raw, config(&[("key3", KEY1)])).await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let error = secrets
        .get("one")
        .await
        .expect_err("key2 is not configured");
    let kube::Error::Api(status) = error else {
        panic!("expected a Status, got {error}");
    };
    assert_eq!(status.code, 500);
    assert!(
        status
            .message
            .contains(r#"encrypted with aesgcm key "key2""#)
            && status.message.contains(r#"configured: aesgcm key "key3""#),
        "{}",
        status.message
    );
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_encrypted_in_memory() {
    scenario(Arc::new(MemoryStorage::new())).await;
}

fn file_contains(path: &Path, needle: &str) -> bool {
    std::fs::read(path).is_ok_and(|bytes| contains(&bytes, needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_encrypted_in_the_sqlite_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&path).await.expect("open"));
    scenario(store).await;
    // The file itself (and its WAL), read without the store.
    let db =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the file");
    let value: Vec<u8> = db
        .query_row(
            "SELECT value FROM log WHERE key = ?1 ORDER BY revision DESC LIMIT 1",
            [b"/registry/core/secrets/default/one".as_slice()],
            |row| row.get(0),
        )
        .expect("row of the secret");
    assert!(value.starts_with(b"k8s:enc:aesgcm:v1:key2:"));
    let wal = dir.path().join("state.db-wal");
    assert!(
        file_contains(&path, VALUE) || file_contains(&wal, VALUE),
        "the config map's value is stored in clear (the check can see values)"
    );
    for name in ["one", "two"] {
        let needle = format!("{VALUE}-{name}");
        assert!(!file_contains(&path, &needle) && !file_contains(&wal, &needle));
    }
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_encrypted_in_etcd() {
    use vcluster_apiserver::storage::EtcdStorage;
    let etcd = vcluster_testkit::etcd::EtcdServer::start();
    let store: Arc<dyn Storage> = Arc::new(
        EtcdStorage::connect(&[etcd.endpoint()], "/vc")
            .await
            .expect("connect"),
    );
    scenario(store).await;
    // Below the prefix too: a client of the whole etcd sees ciphertext.
    let whole = EtcdStorage::connect(&[etcd.endpoint()], "")
        .await
        .expect("connect without prefix");
    let stored = whole
        .get("/vc/registry/core/secrets/default/one")
        .await
        .expect("read")
        .expect("stored");
    assert!(stored.value.starts_with(b"k8s:enc:aesgcm:v1:key2:"));
}
