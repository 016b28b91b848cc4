//! Watch streams: an etcd watch from `after + 1` with previous values,
//! resumed from the last revision after a break, for a while.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{EventType, WatchOptions};
use tokio::time::Instant;

use super::calls::{revision, ERR_COMPACTED};
use super::EtcdStorage;
use crate::storage::{EventKind, PendingEvents, Revision, StorageError, WatchEvent, WatchStream};

impl EtcdStorage {
    /// Opens an etcd watch from `start` (inclusive) under a prepared range.
    pub(super) async fn open_watch(
        &self,
        start_key: Vec<u8>,
        end: Vec<u8>,
        start: Revision,
    ) -> Result<etcd_client::WatchStream, StorageError> {
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(i64::try_from(start).unwrap_or(i64::MAX))
            .with_prev_key();
        let client = self.client.watch_client();
        self.call("watch", || {
            let (mut client, start_key, options) =
                (client.clone(), start_key.clone(), options.clone());
            async move { client.watch(start_key, Some(options)).await }
        })
        .await
    }
}

/// Starts a watch of the keys under `prefix` after revision `after`.
pub(super) async fn start(
    store: &EtcdStorage,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream, StorageError> {
    let (start_key, end) = store.range("watch", prefix)?;
    let stream = store
        .open_watch(start_key.clone(), end.clone(), after + 1)
        .await?;
    let watch = EtcdWatch {
        store: store.clone(),
        start_key,
        end,
        stream: Some(stream),
        opened: Instant::now(),
        outage: None,
        pending: PendingEvents::new(after, VecDeque::new()),
        done: false,
    };
    Ok(Box::pin(futures::stream::unfold(watch, EtcdWatch::next)))
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
    /// Events yet to hand out, and the last revision handed out.
    pending: PendingEvents,
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
    /// The next event, resuming the stream when it broke.
    async fn next(mut self) -> Option<(Result<WatchEvent, StorageError>, Self)> {
        loop {
            if let Some(event) = self.pending.next_new() {
                return Some((Ok(event), self));
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
                    self.pending.queue.extend(events);
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

    /// What one watch response means for the consumer.
    fn step(&self, resp: etcd_client::WatchResponse) -> Step {
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                return Step::Fail(StorageError::Expired {
                    requested: self.pending.last,
                    oldest: revision(resp.compact_revision()),
                });
            }
            let reason = resp.cancel_reason();
            if reason.contains(ERR_COMPACTED) {
                let oldest = self.pending.last + 1;
                return Step::Fail(StorageError::Expired {
                    requested: self.pending.last,
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

    /// One etcd event as a watch event.
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
        tracing::warn!(
            reason,
            last = self.pending.last,
            "etcd watch broke; resuming"
        );
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
                .open_watch(
                    self.start_key.clone(),
                    self.end.clone(),
                    self.pending.last + 1,
                )
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
