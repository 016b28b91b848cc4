//! Parsing (upstream's files and every refusal), the providers' formats
//! and round trips, and the wrapper over the memory store.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;

use super::providers::decrypt;
use super::*;
use crate::storage::{MemoryStorage, Storage};

const KEY1: &str = "c2VjcmV0IGlzIHNlY3VyZQ=="; // 16 bytes
const KEY32: &str = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="; // 32 bytes

/// Upstream's `testdata/valid-configs/aes-gcm-first.yaml` without its
/// `kms` entries (not supported here).
const UPSTREAM: &str = r#"
kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources:
      - secrets
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: c2VjcmV0IGlzIHNlY3VyZQ==
            - name: key2
              secret: dGhpcyBpcyBwYXNzd29yZA==
      - secretbox:
          keys:
            - name: key1
              secret: YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=
      - aescbc:
          keys:
            - name: key1
              secret: c2VjcmV0IGlzIHNlY3VyZQ==
            - name: key2
              secret: dGhpcyBpcyBwYXNzd29yZA==
      - identity: {}
"#;

fn one(provider: &str, secret: &str, resources: &str) -> String {
    format!(
        r#"{{"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
  "resources": [{{"resources": {resources}, "providers": [{{"{provider}": {{"keys": [{{"name": "k", "secret": "{secret}"}}]}}}}]}}]}}"#
    )
}

fn error_of(text: &str) -> String {
    EncryptionConfig::parse(text)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn upstreams_yaml_and_json_files_parse() {
    let config = EncryptionConfig::parse(UPSTREAM).expect("upstream file");
    let secrets = config.providers_for("", "secrets").expect("secrets");
    let names: Vec<_> = secrets.iter().map(Provider::name).collect();
    assert_eq!(names, ["aesgcm", "secretbox", "aescbc", "identity"]);
    assert!(config.providers_for("", "configmaps").is_none());
    let json = one("secretbox", KEY32, r#"["secrets", "deployments.apps"]"#);
    let config = EncryptionConfig::parse(&json).expect("JSON");
    assert!(config.providers_for("apps", "deployments").is_some());
    assert!(config.providers_for("apps", "replicasets").is_none());
    // The pre-1.13 form.
    let legacy = UPSTREAM
        .replace("kind: EncryptionConfiguration", "kind: EncryptionConfig")
        .replace("apiserver.config.k8s.io/v1", "v1");
    EncryptionConfig::parse(&legacy).expect("legacy form");
}

#[test]
fn generated_files_parse_and_differ() {
    let a = EncryptionConfig::generate_for_secrets().expect("generate");
    let b = EncryptionConfig::generate_for_secrets().expect("generate");
    assert_ne!(a, b, "fresh keys");
    let config = EncryptionConfig::parse(&a).expect("parses");
    let names: Vec<_> = config
        .providers_for("", "secrets")
        .expect("secrets")
        .iter()
        .map(Provider::name)
        .collect();
    assert_eq!(names, ["aesgcm", "identity"]);
}

#[test]
fn wildcards_resolve_like_upstream() {
    let config =
        EncryptionConfig::parse(&one("aesgcm", KEY1, r#"["*.apps", "*."]"#)).expect("wildcards");
    assert!(config.providers_for("apps", "deployments").is_some());
    assert!(config.providers_for("", "secrets").is_some());
    assert!(config.providers_for("batch", "jobs").is_none());
    let all = EncryptionConfig::parse(&one("aesgcm", KEY1, r#"["*.*"]"#)).expect("all");
    assert!(all.providers_for("batch", "jobs").is_some());
}

#[test]
fn every_mistake_is_refused_with_its_field() {
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "got unexpected config type"),
        ("kind: Pod\napiVersion: v1\n".into(), "got unexpected config type"),
        (
            UPSTREAM.replace("- identity: {}", "- identity: {}\n        pandas: true"),
            "unknown field `pandas`",
        ),
        (
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\n".into(),
            "at least one resources is required",
        ),
        (one("aesgcm", KEY1, "[]"), "resources[0].resources: Required value"),
        (one("aesgcm", "not base64!", r#"["secrets"]"#), "resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded"),
        (one("aesgcm", "c2hvcnQ=", r#"["secrets"]"#), "secret is not of the expected length, got 5, expected one of [16, 24, 32]"),
        (one("aescbc", "c2hvcnQ=", r#"["secrets"]"#), "aescbc.keys[0].secret: Invalid value"),
        (one("secretbox", KEY1, r#"["secrets"]"#), "got 16, expected one of [32]"),
        (one("aesgcm", "", r#"["secrets"]"#), "secret is a mandatory field for a key"),
        (one("aesgcm", KEY1, r#"["Secrets"]"#), "should not contain capital letters"),
        (one("aesgcm", KEY1, r#"["*"]"#), "use '*.' to encrypt all the resources"),
        (one("aesgcm", KEY1, r#"["serviceipallocations"]"#), "do not have REST API/s"),
        (one("aesgcm", KEY1, r#"["events.events.k8s.io"]"#), "Use 'events' instead"),
        (one("aesgcm", KEY1, r#"["deployments.extensions"]"#), "'extensions' group has been removed"),
        (one("aesgcm", KEY1, r#"["secrets.*"]"#), "across groups is not supported"),
        (one("aesgcm", KEY1, r#"["secrets", "secrets"]"#), "cannot be specified multiple times"),
        (one("aesgcm", KEY1, r#"["secrets", "*."]"#), "overlapping resources"),
    ];
    for (text, expected) in cases {
        let error = error_of(&text);
        assert!(error.contains(expected), "{expected:?} not in {error:?}");
    }
    let base = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n";
    for (providers, expected) in [
        ("", "resources[0].providers: Required value"),
        ("      - {}\n", "does not contain any of the expected providers"),
        (
            "      - identity: {}\n        aesgcm: {keys: [{name: k, secret: c2VjcmV0IGlzIHNlY3VyZQ==}]}\n",
            "more than one provider specified in a single element",
        ),
        ("      - aesgcm: {keys: []}\n", "aesgcm.keys: Required value: at least one keys is required"),
        ("      - aesgcm: {keys: [{secret: c2VjcmV0IGlzIHNlY3VyZQ==}]}\n", "keys[0].name: Required value"),
        (
            "      - kms: {name: p, endpoint: unix:///tmp/kms.sock}\n",
            "resources[0].providers[0].kms: Unsupported value: kms providers",
        ),
    ] {
        let error = error_of(&format!("{base}{providers}"));
        assert!(error.contains(expected), "{expected:?} not in {error:?}");
    }
    let masked = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: ['*.']\n    providers: [{identity: {}}]\n  - resources: [secrets]\n    providers: [{identity: {}}]\n";
    assert!(error_of(masked).contains(r#"resource "secrets" is masked by earlier rule "*.""#));
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "\n").expect("write");
    let error = EncryptionConfig::load(&empty)
        .expect_err("empty")
        .to_string();
    assert!(error.contains("is empty"), "{error}");
    let error = EncryptionConfig::load(&dir.path().join("missing.yaml"))
        .expect_err("missing")
        .to_string();
    assert!(
        error.contains("error reading encryption provider configuration file"),
        "{error}"
    );
}

fn providers_of(text: &str) -> Arc<Vec<Provider>> {
    EncryptionConfig::parse(text)
        .expect("config")
        .providers_for("", "secrets")
        .expect("secrets")
        .clone()
}

#[test]
fn each_provider_round_trips_with_upstreams_prefix_and_layout() {
    let key = "/registry/core/secrets/default/s";
    let plain = br#"{"data":{"password":"aHVudGVyMg=="}}"#;
    let key24 = base64::engine::general_purpose::STANDARD.encode([7u8; 24]);
    // (provider, key, bytes between the name's colon and the ciphertext
    // proper, cipher overhead) as upstream writes them.
    for (provider, secret, nonce, overhead) in [
        ("aesgcm", KEY1, 12, 16),
        ("aesgcm", key24.as_str(), 12, 16),
        ("aesgcm", KEY32, 12, 16),
        ("aescbc", KEY32, 16, 16 - plain.len() % 16),
        ("aescbc", KEY1, 16, 16 - plain.len() % 16),
        ("secretbox", KEY32, 24, 16),
    ] {
        let list = providers_of(&one(provider, secret, r#"["secrets"]"#));
        let stored = list[0].encrypt(key, plain).expect("encrypt");
        let prefix = format!("k8s:enc:{provider}:v1:k:");
        assert!(stored.starts_with(prefix.as_bytes()), "{provider}");
        assert_eq!(
            stored.len(),
            prefix.len() + nonce + plain.len() + overhead,
            "{provider}"
        );
        assert!(
            !stored.windows(8).any(|w| w == b"aHVudGVy"),
            "{provider} leaks"
        );
        assert_eq!(
            decrypt(&list, key, &stored).expect("decrypt"),
            (plain.to_vec(), false),
            "{provider}"
        );
        // Fresh randomness every time.
        assert_ne!(
            list[0].encrypt(key, plain).expect("again"),
            stored,
            "{provider}"
        );
    }
}

#[test]
fn reads_refuse_what_they_cannot_vouch_for() {
    let key = "/registry/core/secrets/default/s";
    let gcm = providers_of(&one("aesgcm", KEY1, r#"["secrets"]"#));
    let stored = gcm[0].encrypt(key, b"{}").expect("encrypt");
    // AES-GCM authenticates the storage key: a value moved elsewhere fails.
    let moved = decrypt(&gcm, "/registry/core/secrets/default/other", &stored)
        .expect_err("moved")
        .to_string();
    assert!(moved.contains("authentication failed"), "{moved}");
    // A plain value without identity.
    let plain = decrypt(&gcm, key, b"{}").expect_err("plain").to_string();
    assert!(
        plain.contains("stored unencrypted") && plain.contains("no identity provider"),
        "{plain}"
    );
    // A key the configuration does not list.
    let other = providers_of(&one("secretbox", KEY32, r#"["secrets"]"#));
    let unknown = decrypt(&other, key, &stored)
        .expect_err("unknown")
        .to_string();
    assert!(
        unknown.contains(r#"encrypted with aesgcm key "k""#)
            && unknown.contains(r#"configured: secretbox key "k""#),
        "{unknown}"
    );
    // Read with a key that no longer writes: stale, so updates rewrite it.
    let rotated = providers_of(&UPSTREAM.replace("name: key1", "name: key0"));
    let by_key2 = EncryptionConfig::parse(&UPSTREAM.replace(
        "            - name: key1\n              secret: c2VjcmV0IGlzIHNlY3VyZQ==\n            - name: key2",
        "            - name: key2",
    ))
    .expect("key2 only");
    let by_key2 = by_key2.providers_for("", "secrets").expect("secrets");
    let sealed = by_key2[0].encrypt(key, b"{}").expect("key2");
    assert!(sealed.starts_with(b"k8s:enc:aesgcm:v1:key2:"));
    assert_eq!(
        decrypt(&rotated, key, &sealed).expect("key2 reads"),
        (b"{}".to_vec(), true)
    );
    assert!(decrypt(&rotated, key, b"{}").expect("identity, last").1);
    // Identity reads plain values and refuses encrypted ones.
    let identity =
        providers_of(&UPSTREAM.replace("      - aesgcm:", "      - identity: {}\n      - aesgcm:"));
    assert_eq!(identity[0].name(), "identity");
    assert_eq!(
        decrypt(&identity, key, b"{}").expect("plain"),
        (b"{}".to_vec(), false)
    );
    assert_eq!(identity[0].encrypt(key, b"{}").expect("identity"), b"{}");
    let garbage = decrypt(&identity, key, b"k8s:enc:kms:v2:p:xyz").expect_err("kms");
    assert!(
        garbage.to_string().contains("encrypted with kms key"),
        "{garbage}"
    );
}

#[tokio::test]
async fn the_wrapper_encrypts_configured_resources_only_and_decrypts_watches() {
    let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let config = EncryptionConfig::parse(&one("aesgcm", KEY32, r#"["secrets"]"#)).expect("config");
    let store = EncryptedStorage::new(inner.clone(), config);
    let secret = "/registry/core/secrets/ns/s";
    let map = "/registry/core/configmaps/ns/c";
    let mut watch = store.watch("/registry/", 0).await.expect("watch");
    let created = store
        .create(secret, Bytes::from_static(b"v1"))
        .await
        .expect("create");
    assert_eq!(created.value, Bytes::from_static(b"v1"));
    store
        .update(secret, Bytes::from_static(b"v2"), created.mod_revision)
        .await
        .expect("update");
    store
        .create(map, Bytes::from_static(b"m"))
        .await
        .expect("create map");
    let raw = inner.get(secret).await.expect("raw").expect("exists");
    assert!(raw.value.starts_with(b"k8s:enc:aesgcm:v1:k:"));
    assert_eq!(
        inner.get(map).await.expect("raw").expect("exists").value,
        "m"
    );
    assert_eq!(
        store.get(secret).await.expect("get").expect("exists").value,
        "v2"
    );
    let listed = store
        .list(ListRequest::prefix("/registry/"))
        .await
        .expect("list");
    let values: Vec<_> = listed.items.iter().map(|kv| kv.value.clone()).collect();
    assert_eq!(values, ["m", "v2"]);
    let deleted = store.delete(secret, None).await.expect("delete");
    assert_eq!(deleted.previous.value, "v2");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = watch.next().await.expect("open").expect("event");
        seen.push((event.value, event.prev_value));
    }
    assert_eq!(
        seen,
        [
            (Bytes::from("v1"), None),
            (Bytes::from("v2"), Some(Bytes::from("v1"))),
            (Bytes::from("m"), None),
            (Bytes::from("v2"), Some(Bytes::from("v2"))),
        ]
    );
}

/// Values written by kube-apiserver v1.34's own transformers
/// (`encryptionconfig.LoadEncryptionConfig` on this file, then
/// `TransformToStorage` of `{"kind":"Secret"}` with the key as context),
/// so the formats are checked against upstream's code, not our reading.
#[test]
fn values_written_by_kube_apiserver_decrypt() {
    const FILE: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm: {keys: [{name: gcm16, secret: c2VjcmV0IGlzIHNlY3VyZQ==}]}
      - aescbc: {keys: [{name: cbc32, secret: YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=}]}
      - secretbox: {keys: [{name: box32, secret: YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=}]}
"#;
    let written = [
        ("/registry/core/secrets/default/x", "azhzOmVuYzphZXNnY206djE6Z2NtMTY6teHm/cJtLWTVZvA0y7K6tHOVio8uIIPaLr6xFeXlNdvjx68A6DbYs84ZiD3t"),
        ("/registry/core/configmaps/default/x", "azhzOmVuYzphZXNjYmM6djE6Y2JjMzI6saKOph1CpUDTrJWdLay2ziEjKgxwV52q1LJKB8qGKpgjn3WKh7ccA+8jGnIr2Fqy"),
        ("/registry/core/pods/default/x", "azhzOmVuYzpzZWNyZXRib3g6djE6Ym94MzI6R33zYCS1Ul7KXyqeUI0+DkjVamslOocP4TWmPwBym/zd7bItgeuU+5Xcx+rBl2E+g4SiiKHLiDEn"),
    ];
    let list = providers_of(FILE);
    for (key, value) in written {
        let value = base64::engine::general_purpose::STANDARD
            .decode(value)
            .expect("base64");
        let (plain, _) = decrypt(&list, key, &value).expect("upstream's value decrypts");
        assert_eq!(plain, br#"{"kind":"Secret"}"#, "{key}");
    }
}

#[tokio::test]
async fn an_undecryptable_watch_event_is_skipped_not_fatal() {
    let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let writer = EncryptedStorage::new(
        inner.clone(),
        EncryptionConfig::parse(&one("aesgcm", KEY32, r#"["secrets"]"#)).expect("writer"),
    );
    let reader = EncryptedStorage::new(
        inner.clone(),
        EncryptionConfig::parse(&one("aesgcm", KEY1, r#"["secrets"]"#)).expect("reader"),
    );
    let mut watch = reader.watch("/registry/", 0).await.expect("watch");
    writer
        .create("/registry/core/secrets/ns/s", Bytes::from_static(b"v"))
        .await
        .expect("secret");
    writer
        .create("/registry/core/configmaps/ns/c", Bytes::from_static(b"m"))
        .await
        .expect("map");
    let event = watch
        .next()
        .await
        .expect("open")
        .expect("the next readable event");
    assert_eq!(
        (event.key.as_str(), event.value),
        ("/registry/core/configmaps/ns/c", Bytes::from("m"))
    );
    let error = reader
        .get("/registry/core/secrets/ns/s")
        .await
        .expect_err("unreadable")
        .to_string();
    assert!(error.contains("cannot decrypt the value of /registry/core/secrets/ns/s: aesgcm key \"k\": AES-GCM authentication failed"), "{error}");
}
