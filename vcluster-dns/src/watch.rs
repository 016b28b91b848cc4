//! The watches that keep the [`Index`] current: one kube-runtime watcher
//! per kind (list, then watch; re-list after a `410 Gone`, with backoff on
//! errors), so a change reaches DNS as soon as the API server sends it,
//! without polling.

use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::index::{Index, Indexed, Key, Table};

/// Watches every object of kind `K` in all namespaces into `index` until
/// `cancel`; counts one up on the index's `listed` once the first full
/// list is in.
pub(crate) async fn run<K>(client: kube::Client, index: Arc<Index>, cancel: CancellationToken)
where
    K: Resource<DynamicType = ()> + Indexed + Clone + Debug + DeserializeOwned + Send + 'static,
    Index: Table<K>,
{
    let api: Api<K> = Api::all(client);
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // Objects of a (re-)list, swapped in at once when it is complete, so a
    // query never sees half a list.
    let mut buffer: Vec<(Key, K::Record)> = Vec::new();
    let mut first_list = true;
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            event = events.next() => event,
        };
        match event {
            None => return,
            Some(Err(err)) => {
                // The backoff wrapper retries; the error is worth a line.
                tracing::warn!(kind = %K::kind(&()), error = %err, "DNS watch failed; retrying");
            }
            Some(Ok(Event::Init)) => buffer.clear(),
            Some(Ok(Event::InitApply(object))) => {
                if let (Some(key), Some(record)) = (object.key(), object.record()) {
                    buffer.push((key, record));
                }
            }
            Some(Ok(Event::InitDone)) => {
                Table::<K>::replace(index.as_ref(), std::mem::take(&mut buffer));
                if first_list {
                    first_list = false;
                    index.listed.fetch_add(1, Ordering::AcqRel);
                }
            }
            Some(Ok(Event::Apply(object))) => {
                if let Some(key) = object.key() {
                    Table::<K>::apply(index.as_ref(), key, object.record());
                }
            }
            Some(Ok(Event::Delete(object))) => {
                if let Some(key) = object.key() {
                    Table::<K>::apply(index.as_ref(), key, None);
                }
            }
        }
    }
}
