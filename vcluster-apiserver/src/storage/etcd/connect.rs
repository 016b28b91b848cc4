//! Setting up the connection: options, TLS from PEM files, endpoints, and
//! a first request so a wrong address fails at once, naming it.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions};

use super::{EtcdStorage, EtcdTls};

/// How a [`EtcdStorage`] reaches etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Prepended to every key (trailing `/`s are dropped); empty for none.
    pub prefix: String,
    /// Deadline of one unary call (get, list, write, compact).
    pub request_timeout: Duration,
    /// Deadline of establishing a connection.
    pub connect_timeout: Duration,
    /// How long a broken watch keeps trying to resume before it gives up.
    pub watch_resume: Duration,
    /// TLS towards etcd (endpoints are then `https://`); `None`: plain HTTP.
    pub tls: Option<EtcdTls>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            watch_resume: Duration::from_secs(30),
            tls: None,
        }
    }
}

impl EtcdOptions {
    /// The default options with a key prefix.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }
}

/// Why a connection to etcd could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EtcdConnectError {
    /// No endpoint was given.
    #[error("no etcd endpoints given")]
    NoEndpoints,
    /// An endpoint is not a usable URL.
    #[error("invalid etcd endpoints {endpoints}: {source}")]
    InvalidEndpoint {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// What the client said.
        #[source]
        source: etcd_client::Error,
    },
    /// A TLS file could not be read or used.
    #[error("etcd TLS: cannot use {path}: {message}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// etcd did not answer a first request.
    #[error("cannot reach etcd at {endpoints}: {message}")]
    Unreachable {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// What went wrong.
        message: String,
    },
}

/// The client TLS configuration from the PEM files.
fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, EtcdConnectError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|err| EtcdConnectError::Tls {
            path: path.clone(),
            message: err.to_string(),
        })
    };
    let mut options = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&tls.ca)?));
    if let Some((cert, key)) = &tls.client {
        options = options.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(options)
}

impl EtcdStorage {
    /// Connects to etcd at `endpoints` (`host:port` or `http://host:port`),
    /// storing every key under `prefix`.
    pub async fn connect<E: AsRef<str>>(
        endpoints: &[E],
        prefix: &str,
    ) -> Result<Self, EtcdConnectError> {
        Self::connect_with(endpoints, EtcdOptions::with_prefix(prefix)).await
    }

    /// Connects with explicit options and checks that etcd answers.
    pub async fn connect_with<E: AsRef<str>>(
        endpoints: &[E],
        options: EtcdOptions,
    ) -> Result<Self, EtcdConnectError> {
        let secure = options.tls.is_some();
        let endpoints: Vec<String> = endpoints
            .iter()
            .map(|e| e.as_ref().trim())
            .filter(|e| !e.is_empty())
            .map(|e| match (secure, e.strip_prefix("http://")) {
                // TLS needs `https://` endpoints.
                (true, Some(rest)) => format!("https://{rest}"),
                (true, None) if !e.contains("://") => format!("https://{e}"),
                _ => e.to_owned(),
            })
            .collect();
        if endpoints.is_empty() {
            return Err(EtcdConnectError::NoEndpoints);
        }
        let joined = endpoints.join(",");
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            // HTTP/2 pings notice a dead server under an idle watch.
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls_options(tls)?);
        }
        let unreachable = |message: String| EtcdConnectError::Unreachable {
            endpoints: joined.clone(),
            message,
        };
        let client = match tokio::time::timeout(
            options.connect_timeout,
            Client::connect(&endpoints, Some(connect)),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(
                source @ (etcd_client::Error::InvalidUri(_) | etcd_client::Error::InvalidArgs(_)),
            )) => {
                return Err(EtcdConnectError::InvalidEndpoint {
                    endpoints: joined,
                    source,
                })
            }
            Ok(Err(err)) => return Err(unreachable(err.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no connection within {:?}",
                    options.connect_timeout
                )))
            }
        };
        let mut namespace = options.prefix.trim_end_matches('/').as_bytes().to_vec();
        namespace.shrink_to_fit();
        let store = Self {
            client,
            namespace,
            endpoints: joined.clone(),
            options,
        };
        // The channel connects lazily: ask something now so a wrong address
        // fails here, with the address in the message.
        // Through the same retry as every call: with several endpoints, a
        // dead member must not fail the start.
        let kv = store.client.kv_client();
        let probe = store.probe_key();
        let answered = tokio::time::timeout(
            store.options.connect_timeout,
            store.call_raw(|| {
                let (mut kv, probe) = (kv.clone(), probe.clone());
                async move {
                    kv.get(probe, Some(GetOptions::new().with_count_only()))
                        .await
                }
            }),
        )
        .await;
        match answered {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(super::calls::Failure::Etcd(err))) => Err(unreachable(err.to_string())),
            Ok(Err(super::calls::Failure::Timeout(_))) | Err(_) => Err(unreachable(format!(
                "no answer within {:?}",
                store.options.connect_timeout
            ))),
        }
    }
}
