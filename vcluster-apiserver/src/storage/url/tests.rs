//! Parsing, printing and opening storage URLs.

use super::*;
use crate::storage::sqlite::{SqliteOpenError, Synchronous};

fn parse(url: &str) -> Result<StorageConfig, ConfigError> {
    url.parse()
}

fn sqlite(path: &str, options: SqliteOptions) -> StorageConfig {
    StorageConfig::Sqlite {
        path: PathBuf::from(path),
        options,
    }
}

#[test]
fn parses_every_backend() {
    assert_eq!(parse("memory://"), Ok(StorageConfig::default()));
    assert_eq!(
        parse("memory://?history=50"),
        Ok(StorageConfig::Memory { history: 50 })
    );
    assert_eq!(
        parse("sqlite:///var/lib/vc/state.db"),
        Ok(sqlite("/var/lib/vc/state.db", SqliteOptions::default()))
    );
    assert_eq!(
        parse("sqlite://data/state.db"),
        Ok(sqlite("data/state.db", SqliteOptions::default()))
    );
    assert_eq!(
        parse("sqlite:///tmp/a%3Fb.db?history=100&sync=normal"),
        Ok(sqlite(
            "/tmp/a?b.db",
            SqliteOptions {
                history: 100,
                synchronous: Synchronous::Normal
            }
        ))
    );
    assert_eq!(
        parse("etcd://127.0.0.1:2379?prefix=/vc1"),
        Ok(StorageConfig::Etcd {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/vc1".into(),
            tls: None,
        })
    );
    assert_eq!(
        parse("ETCD://a:1,b,[::1]:3/"),
        Ok(StorageConfig::Etcd {
            endpoints: vec![
                "http://a:1".into(),
                "http://b:2379".into(),
                "http://[::1]:3".into()
            ],
            prefix: String::new(),
            tls: None,
        })
    );
}

#[test]
fn etcd_over_tls_takes_a_ca_and_an_optional_client_certificate() {
    assert_eq!(
        parse("etcd://a:2379,b?ca=/pki/ca.pem&cert=/pki/c.pem&key=/pki/k.pem"),
        Ok(StorageConfig::Etcd {
            endpoints: vec!["https://a:2379".into(), "https://b:2379".into()],
            prefix: String::new(),
            tls: Some(EtcdTls {
                ca: "/pki/ca.pem".into(),
                client: Some(("/pki/c.pem".into(), "/pki/k.pem".into())),
            }),
        })
    );
    for (url, key) in [
        ("etcd://a?ca=/ca.pem&cert=/c.pem", "cert"),
        ("etcd://a?ca=/ca.pem&key=/k.pem", "key"),
        ("etcd://a?cert=/c.pem&key=/k.pem", "cert"),
    ] {
        match parse(url) {
            Err(ConfigError::BadValue { key: bad, .. }) => assert_eq!(bad, key, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn display_round_trips() {
    for url in [
        "memory://",
        "memory://?history=7",
        "sqlite:///abs/state.db",
        "sqlite://rel/state.db?history=5&sync=normal",
        "sqlite:///odd%20name%3F.db",
        "etcd://a:1,b:2?prefix=/vc1",
        "etcd://a:1?prefix=/vc1&ca=/pki/ca.pem&cert=/pki/c.pem&key=/pki/k.pem",
        "etcd://a:1?ca=/pki/ca.pem",
        "etcd://[::1]:2379",
    ] {
        let config = parse(url).expect(url);
        assert_eq!(config.to_string(), url);
        assert_eq!(parse(&config.to_string()), Ok(config));
    }
}

#[test]
fn rejects_malformed_urls_with_typed_errors() {
    assert!(matches!(
        parse("/var/lib/state.db"),
        Err(ConfigError::MissingScheme { .. })
    ));
    assert_eq!(
        parse("postgres://db"),
        Err(ConfigError::UnknownScheme {
            scheme: "postgres".into()
        })
    );
    assert_eq!(parse("sqlite://"), Err(ConfigError::MissingPath));
    assert_eq!(parse("sqlite://?history=5"), Err(ConfigError::MissingPath));
    assert!(matches!(
        parse("memory://somewhere"),
        Err(ConfigError::UnexpectedPath { .. })
    ));
    assert_eq!(parse("etcd://"), Err(ConfigError::MissingEndpoints));
    assert!(matches!(
        parse("etcd://a:1,,b:2"),
        Err(ConfigError::BadEndpoint {
            reason: "empty endpoint",
            ..
        })
    ));
    assert!(matches!(
        parse("etcd://host:99999"),
        Err(ConfigError::BadEndpoint { .. })
    ));
    assert!(matches!(
        parse("etcd://http://host:2379"),
        Err(ConfigError::BadEndpoint { .. })
    ));
    assert!(matches!(
        parse("etcd://[::1:2379"),
        Err(ConfigError::BadEndpoint { .. })
    ));
    assert!(matches!(
        parse("memory://?history"),
        Err(ConfigError::BadQuery { .. })
    ));
    assert!(matches!(
        parse("memory://?history=0"),
        Err(ConfigError::BadValue { .. })
    ));
    assert!(matches!(
        parse("sqlite://x.db?history=lots"),
        Err(ConfigError::BadValue { .. })
    ));
    assert!(matches!(
        parse("sqlite://x.db?sync=sometimes"),
        Err(ConfigError::BadValue { .. })
    ));
    assert_eq!(
        parse("etcd://a:1?prefx=/vc1"),
        Err(ConfigError::UnknownOption {
            scheme: "etcd",
            key: "prefx".into(),
            known: "prefix, ca, cert, key"
        })
    );
    assert!(matches!(
        parse("memory://?sync=full"),
        Err(ConfigError::UnknownOption {
            scheme: "memory",
            ..
        })
    ));
    assert!(matches!(
        parse("sqlite://x.db?history=1&history=2"),
        Err(ConfigError::DuplicateOption { .. })
    ));
    assert!(matches!(
        parse("sqlite://bad%zz.db"),
        Err(ConfigError::BadEncoding { .. })
    ));
    let message = parse("etcd://a:1?prefx=/vc1").unwrap_err().to_string();
    assert!(
        message.contains("prefx") && message.contains("prefix"),
        "{message}"
    );
}

#[tokio::test]
async fn opens_memory_and_sqlite() {
    let memory = parse("memory://?history=3")
        .expect("parse")
        .open()
        .await
        .expect("open");
    assert_eq!(memory.current_revision().await.expect("revision"), 0);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/nested/state.db", dir.path().display());
    let store = parse(&url).expect("parse").open().await.expect("open");
    store
        .create("/a", bytes::Bytes::from_static(b"1"))
        .await
        .expect("create");
    assert!(dir.path().join("nested/state.db").exists());
    let err = parse(&url)
        .expect("parse")
        .open()
        .await
        .err()
        .expect("locked");
    assert!(
        matches!(err, OpenError::Sqlite(SqliteOpenError::InUse { .. })),
        "{err}"
    );
}

/// A build without the `etcd` feature still parses `etcd://` URLs, so a
/// configuration stays valid across builds, and refuses to open them with
/// an error that says which feature to turn on.
#[cfg(not(feature = "etcd"))]
#[tokio::test]
async fn etcd_without_the_feature_is_refused_naming_it() {
    let err = parse("etcd://127.0.0.1:2379?prefix=/vc1")
        .expect("parse")
        .open()
        .await
        .err()
        .expect("no etcd client in this build");
    assert!(
        matches!(
            err,
            OpenError::NotCompiledIn {
                feature: "etcd",
                ..
            }
        ),
        "{err}"
    );
    let OpenError::NotCompiledIn { url, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(url, "etcd://127.0.0.1:2379?prefix=/vc1");
    let message = err.to_string();
    assert!(message.contains("--features etcd"), "{message}");
}
