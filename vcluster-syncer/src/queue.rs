//! The work queue: the ideas of client-go's workqueue, for any key type.
//!
//! - A key waiting in the queue is there once, however often it is added
//!   (events from both clusters collapse into one reconcile).
//! - A key being processed is never handed out again until it is done; if
//!   it was added meanwhile, it comes back once afterwards. So one key is
//!   reconciled by one worker at a time, and no change is lost.
//! - Failed keys come back after an exponential backoff; conflicts come
//!   back quickly; [`WorkQueue::forget`] resets a key's backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Backoff of failed keys: `base * 2^failures`, capped at `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(5),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

struct State<K> {
    queue: VecDeque<K>,
    /// Keys waiting (in `queue` or to be re-queued after processing), with
    /// the time they first became dirty (for the lag metric).
    dirty: HashMap<K, Instant>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    shut_down: bool,
}

/// A deduplicating, rate-limited queue of keys; cheap to clone (shared).
pub struct WorkQueue<K> {
    state: Arc<Mutex<State<K>>>,
    ready: Arc<Notify>,
    backoff: Backoff,
    cancel: CancellationToken,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            ready: self.ready.clone(),
            backoff: self.backoff,
            cancel: self.cancel.clone(),
        }
    }
}

/// A key handed out by [`WorkQueue::next`], with how long it waited.
#[derive(Debug)]
pub struct Item<K> {
    /// The key to process.
    pub key: K,
    /// Time from the first add to now: the queue's lag for this key.
    pub waited: Duration,
}

impl<K> WorkQueue<K>
where
    K: Clone + Eq + Hash + Send + 'static,
{
    /// An empty queue; delayed adds stop when `cancel` fires.
    pub fn new(backoff: Backoff, cancel: CancellationToken) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashMap::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shut_down: false,
            })),
            ready: Arc::new(Notify::new()),
            backoff,
            cancel,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a key now.
    pub fn add(&self, key: K) {
        let mut state = self.lock();
        if state.shut_down || state.dirty.contains_key(&key) {
            return;
        }
        state.dirty.insert(key.clone(), Instant::now());
        if !state.processing.contains(&key) {
            state.queue.push_back(key);
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Adds a key after `delay`.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = queue.cancel.cancelled() => {}
                _ = tokio::time::sleep(delay) => queue.add(key),
            }
        });
    }

    /// Adds a key after its backoff, and counts the failure.
    pub fn add_rate_limited(&self, key: K) -> Duration {
        let delay = {
            let mut state = self.lock();
            let failures = state.failures.entry(key.clone()).or_insert(0);
            let delay = self.backoff.delay(*failures);
            *failures = failures.saturating_add(1);
            delay
        };
        self.add_after(key, delay);
        delay
    }

    /// Resets a key's backoff after a success.
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// Consecutive failures recorded for a key.
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to process, waiting until there is one; `None` after
    /// [`WorkQueue::shut_down`].
    pub async fn next(&self) -> Option<Item<K>> {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.lock();
                if let Some(key) = state.queue.pop_front() {
                    let since = state.dirty.remove(&key).unwrap_or_else(Instant::now);
                    state.processing.insert(key.clone());
                    // More keys may be waiting: let another worker look.
                    if !state.queue.is_empty() {
                        self.ready.notify_one();
                    }
                    return Some(Item {
                        key,
                        waited: since.elapsed(),
                    });
                }
                if state.shut_down {
                    return None;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = self.cancel.cancelled() => {
                    self.shut_down();
                }
            }
        }
    }

    /// Marks a key as processed; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let mut state = self.lock();
        state.processing.remove(key);
        if state.dirty.contains_key(key) && !state.shut_down {
            state.queue.push_back(key.clone());
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Keys waiting to be processed (not counting those in progress).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys being processed right now.
    pub fn in_flight(&self) -> usize {
        self.lock().processing.len()
    }

    /// Stops handing out keys: waiting workers get `None`.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.ready.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue<&'static str> {
        WorkQueue::new(Backoff::default(), CancellationToken::new())
    }

    #[tokio::test]
    async fn adds_of_a_waiting_key_collapse() {
        let q = queue();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(q.next().await.map(|i| i.key), Some("a"));
        assert_eq!(q.next().await.map(|i| i.key), Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_key_in_progress_is_not_handed_out_twice_but_comes_back_once() {
        let q = queue();
        q.add("a");
        let item = q.next().await.expect("a");
        q.add("a");
        q.add("a");
        assert!(q.is_empty(), "a is being processed: it waits");
        q.done(&item.key);
        assert_eq!(q.len(), 1, "added during processing: back exactly once");
        let again = q.next().await.expect("a again");
        q.done(&again.key);
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn backoff_doubles_and_forget_resets() {
        let q = queue();
        assert_eq!(q.add_rate_limited("a"), Duration::from_millis(5));
        assert_eq!(q.add_rate_limited("a"), Duration::from_millis(10));
        assert_eq!(q.add_rate_limited("a"), Duration::from_millis(20));
        assert_eq!(q.failures(&"a"), 3);
        q.forget(&"a");
        assert_eq!(q.failures(&"a"), 0);
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        };
        assert_eq!(b.delay(40), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn delayed_adds_arrive_and_shutdown_wakes_workers() {
        let q = queue();
        q.add_after("late", Duration::from_millis(20));
        let item = tokio::time::timeout(Duration::from_secs(5), q.next())
            .await
            .expect("delayed key arrives");
        assert_eq!(item.map(|i| i.key), Some("late"));
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.next().await.map(|i| i.key) })
        };
        tokio::task::yield_now().await;
        q.shut_down();
        let result = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("worker woken")
            .expect("task");
        assert_eq!(result, None);
    }

    #[tokio::test]
    async fn many_workers_never_share_a_key() {
        let q: WorkQueue<u32> = WorkQueue::new(Backoff::default(), CancellationToken::new());
        let active = Arc::new(Mutex::new(HashSet::new()));
        let processed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for round in 0..50 {
            for key in 0..10 {
                q.add(key + round % 2);
            }
        }
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (q, active, processed) = (q.clone(), active.clone(), processed.clone());
            workers.push(tokio::spawn(async move {
                while let Ok(Some(item)) =
                    tokio::time::timeout(Duration::from_millis(200), q.next()).await
                {
                    assert!(
                        active.lock().expect("lock").insert(item.key),
                        "key {} handed to two workers",
                        item.key
                    );
                    tokio::task::yield_now().await;
                    active.lock().expect("lock").remove(&item.key);
                    processed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    q.done(&item.key);
                }
            }));
        }
        for worker in workers {
            worker.await.expect("worker");
        }
        assert!(q.is_empty() && q.in_flight() == 0);
        assert!(processed.load(std::sync::atomic::Ordering::Relaxed) >= 11);
    }
}
