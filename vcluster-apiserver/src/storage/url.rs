//! Choosing a backend with one URL-like string, as a command-line flag would.
//!
//! | URL | backend |
//! | --- | --- |
//! | `memory://` | [`MemoryStorage`], optional `?history=N` |
//! | `sqlite:///var/lib/vc/state.db` | [`SqliteStorage`] at an absolute path |
//! | `sqlite://data/state.db` | [`SqliteStorage`] relative to the working directory |
//! | `etcd://127.0.0.1:2379?prefix=/vc1` | `EtcdStorage` (cargo feature `etcd`); several endpoints comma-separated |
//! | `etcd://10.0.0.1:2379?ca=/etc/etcd/ca.pem&cert=/etc/etcd/client.pem&key=/etc/etcd/client-key.pem` | etcd over TLS with a client certificate |
//!
//! Options: `history=N` (memory, sqlite), `sync=full|normal` (sqlite),
//! `prefix=/p` (etcd), `ca=PATH` (etcd over TLS, trusting that CA) with
//! `cert=PATH&key=PATH` (a client certificate, both or neither). Paths and values may be percent-encoded (`%3F` for a
//! `?` in a file name). Parsing is strict: an unknown scheme or option, a
//! missing path or a malformed value is a typed [`ConfigError`] rather than
//! a silently different store.
//!
//! Every scheme parses in every build. The etcd client is behind the cargo
//! feature `etcd` (its gRPC code is generated at build time and needs
//! `protoc`); without it, [`StorageConfig::open`] answers an `etcd://` URL
//! with [`OpenError::NotCompiledIn`], naming the feature.
//!
//! ```
//! use vcluster_apiserver::storage::StorageConfig;
//! let config: StorageConfig = "etcd://10.0.0.1:2379,10.0.0.2?prefix=/vc1".parse().unwrap();
//! assert_eq!(
//!     config,
//!     StorageConfig::Etcd {
//!         endpoints: vec!["http://10.0.0.1:2379".into(), "http://10.0.0.2:2379".into()],
//!         prefix: "/vc1".into(),
//!         tls: None,
//!     }
//! );
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

#[cfg(feature = "etcd")]
use super::etcd::{EtcdConnectError, EtcdOptions, EtcdStorage};
use super::memory::{MemoryStorage, DEFAULT_HISTORY as MEMORY_HISTORY};
use super::sqlite::{SqliteOpenError, SqliteOptions, SqliteStorage, Synchronous};
use super::Storage;

/// TLS towards etcd, as production clusters run it: the CA that signed
/// etcd's serving certificate and, for etcd's `--client-cert-auth`, a
/// client certificate. Files in PEM, read when connecting.
///
/// Part of the configuration, so it exists whether or not the `etcd`
/// feature (the client itself) is compiled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA certificate(s) etcd's certificate must chain to.
    pub ca: PathBuf,
    /// A client certificate and its private key.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// etcd's client port, used when an endpoint names none.
pub const DEFAULT_ETCD_PORT: u16 = 2379;

/// A parsed storage URL: which backend, and how to open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageConfig {
    /// In memory; gone when the process ends.
    Memory {
        /// Writes remembered for watches and old-revision reads.
        history: usize,
    },
    /// One SQLite file.
    Sqlite {
        /// The database file (absolute or relative to the working directory).
        path: PathBuf,
        /// History window and sync mode.
        options: SqliteOptions,
    },
    /// An etcd cluster.
    Etcd {
        /// Client URLs, `http://host:port`.
        endpoints: Vec<String>,
        /// Key prefix of this virtual cluster (may be empty).
        prefix: String,
        /// TLS towards etcd (`ca`, `cert`, `key` options); endpoints are
        /// then `https://`.
        tls: Option<EtcdTls>,
    },
}

impl Default for StorageConfig {
    /// The embedded default: in memory.
    fn default() -> Self {
        StorageConfig::Memory {
            history: MEMORY_HISTORY,
        }
    }
}

/// Why a storage URL could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No `scheme://` at the start.
    #[error(
        "storage URL {url:?} has no scheme; expected memory://, sqlite:///path/state.db or \
         etcd://host:port"
    )]
    MissingScheme {
        /// The whole input.
        url: String,
    },
    /// A scheme no backend answers to.
    #[error("unknown storage scheme {scheme:?}; expected memory, sqlite or etcd")]
    UnknownScheme {
        /// The scheme given.
        scheme: String,
    },
    /// `sqlite://` without a file.
    #[error(
        "sqlite storage URL has no file path; use sqlite:///abs/path.db or sqlite://rel/path.db"
    )]
    MissingPath,
    /// `memory://` followed by a host or path.
    #[error("memory storage takes no host or path, got {found:?}")]
    UnexpectedPath {
        /// What followed `memory://`.
        found: String,
    },
    /// `etcd://` without any endpoint.
    #[error("etcd storage URL has no endpoints; use etcd://host:port[,host:port...]")]
    MissingEndpoints,
    /// An endpoint that is not `host[:port]`.
    #[error("invalid etcd endpoint {endpoint:?}: {reason}")]
    BadEndpoint {
        /// The endpoint as written.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A query part that is not `key=value`.
    #[error("malformed storage option {part:?}; expected key=value")]
    BadQuery {
        /// The query part.
        part: String,
    },
    /// An option the backend does not have.
    #[error("unknown option {key:?} for {scheme} storage; known options: {known}")]
    UnknownOption {
        /// The backend.
        scheme: &'static str,
        /// The option given.
        key: String,
        /// The options it has.
        known: &'static str,
    },
    /// The same option twice.
    #[error("storage option {key:?} is given more than once")]
    DuplicateOption {
        /// The option.
        key: String,
    },
    /// An option value that does not parse.
    #[error("bad value {value:?} for storage option {key:?}: {reason}")]
    BadValue {
        /// The option.
        key: String,
        /// The value given.
        value: String,
        /// What it should be.
        reason: &'static str,
    },
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8.
    #[error("invalid percent-encoding in {text:?}")]
    BadEncoding {
        /// The encoded text.
        text: String,
    },
}

/// Why a parsed configuration could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The SQLite file could not be opened.
    #[error(transparent)]
    Sqlite(#[from] SqliteOpenError),
    /// etcd could not be reached.
    #[cfg(feature = "etcd")]
    #[error(transparent)]
    Etcd(#[from] EtcdConnectError),
    /// The configuration names a backend this build leaves out.
    #[error(
        "the {backend} storage backend is not compiled into this build; rebuild with the \
         cargo feature `{feature}` (for example `cargo build --features {feature}`)"
    )]
    NotCompiledIn {
        /// The backend (`etcd`).
        backend: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
        /// The configuration, as a URL.
        url: String,
    },
}

impl StorageConfig {
    /// Opens the configured backend, ready to share.
    pub async fn open(&self) -> Result<Arc<dyn Storage>, OpenError> {
        Ok(match self {
            StorageConfig::Memory { history } => Arc::new(MemoryStorage::with_history(*history)),
            StorageConfig::Sqlite { path, options } => {
                Arc::new(SqliteStorage::open_with(path, *options).await?)
            }
            #[cfg(feature = "etcd")]
            StorageConfig::Etcd {
                endpoints,
                prefix,
                tls,
            } => {
                let options = EtcdOptions {
                    tls: tls.clone(),
                    ..EtcdOptions::with_prefix(prefix.as_str())
                };
                Arc::new(EtcdStorage::connect_with(endpoints, options).await?)
            }
            #[cfg(not(feature = "etcd"))]
            StorageConfig::Etcd { .. } => {
                return Err(OpenError::NotCompiledIn {
                    backend: "etcd",
                    feature: "etcd",
                    url: self.to_string(),
                })
            }
        })
    }
}

impl FromStr for StorageConfig {
    type Err = ConfigError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let Some((scheme, rest)) = url.trim().split_once("://") else {
            return Err(ConfigError::MissingScheme {
                url: url.to_owned(),
            });
        };
        let (body, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut options = Options::parse(query)?;
        let config = match scheme.to_ascii_lowercase().as_str() {
            "memory" => {
                if !body.is_empty() && body != "/" {
                    return Err(ConfigError::UnexpectedPath {
                        found: body.to_owned(),
                    });
                }
                options.allow("memory", "history")?;
                let history = match options.take("history") {
                    Some(raw) => parse_history(&raw)?,
                    None => MEMORY_HISTORY,
                };
                StorageConfig::Memory { history }
            }
            "sqlite" => {
                let path = decode(body)?;
                if path.is_empty() {
                    return Err(ConfigError::MissingPath);
                }
                options.allow("sqlite", "history, sync")?;
                let mut sqlite = SqliteOptions::default();
                if let Some(raw) = options.take("history") {
                    sqlite.history = parse_history(&raw)? as u64;
                }
                if let Some(raw) = options.take("sync") {
                    sqlite.synchronous = match raw.to_ascii_lowercase().as_str() {
                        "full" => Synchronous::Full,
                        "normal" => Synchronous::Normal,
                        _ => {
                            return Err(ConfigError::BadValue {
                                key: "sync".into(),
                                value: raw,
                                reason: "expected full or normal",
                            })
                        }
                    };
                }
                StorageConfig::Sqlite {
                    path: PathBuf::from(path),
                    options: sqlite,
                }
            }
            "etcd" => {
                options.allow("etcd", "prefix, ca, cert, key")?;
                let body = body.trim_end_matches('/');
                if body.is_empty() {
                    return Err(ConfigError::MissingEndpoints);
                }
                let endpoints = body
                    .split(',')
                    .map(parse_endpoint)
                    .collect::<Result<Vec<_>, _>>()?;
                let prefix = options.take("prefix").unwrap_or_default();
                let tls = etcd_tls(&mut options)?;
                let endpoints = match tls {
                    Some(_) => endpoints
                        .into_iter()
                        .map(|e| e.replacen("http://", "https://", 1))
                        .collect(),
                    None => endpoints,
                };
                StorageConfig::Etcd {
                    endpoints,
                    prefix,
                    tls,
                }
            }
            _ => {
                return Err(ConfigError::UnknownScheme {
                    scheme: scheme.to_owned(),
                })
            }
        };
        Ok(config)
    }
}

impl fmt::Display for StorageConfig {
    /// The canonical URL: parsing it gives the same configuration back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageConfig::Memory { history } => {
                write!(f, "memory://")?;
                if *history != MEMORY_HISTORY {
                    write!(f, "?history={history}")?;
                }
                Ok(())
            }
            StorageConfig::Sqlite { path, options } => {
                write!(f, "sqlite://{}", encode(&path.to_string_lossy()))?;
                let mut query = Vec::new();
                if options.history != SqliteOptions::default().history {
                    query.push(format!("history={}", options.history));
                }
                if options.synchronous == Synchronous::Normal {
                    query.push("sync=normal".to_owned());
                }
                if !query.is_empty() {
                    write!(f, "?{}", query.join("&"))?;
                }
                Ok(())
            }
            StorageConfig::Etcd {
                endpoints,
                prefix,
                tls,
            } => {
                let hosts: Vec<&str> = endpoints
                    .iter()
                    .map(|e| {
                        e.strip_prefix("http://")
                            .or_else(|| e.strip_prefix("https://"))
                            .unwrap_or(e)
                    })
                    .collect();
                write!(f, "etcd://{}", hosts.join(","))?;
                let mut query = Vec::new();
                if !prefix.is_empty() {
                    query.push(format!("prefix={}", encode(prefix)));
                }
                if let Some(tls) = tls {
                    query.push(format!("ca={}", encode(&tls.ca.to_string_lossy())));
                    if let Some((cert, key)) = &tls.client {
                        query.push(format!("cert={}", encode(&cert.to_string_lossy())));
                        query.push(format!("key={}", encode(&key.to_string_lossy())));
                    }
                }
                if !query.is_empty() {
                    write!(f, "?{}", query.join("&"))?;
                }
                Ok(())
            }
        }
    }
}

/// `ca`, `cert` and `key`: TLS towards etcd.
fn etcd_tls(options: &mut Options) -> Result<Option<EtcdTls>, ConfigError> {
    let (ca, cert, key) = (
        options.take("ca"),
        options.take("cert"),
        options.take("key"),
    );
    let client = match (cert, key) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        (Some(cert), None) => {
            return Err(ConfigError::BadValue {
                key: "cert".into(),
                value: cert,
                reason: "a client certificate needs its key (key=PATH)",
            })
        }
        (None, Some(key)) => {
            return Err(ConfigError::BadValue {
                key: "key".into(),
                value: key,
                reason: "a client key needs its certificate (cert=PATH)",
            })
        }
    };
    match ca {
        Some(ca) => Ok(Some(EtcdTls {
            ca: PathBuf::from(ca),
            client,
        })),
        None if client.is_some() => Err(ConfigError::BadValue {
            key: "cert".into(),
            value: String::new(),
            reason: "TLS towards etcd needs the CA that signed its certificate (ca=PATH)",
        }),
        None => Ok(None),
    }
}

/// The query's `key=value` pairs, consumed as the backend reads them.
struct Options(Vec<(String, String)>);

impl Options {
    fn parse(query: &str) -> Result<Self, ConfigError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(ConfigError::BadQuery {
                    part: part.to_owned(),
                });
            };
            let key = decode(key)?;
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(ConfigError::DuplicateOption { key });
            }
            pairs.push((key, decode(value)?));
        }
        Ok(Self(pairs))
    }

    /// Fails on the first option not in `known`.
    /// `known` lists the options, comma-separated, as the error shows them.
    fn allow(&self, scheme: &'static str, known: &'static str) -> Result<(), ConfigError> {
        match self
            .0
            .iter()
            .find(|(k, _)| !known.split(", ").any(|name| name == k))
        {
            Some((key, _)) => Err(ConfigError::UnknownOption {
                scheme,
                key: key.clone(),
                known,
            }),
            None => Ok(()),
        }
    }

    fn take(&mut self, key: &str) -> Option<String> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.swap_remove(index).1)
    }
}

fn parse_history(raw: &str) -> Result<usize, ConfigError> {
    match raw.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::BadValue {
            key: "history".into(),
            value: raw.to_owned(),
            reason: "expected a positive number of revisions",
        }),
    }
}

/// `host[:port]` to `http://host:port`; IPv6 hosts in brackets.
fn parse_endpoint(raw: &str) -> Result<String, ConfigError> {
    let bad = |reason| ConfigError::BadEndpoint {
        endpoint: raw.to_owned(),
        reason,
    };
    let endpoint = raw.trim();
    if endpoint.is_empty() {
        return Err(bad("empty endpoint"));
    }
    if endpoint.contains("://") || endpoint.contains('/') {
        return Err(bad("expected host:port without a scheme or path"));
    }
    let (host, port) = if let Some(v6) = endpoint.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(bad("unclosed '[' in an IPv6 address"));
        };
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("expected ':' after ']'"))?,
            ),
        };
        (format!("[{host}]"), port)
    } else {
        match endpoint.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (endpoint.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(bad("missing host"));
    }
    let port = match port {
        None => DEFAULT_ETCD_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(bad("port must be a number from 1 to 65535")),
        },
    };
    Ok(format!("http://{host}:{port}"))
}

/// Decodes `%XX` escapes.
fn decode(text: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::BadEncoding {
        text: text.to_owned(),
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Escapes what would change the meaning of a URL part.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' | '?' | '&' | '#' | ',' | '=' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
