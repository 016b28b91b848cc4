//! The distributed backend: a real etcd v3 cluster, through `etcd-client`.
//!
//! Nothing is emulated: etcd's own revision is the [`Revision`] (so
//! `resourceVersion`s are the ones kube-apiserver would hand out on the same
//! data), compare-and-swap is an etcd transaction on `mod_revision` /
//! `create_revision`, a list is one ranged read at one revision, a watch is an
//! etcd watch from `after + 1` with previous values, and compaction is etcd's
//! compaction, whose error becomes [`StorageError::Expired`].
//!
//! # Sharing one etcd
//! A key prefix (say `/vc1`) is prepended verbatim to every key, so several
//! virtual clusters can live in one etcd; keys crossing the [`Storage`] trait
//! never carry it. With a prefix set, keys and non-empty list/watch prefixes
//! must start with `/` (every registry key does): that is what keeps `/vc1`
//! from seeing `/vc10`. Revisions and compaction are etcd-wide, so one
//! tenant's writes advance everybody's revision (the contract only promises
//! that revisions increase) and a compaction applies to every tenant.
//!
//! # Failures
//! Unary calls get a deadline ([`EtcdOptions::request_timeout`]); a call that
//! timed out may still have been applied, exactly as with etcd's own clients.
//! A watch whose stream breaks (an etcd restart, a lost connection) resumes
//! by itself from its last revision for a while
//! ([`EtcdOptions::watch_resume`]) and only then ends with an error item, so
//! a short outage costs the consumer no re-list.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions,
    Identity, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::time::Instant;

pub use super::url::EtcdTls;
use super::{
    Deleted, EventKind, KeyValue, ListRequest, ListResponse, Revision, Storage, StorageError,
    WatchEvent, WatchStream,
};

const BACKEND: &str = "etcd";

/// etcd's message when a read or watch needs compacted history.
const ERR_COMPACTED: &str = "required revision has been compacted";
/// etcd's message when a read asks for a revision it has not reached.
const ERR_FUTURE_REV: &str = "required revision is a future revision";

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

/// A [`Storage`] in an etcd v3 cluster (see the module docs).
///
/// Cheap to clone: clones share one gRPC connection pool.
#[derive(Clone)]
pub struct EtcdStorage {
    client: Client,
    /// Prepended to every key.
    namespace: Vec<u8>,
    endpoints: String,
    options: EtcdOptions,
}

impl std::fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStorage")
            .field("endpoints", &self.endpoints)
            .field("prefix", &String::from_utf8_lossy(&self.namespace))
            .finish_non_exhaustive()
    }
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
        let mut kv = store.client.kv_client();
        match tokio::time::timeout(
            store.options.connect_timeout,
            kv.get(store.probe_key(), Some(GetOptions::new().with_count_only())),
        )
        .await
        {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(err)) => Err(unreachable(err.to_string())),
            Err(_) => Err(unreachable(format!(
                "no answer within {:?}",
                store.options.connect_timeout
            ))),
        }
    }

    /// The key prefix this store lives under (without trailing `/`).
    pub fn prefix(&self) -> &str {
        // Built from a `String`, so always UTF-8.
        std::str::from_utf8(&self.namespace).unwrap_or_default()
    }

    fn backend(&self, operation: &'static str, message: impl std::fmt::Display) -> StorageError {
        StorageError::Backend {
            backend: BACKEND,
            operation,
            message: format!("{message} (etcd at {})", self.endpoints),
        }
    }

    /// Runs one unary call under the request deadline.
    async fn call<T>(
        &self,
        operation: &'static str,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StorageError> {
        self.call_raw(fut)
            .await
            .map_err(|failure| self.failed(operation, failure))
    }

    /// Like [`call`](Self::call), keeping etcd's error for callers that
    /// turn some of them into contract errors.
    async fn call_raw<T>(
        &self,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.options.request_timeout, fut).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Failure::Etcd(err)),
            Err(_) => Err(Failure::Timeout(self.options.request_timeout)),
        }
    }

    fn failed(&self, operation: &'static str, failure: Failure) -> StorageError {
        match failure {
            Failure::Etcd(err) => self.backend(operation, err),
            Failure::Timeout(after) => {
                self.backend(operation, format!("no answer within {after:?}"))
            }
        }
    }

    /// A key inside our namespace (etcd refuses empty keys) for requests
    /// that only want a response header.
    fn probe_key(&self) -> Vec<u8> {
        let mut key = self.namespace.clone();
        key.push(b'/');
        key
    }

    /// The etcd key of a trait key.
    fn full_key(&self, operation: &'static str, key: &str) -> Result<Vec<u8>, StorageError> {
        self.check_key(operation, key)?;
        let mut full = Vec::with_capacity(self.namespace.len() + key.len());
        full.extend_from_slice(&self.namespace);
        full.extend_from_slice(key.as_bytes());
        Ok(full)
    }

    fn check_key(&self, operation: &'static str, key: &str) -> Result<(), StorageError> {
        if !self.namespace.is_empty() && !key.is_empty() && !key.starts_with('/') {
            return Err(self.backend(
                operation,
                format!("key {key:?} must start with '/' in a store with a key prefix"),
            ));
        }
        Ok(())
    }

    /// The etcd range `[start, end)` of every key under a trait prefix.
    fn range(
        &self,
        operation: &'static str,
        prefix: &str,
    ) -> Result<(Vec<u8>, Vec<u8>), StorageError> {
        self.check_key(operation, prefix)?;
        let mut start = self.namespace.clone();
        if prefix.is_empty() && !start.is_empty() {
            start.push(b'/');
        }
        start.extend_from_slice(prefix.as_bytes());
        let end = prefix_end(&start);
        if start.is_empty() {
            // The whole key space: etcd spells it ["\0", "\0").
            start.push(0);
        }
        Ok((start, end))
    }

    /// A trait key from an etcd key.
    fn strip(&self, operation: &'static str, key: Vec<u8>) -> Result<String, StorageError> {
        let Some(rest) = key.strip_prefix(self.namespace.as_slice()) else {
            return Err(self.backend(
                operation,
                format!(
                    "etcd returned key {:?} outside prefix",
                    String::from_utf8_lossy(&key)
                ),
            ));
        };
        String::from_utf8(rest.to_vec())
            .map_err(|err| self.backend(operation, format!("key is not UTF-8: {err}")))
    }

    fn key_value(
        &self,
        operation: &'static str,
        kv: etcd_client::KeyValue,
    ) -> Result<KeyValue, StorageError> {
        let create_revision = revision(kv.create_revision());
        let mod_revision = revision(kv.mod_revision());
        let (key, value) = kv.into_key_value();
        Ok(KeyValue {
            key: self.strip(operation, key)?,
            value: Bytes::from(value),
            create_revision,
            mod_revision,
        })
    }

    /// Turns etcd's revision errors into the contract's errors.
    async fn classify(
        &self,
        operation: &'static str,
        failure: Failure,
        requested: Revision,
    ) -> StorageError {
        if failure.says(ERR_COMPACTED) {
            let oldest = self.compacted_revision().await.unwrap_or(requested + 1);
            return StorageError::Expired { requested, oldest };
        }
        if failure.says(ERR_FUTURE_REV) {
            if let Ok(current) = self.current_revision().await {
                return StorageError::FutureRevision { requested, current };
            }
        }
        self.failed(operation, failure)
    }

    /// etcd's compacted revision. etcd only reveals it by cancelling a watch
    /// that starts below it, so ask with a watch from revision 1.
    async fn compacted_revision(&self) -> Option<Revision> {
        let probe = async {
            let mut watch = self
                .client
                .watch_client()
                .watch(
                    self.probe_key(),
                    Some(WatchOptions::new().with_start_revision(1)),
                )
                .await
                .ok()?;
            while let Ok(Some(resp)) = watch.message().await {
                if resp.compact_revision() > 0 {
                    return Some(revision(resp.compact_revision()));
                }
                if resp.canceled() || !resp.events().is_empty() {
                    return None;
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(2), probe)
            .await
            .ok()
            .flatten()
    }

    /// Opens an etcd watch from `start` (inclusive) under a prepared range.
    async fn open_watch(
        &self,
        start_key: Vec<u8>,
        end: Vec<u8>,
        start: Revision,
    ) -> Result<etcd_client::WatchStream, StorageError> {
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(i64::try_from(start).unwrap_or(i64::MAX))
            .with_prev_key();
        let mut client = self.client.watch_client();
        self.call("watch", client.watch(start_key, Some(options)))
            .await
    }
}

/// Why a unary call failed, before it becomes a [`StorageError`].
enum Failure {
    Etcd(etcd_client::Error),
    Timeout(Duration),
}

impl Failure {
    /// Whether etcd answered with a gRPC status carrying `message`.
    fn says(&self, message: &str) -> bool {
        matches!(self, Failure::Etcd(etcd_client::Error::GRpcStatus(status)) if status.message().contains(message))
    }
}

/// etcd revisions are non-negative `i64`s.
fn revision(raw: i64) -> Revision {
    Revision::try_from(raw).unwrap_or(0)
}

fn to_etcd(revision: Revision) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

/// The first key after every key starting with `prefix`; `[0]` (etcd's "to
/// the end") when no such key exists.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, |h| revision(h.revision()))
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let full = self.full_key("get", key)?;
        let mut kv = self.client.kv_client();
        let mut resp = self.call("get", kv.get(full, None)).await?;
        resp.take_kvs()
            .into_iter()
            .next()
            .map(|kv| self.key_value("get", kv))
            .transpose()
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse, StorageError> {
        let (range_start, end) = self.range("list", &request.prefix)?;
        let start = match &request.start_after {
            Some(after) if after.as_str() >= request.prefix.as_str() => {
                let mut start = self.full_key("list", after)?;
                start.push(0);
                start
            }
            _ => range_start,
        };
        let at = request.revision.filter(|r| *r > 0);
        let mut options = GetOptions::new()
            .with_range(end)
            .with_revision(at.map_or(0, to_etcd));
        match request.limit {
            // etcd reads a limit of 0 as "no limit".
            Some(0) => options = options.with_count_only(),
            Some(limit) => options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX)),
            None => {}
        }
        let mut kv = self.client.kv_client();
        let mut resp = match self.call_raw(kv.get(start, Some(options))).await {
            Ok(resp) => resp,
            Err(failure) => return Err(self.classify("list", failure, at.unwrap_or(0)).await),
        };
        let revision = at.unwrap_or_else(|| header_revision(resp.header()));
        let count = usize::try_from(resp.count()).unwrap_or(0);
        let items = resp
            .take_kvs()
            .into_iter()
            .map(|kv| self.key_value("list", kv))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ListResponse {
            remaining: count.saturating_sub(items.len()),
            items,
            revision,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        let full = self.full_key("create", key)?;
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value.to_vec(), None)]);
        let mut kv = self.client.kv_client();
        let resp = self.call("create", kv.txn(txn)).await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = header_revision(resp.header());
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StorageError> {
        let full = self.full_key("update", key)?;
        let txn = Txn::new()
            .when([
                // A missing key has mod_revision 0: require it to exist.
                Compare::create_revision(full.clone(), CompareOp::Greater, 0),
                Compare::mod_revision(full.clone(), CompareOp::Equal, to_etcd(expected)),
            ])
            .and_then([TxnOp::put(
                full.clone(),
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let mut kv = self.client.kv_client();
        let resp = self.call("update", kv.txn(txn)).await?;
        let succeeded = resp.succeeded();
        let revision = header_revision(resp.header());
        match resp.op_responses().into_iter().next() {
            Some(TxnOpResponse::Put(mut put)) if succeeded => {
                let previous = put
                    .take_prev_key()
                    .ok_or_else(|| self.backend("update", "etcd returned no previous value"))?;
                Ok(KeyValue {
                    key: key.to_owned(),
                    value,
                    create_revision: self::revision(previous.create_revision()),
                    mod_revision: revision,
                })
            }
            Some(TxnOpResponse::Get(get)) => match get.kvs().first() {
                None => Err(StorageError::NotFound {
                    key: key.to_owned(),
                }),
                Some(current) => Err(StorageError::Conflict {
                    key: key.to_owned(),
                    expected,
                    current: self::revision(current.mod_revision()),
                }),
            },
            _ => Err(self.backend("update", "unexpected transaction response")),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        let full = self.full_key("delete", key)?;
        let mut compares = vec![Compare::create_revision(
            full.clone(),
            CompareOp::Greater,
            0,
        )];
        if let Some(expected) = expected {
            compares.push(Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                to_etcd(expected),
            ));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(
                full.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let mut kv = self.client.kv_client();
        let resp = self.call("delete", kv.txn(txn)).await?;
        let succeeded = resp.succeeded();
        let revision = header_revision(resp.header());
        match resp.op_responses().into_iter().next() {
            Some(TxnOpResponse::Delete(mut deleted)) if succeeded => {
                let previous = deleted
                    .take_prev_kvs()
                    .into_iter()
                    .next()
                    .ok_or_else(|| self.backend("delete", "etcd returned no previous value"))?;
                Ok(Deleted {
                    revision,
                    previous: self.key_value("delete", previous)?,
                })
            }
            Some(TxnOpResponse::Get(get)) => match (get.kvs().first(), expected) {
                (Some(current), Some(expected)) => Err(StorageError::Conflict {
                    key: key.to_owned(),
                    expected,
                    current: self::revision(current.mod_revision()),
                }),
                _ => Err(StorageError::NotFound {
                    key: key.to_owned(),
                }),
            },
            _ => Err(self.backend("delete", "unexpected transaction response")),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        let mut kv = self.client.kv_client();
        let resp = self
            .call(
                "read the current revision",
                kv.get(self.probe_key(), Some(GetOptions::new().with_count_only())),
            )
            .await?;
        Ok(header_revision(resp.header()))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        let (start_key, end) = self.range("watch", prefix)?;
        let stream = self
            .open_watch(start_key.clone(), end.clone(), after + 1)
            .await?;
        let watch = EtcdWatch {
            store: self.clone(),
            start_key,
            end,
            stream: Some(stream),
            opened: Instant::now(),
            outage: None,
            last: after,
            pending: VecDeque::new(),
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(watch, EtcdWatch::next)))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        let current = self.current_revision().await?;
        let target = revision.min(current);
        if target == 0 {
            return Ok(());
        }
        let mut kv = self.client.kv_client();
        match self.call_raw(kv.compact(to_etcd(target), None)).await {
            Ok(_) => Ok(()),
            // Already compacted at or beyond `target`: nothing to do.
            Err(failure) if failure.says(ERR_COMPACTED) => Ok(()),
            Err(failure) => Err(self.failed("compact", failure)),
        }
    }
}

/// State of one watch between two polls.
struct EtcdWatch {
    store: EtcdStorage,
    start_key: Vec<u8>,
    end: Vec<u8>,
    /// `None` after the stream broke, until it is resumed.
    stream: Option<etcd_client::WatchStream>,
    /// When the current stream was opened.
    opened: Instant,
    /// The running outage: when it began and the next back-off.
    outage: Option<(Instant, Duration)>,
    /// Revision of the last event handed out (or the starting point).
    last: Revision,
    pending: VecDeque<WatchEvent>,
    done: bool,
}

/// What one etcd watch response means for the consumer.
enum Step {
    Events(Vec<WatchEvent>),
    Fail(StorageError),
    /// The stream broke; try to resume from the last revision.
    Broken(String),
}

impl EtcdWatch {
    async fn next(mut self) -> Option<(Result<WatchEvent, StorageError>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.revision > self.last {
                    self.last = event.revision;
                    return Some((Ok(event), self));
                }
                continue;
            }
            if self.done {
                return None;
            }
            let step = match self.stream.as_mut() {
                Some(stream) => match stream.message().await {
                    Ok(Some(resp)) => self.step(resp),
                    Ok(None) => Step::Broken("etcd closed the watch stream".into()),
                    Err(err) => Step::Broken(err.to_string()),
                },
                None => Step::Broken("watch stream lost".into()),
            };
            match step {
                Step::Events(events) => {
                    if !events.is_empty() {
                        self.outage = None;
                    }
                    self.pending.extend(events);
                }
                Step::Fail(err) => {
                    self.done = true;
                    return Some((Err(err), self));
                }
                Step::Broken(reason) => {
                    self.stream = None;
                    if let Err(err) = self.resume(&reason).await {
                        self.done = true;
                        return Some((Err(err), self));
                    }
                }
            }
        }
    }

    fn step(&self, resp: etcd_client::WatchResponse) -> Step {
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                return Step::Fail(StorageError::Expired {
                    requested: self.last,
                    oldest: revision(resp.compact_revision()),
                });
            }
            let reason = resp.cancel_reason();
            if reason.contains(ERR_COMPACTED) {
                let oldest = self.last + 1;
                return Step::Fail(StorageError::Expired {
                    requested: self.last,
                    oldest,
                });
            }
            return Step::Broken(format!("etcd cancelled the watch: {reason}"));
        }
        let mut events = Vec::with_capacity(resp.events().len());
        for event in resp.events() {
            match self.event(event) {
                Ok(event) => events.push(event),
                Err(err) => return Step::Fail(err),
            }
        }
        Step::Events(events)
    }

    fn event(&self, event: &etcd_client::Event) -> Result<WatchEvent, StorageError> {
        let store = &self.store;
        let kv = event
            .kv()
            .ok_or_else(|| store.backend("watch", "etcd sent an event without a key"))?;
        let key = store.strip("watch", kv.key().to_vec())?;
        let prev = event.prev_kv().map(|p| Bytes::copy_from_slice(p.value()));
        let revision = revision(kv.mod_revision());
        Ok(match event.event_type() {
            EventType::Put if kv.create_revision() == kv.mod_revision() => WatchEvent {
                kind: EventKind::Created,
                key,
                value: Bytes::copy_from_slice(kv.value()),
                prev_value: None,
                revision,
            },
            EventType::Put => WatchEvent {
                kind: EventKind::Updated,
                key,
                value: Bytes::copy_from_slice(kv.value()),
                prev_value: prev,
                revision,
            },
            EventType::Delete => WatchEvent {
                kind: EventKind::Deleted,
                key,
                // A delete carries no value; the last one is in prev_kv.
                value: prev.clone().unwrap_or_default(),
                prev_value: prev,
                revision,
            },
        })
    }

    /// Re-opens the etcd watch from the last revision, with back-off. A
    /// stream that breaks again soon after a resume (and delivered nothing)
    /// belongs to the same outage; once an outage outlasts
    /// [`EtcdOptions::watch_resume`] the watch fails.
    async fn resume(&mut self, reason: &str) -> Result<(), StorageError> {
        let window = self.store.options.watch_resume;
        let (began, mut delay) = match self.outage {
            Some(outage) if self.opened.elapsed() < window => outage,
            _ => (Instant::now(), Duration::ZERO),
        };
        let deadline = began + window;
        let mut last_error = reason.to_owned();
        tracing::warn!(reason, last = self.last, "etcd watch broke; resuming");
        loop {
            if Instant::now() + delay > deadline {
                return Err(self.store.backend(
                    "watch",
                    format!("watch broke and could not resume within {window:?}: {last_error}"),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
            match self
                .store
                .open_watch(self.start_key.clone(), self.end.clone(), self.last + 1)
                .await
            {
                Ok(stream) => {
                    self.stream = Some(stream);
                    self.opened = Instant::now();
                    self.outage = Some((began, delay));
                    return Ok(());
                }
                Err(err) => last_error = err.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/vc1/"), b"/vc10".to_vec());
        assert_eq!(prefix_end(b"a\xFF"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xFF\xFF"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }
}
