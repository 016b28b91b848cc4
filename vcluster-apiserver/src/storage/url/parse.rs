//! Reading a storage URL: scheme, path or endpoints, and the strict,
//! percent-decoded query options.

use std::path::PathBuf;
use std::str::FromStr;

use super::{EtcdTls, StorageConfig, DEFAULT_ETCD_PORT, MEMORY_HISTORY};
use crate::storage::sqlite::{SqliteOptions, Synchronous};

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
