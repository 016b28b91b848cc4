//! What every controller shares: the client, the options, per-object
//! failure backoff, and [`drive`], which runs a `kube::runtime::Controller`
//! with a tracing span per reconcile until the manager is cancelled.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::meta::{key_of, time};
use crate::options::ControllerOptions;
use vcluster_core::FieldManager;

/// The first retry delay after a failed reconcile; doubled per failure.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// The longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How soon a reconcile that lost a write race (409) runs again.
const CONFLICT_RETRY: Duration = Duration::from_millis(50);

/// State shared by all controllers of one manager.
pub(crate) struct Shared {
    /// The virtual cluster's API.
    pub client: kube::Client,
    /// The manager's options.
    pub options: ControllerOptions,
    failures: Mutex<HashMap<String, u32>>,
}

impl Shared {
    pub(crate) fn new(client: kube::Client, options: ControllerOptions) -> Self {
        Self {
            client,
            options,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event about `obj` from `controller` (what `kubectl
    /// describe` shows under Events), as a core/v1 Event like client-go's
    /// recorder in kube-controller-manager writes. Best effort: a failure
    /// is logged, never fails the reconcile.
    pub(crate) async fn event<K: Resource<DynamicType = ()>>(
        &self,
        controller: &'static str,
        obj: &K,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        let regarding = obj.object_ref(&());
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let now = jiff::Timestamp::now();
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(controller),
            now.as_nanosecond()
        );
        let time = time(now);
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: regarding,
            reason: Some(reason.to_owned()),
            message: Some(message),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            source: Some(EventSource {
                component: Some(controller.to_owned()),
                host: None,
            }),
            reporting_component: Some(controller.to_owned()),
            reporting_instance: Some(controller.to_owned()),
            first_timestamp: Some(time.clone()),
            last_timestamp: Some(time),
            count: Some(1),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(err) = api
            .create(&FieldManager::CONTROLLERS.post_params(), &event)
            .await
        {
            tracing::debug!(error = %err, reason, "could not record an event");
        }
    }

    /// Now, by the manager's clock.
    pub(crate) fn now(&self) -> jiff::Timestamp {
        self.options.clock.now()
    }

    /// The next retry delay for `key`, counting this failure.
    fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        let factor = 1u32 << (*count - 1).min(16);
        BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
    }

    /// Forgets the failures of `key` after a successful reconcile.
    fn reset(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}

impl AsRef<Shared> for Shared {
    fn as_ref(&self) -> &Shared {
        self
    }
}

fn failure_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!("{}/{}", K::kind(&()), key_of(obj))
}

/// Runs `controller` with `reconcile` until `cancel` fires. Each reconcile
/// runs in a span carrying the controller's name and the object's key;
/// failures are retried with per-object exponential backoff, conflicts at
/// once.
pub(crate) async fn drive<K, C, F, Fut>(
    name: &'static str,
    controller: Controller<K>,
    ctx: Arc<C>,
    reconcile: F,
    cancel: CancellationToken,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    C: AsRef<Shared> + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    let run = move |obj: Arc<K>, ctx: Arc<C>| {
        let reconcile = reconcile.clone();
        let key = failure_key(obj.as_ref());
        let span =
            tracing::info_span!("reconcile", controller = name, object = %key_of(obj.as_ref()));
        async move {
            let result = reconcile(obj, ctx.clone()).await;
            if result.is_ok() {
                (*ctx).as_ref().reset(&key);
            }
            result
        }
        .instrument(span)
    };
    let error_policy = move |obj: Arc<K>, err: &Error, ctx: Arc<C>| -> Action {
        if err.is_conflict() {
            tracing::debug!(controller = name, object = %key_of(obj.as_ref()), error = %err, "conflict; retrying");
            return Action::requeue(CONFLICT_RETRY);
        }
        if !err.is_retryable() {
            tracing::warn!(controller = name, object = %key_of(obj.as_ref()), error = %err, "cannot reconcile until the object changes");
            return Action::await_change();
        }
        let delay = (*ctx).as_ref().backoff(&failure_key(obj.as_ref()));
        tracing::warn!(controller = name, object = %key_of(obj.as_ref()), error = %err, retry_in = ?delay, "reconcile failed");
        Action::requeue(delay)
    };
    let shutdown = async move { cancel.cancelled().await };
    controller
        .graceful_shutdown_on(shutdown)
        .run(run, error_policy, ctx)
        .for_each(|result| {
            if let Err(err) = result {
                // Objects deleted between the trigger and the reconcile,
                // and watch hiccups the watcher retries by itself.
                tracing::debug!(controller = name, error = %err, "controller event");
            }
            futures::future::ready(())
        })
        .await;
    tracing::debug!(controller = name, "stopped");
}
