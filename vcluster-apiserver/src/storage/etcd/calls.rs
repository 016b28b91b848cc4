//! Talking to etcd: each unary call under the request deadline, and etcd's
//! errors turned into the contract's ([`StorageError::Expired`],
//! [`StorageError::FutureRevision`]) or into backend errors naming the
//! endpoints.

use std::future::Future;
use std::time::Duration;

use etcd_client::WatchOptions;

use super::EtcdStorage;
use crate::storage::{Revision, Storage, StorageError};

const BACKEND: &str = "etcd";

/// etcd's message when a read or watch needs compacted history.
pub(super) const ERR_COMPACTED: &str = "required revision has been compacted";
/// etcd's message when a read asks for a revision it has not reached.
const ERR_FUTURE_REV: &str = "required revision is a future revision";

impl EtcdStorage {
    /// A backend error naming the endpoints.
    pub(super) fn backend(
        &self,
        operation: &'static str,
        message: impl std::fmt::Display,
    ) -> StorageError {
        StorageError::Backend {
            backend: BACKEND,
            operation,
            message: format!("{message} (etcd at {})", self.endpoints),
        }
    }

    /// Runs one unary call (`call` makes it) under the request deadline.
    pub(super) async fn call<T, Fut>(
        &self,
        operation: &'static str,
        call: impl FnMut() -> Fut,
    ) -> Result<T, StorageError>
    where
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_raw(call)
            .await
            .map_err(|failure| self.failed(operation, failure))
    }

    /// Like [`call`](Self::call), keeping etcd's error for callers that
    /// turn some of them into contract errors.
    ///
    /// A call the client could not even send (its connection to the
    /// member it picked was refused: a dead member of a cluster named by
    /// several endpoints) is made again, within the same deadline, so the
    /// client's balancer picks another member. Nothing reached etcd, so
    /// this is safe for writes too; a call that may have been applied is
    /// never repeated.
    pub(super) async fn call_raw<T, Fut>(&self, mut call: impl FnMut() -> Fut) -> Result<T, Failure>
    where
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let attempts = async {
            let mut pause = Duration::from_millis(5);
            loop {
                match call().await {
                    Err(err) if never_sent(&err) && self.several_endpoints() => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(200));
                    }
                    other => return other,
                }
            }
        };
        match tokio::time::timeout(self.options.request_timeout, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Failure::Etcd(err)),
            Err(_) => Err(Failure::Timeout(self.options.request_timeout)),
        }
    }

    fn several_endpoints(&self) -> bool {
        self.endpoints.contains(',')
    }

    pub(super) fn failed(&self, operation: &'static str, failure: Failure) -> StorageError {
        match failure {
            Failure::Etcd(err) => self.backend(operation, err),
            Failure::Timeout(after) => {
                self.backend(operation, format!("no answer within {after:?}"))
            }
        }
    }

    /// Turns etcd's revision errors into the contract's errors.
    pub(super) async fn classify(
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
}

/// Whether a call failed before it was sent: the connection to the
/// member the client picked was refused.
fn never_sent(err: &etcd_client::Error) -> bool {
    matches!(err, etcd_client::Error::GRpcStatus(status) if status.message().contains("connect error"))
}

/// Why a unary call failed, before it becomes a [`StorageError`].
pub(super) enum Failure {
    Etcd(etcd_client::Error),
    Timeout(Duration),
}

impl Failure {
    /// Whether etcd answered with a gRPC status carrying `message`.
    pub(super) fn says(&self, message: &str) -> bool {
        matches!(self, Failure::Etcd(etcd_client::Error::GRpcStatus(status)) if status.message().contains(message))
    }
}

/// etcd revisions are non-negative `i64`s.
pub(super) fn revision(raw: i64) -> Revision {
    Revision::try_from(raw).unwrap_or(0)
}

pub(super) fn to_etcd(revision: Revision) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

pub(super) fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, |h| revision(h.revision()))
}
