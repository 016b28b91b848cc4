//! The [`Storage`] operations over etcd: compare-and-swap as transactions,
//! lists as one ranged read at one revision.

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};

use super::calls::{header_revision, revision, to_etcd, ERR_COMPACTED};
use super::{watch, EtcdStorage};
use crate::storage::{
    Deleted, KeyValue, ListRequest, ListResponse, Revision, Storage, StorageError, WatchStream,
};

#[async_trait]
impl Storage for EtcdStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let full = self.full_key("get", key)?;
        let kv = self.client.kv_client();
        let mut resp = self
            .call("get", || {
                let mut kv = kv.clone();
                let full = full.clone();
                async move { kv.get(full, None).await }
            })
            .await?;
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
        let kv = self.client.kv_client();
        let listed = self
            .call_raw(|| {
                let (mut kv, start, options) = (kv.clone(), start.clone(), options.clone());
                async move { kv.get(start, Some(options)).await }
            })
            .await;
        let mut resp = match listed {
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
        let kv = self.client.kv_client();
        let resp = self
            .call("create", || {
                let (mut kv, txn) = (kv.clone(), txn.clone());
                async move { kv.txn(txn).await }
            })
            .await?;
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
        let kv = self.client.kv_client();
        let resp = self
            .call("update", || {
                let (mut kv, txn) = (kv.clone(), txn.clone());
                async move { kv.txn(txn).await }
            })
            .await?;
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
        let kv = self.client.kv_client();
        let resp = self
            .call("delete", || {
                let (mut kv, txn) = (kv.clone(), txn.clone());
                async move { kv.txn(txn).await }
            })
            .await?;
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
        let kv = self.client.kv_client();
        let probe = self.probe_key();
        let resp = self
            .call("read the current revision", || {
                let (mut kv, probe) = (kv.clone(), probe.clone());
                async move {
                    kv.get(probe, Some(GetOptions::new().with_count_only()))
                        .await
                }
            })
            .await?;
        Ok(header_revision(resp.header()))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        watch::start(self, prefix, after).await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        let current = self.current_revision().await?;
        let target = revision.min(current);
        if target == 0 {
            return Ok(());
        }
        let kv = self.client.kv_client();
        let compacted = self
            .call_raw(|| {
                let mut kv = kv.clone();
                async move { kv.compact(to_etcd(target), None).await }
            })
            .await;
        match compacted {
            Ok(_) => Ok(()),
            // Already compacted at or beyond `target`: nothing to do.
            Err(failure) if failure.says(ERR_COMPACTED) => Ok(()),
            Err(failure) => Err(self.failed("compact", failure)),
        }
    }
}
