//! Reconciles of one key against in-process API servers, with stores the
//! test fills itself: a host store that never hears of an object is a host
//! watch that lags behind it.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiServer, ApiServerConfig};
use vcluster_core::{SingleNamespaceTranslator, TranslatorExt, VirtualKey};

use super::{EngineConfig, Outcome, SyncEngine};
use crate::error::SyncError;
use crate::memory::Memory;
use crate::syncer::{Action, SyncContext, Syncer, VirtualOnly, DEFAULT_WATCH_TIMEOUT};

/// Configmaps copied as they are: the engine's own rules (labels,
/// annotations, creates) are all there is.
struct Copies;

#[async_trait::async_trait]
impl Syncer for Copies {
    type Object = ConfigMap;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        "configmaps"
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        object: &ConfigMap,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<ConfigMap>, SyncError> {
        let copy = ctx.translator.host_object(object).expect("translatable");
        Ok(VirtualOnly::CreateHost(copy))
    }

    async fn both(
        &self,
        _ctx: &SyncContext,
        _virtual_object: &ConfigMap,
        _host_object: &ConfigMap,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        Ok(Vec::new())
    }
}

async fn api_server() -> ApiServer {
    ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new())))
        .await
        .expect("API server starts")
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let api: Api<Namespace> = Api::all(client.clone());
    match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => panic!("namespace {name}: {err}"),
    }
}

fn config_map(labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("settings".into()),
            namespace: Some("default".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..ConfigMap::default()
    }
}

/// The host copy exists (made by a create whose answer was lost, say) but
/// the host store has not seen it: the create meets 409 AlreadyExists. The
/// engine takes the live copy as the existing one and brings it in step at
/// once, instead of trying the same create again at every reconcile for as
/// long as the host watch lags.
#[tokio::test]
async fn a_create_that_meets_its_own_copy_adopts_it() {
    let virtual_cluster = api_server().await;
    let host = api_server().await;
    create_namespace(&virtual_cluster.client(), "default").await;
    create_namespace(&host.client(), "host-ns").await;
    let translator = Arc::new(SingleNamespaceTranslator::new("vc", "host-ns").expect("translator"));

    // The copy on the host was made before the tenant added a label.
    let copy = translator
        .host_object(&config_map(&[("app", "web")]))
        .expect("host copy");
    let host_configmaps: Api<ConfigMap> = Api::namespaced(host.client(), "host-ns");
    let copy = host_configmaps
        .create(&PostParams::default(), &copy)
        .await
        .expect("host copy created");
    let virtual_configmaps: Api<ConfigMap> = Api::namespaced(virtual_cluster.client(), "default");
    let virt = virtual_configmaps
        .create(
            &PostParams::default(),
            &config_map(&[("app", "web"), ("tier", "gold")]),
        )
        .await
        .expect("virtual configmap created");

    let ctx = SyncContext {
        translator,
        virtual_client: virtual_cluster.client(),
        host_client: host.client(),
        host_namespace: "host-ns".into(),
        watch_timeout: DEFAULT_WATCH_TIMEOUT,
    };
    let engine = SyncEngine::new(
        Copies,
        Arc::new(ctx),
        EngineConfig::default(),
        CancellationToken::new(),
    );
    let (mut virtual_store, _host_store) = engine
        .inner
        .writers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .expect("the stores' writers");
    // Only the virtual store hears of its object; the host store lags.
    virtual_store.apply_watcher_event(&watcher::Event::Apply(virt));

    let key = VirtualKey::namespaced("default", "settings");
    let outcome = engine.inner.reconcile(&key).await.expect("reconcile");
    assert_eq!(outcome, Outcome::Done);
    let host_name = copy.metadata.name.as_deref().expect("host name");
    let now = host_configmaps.get(host_name).await.expect("host copy");
    let labels = now.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("tier").map(String::as_str),
        Some("gold"),
        "the existing copy was brought in step: {labels:?}"
    );
    let memory = engine.inner.memory.get(&key).map(|m| m.clone());
    assert!(
        memory.is_some_and(|m| m.host_seen),
        "the engine knows the copy exists"
    );
}

/// Copies, except configmaps labelled `skip: "yes"` (as the endpoints
/// syncer skips endpoints the host's controller owns).
struct CopiesUnlessSkipped;

#[async_trait::async_trait]
impl Syncer for CopiesUnlessSkipped {
    type Object = ConfigMap;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        "configmaps"
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        object: &ConfigMap,
        memory: Option<&Memory>,
    ) -> Result<VirtualOnly<ConfigMap>, SyncError> {
        let labels = object.metadata.labels.clone().unwrap_or_default();
        if labels.get("skip").is_some_and(|v| v == "yes") {
            return Ok(VirtualOnly::Skip);
        }
        Copies.virtual_only(ctx, object, memory).await
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_object: &ConfigMap,
        host_object: &ConfigMap,
        memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        Copies.both(ctx, virtual_object, host_object, memory).await
    }
}

/// A host object under the translated name that is not the syncer's copy
/// is a conflict only for an object the syncer would sync; one it skips
/// is done, without an error to retry forever.
#[tokio::test]
async fn someone_elses_host_object_is_no_error_for_a_skipped_object() {
    let virtual_cluster = api_server().await;
    let host = api_server().await;
    create_namespace(&virtual_cluster.client(), "default").await;
    create_namespace(&host.client(), "host-ns").await;
    let translator = Arc::new(SingleNamespaceTranslator::new("vc", "host-ns").expect("translator"));
    let host_name = translator
        .host_object(&config_map(&[]))
        .expect("host name")
        .metadata
        .name
        .expect("named");
    // The host's own object under that name: no ownership markers.
    let mut foreign = config_map(&[]);
    foreign.metadata.name = Some(host_name.clone());
    foreign.metadata.namespace = Some("host-ns".into());
    let host_configmaps: Api<ConfigMap> = Api::namespaced(host.client(), "host-ns");
    let foreign = host_configmaps
        .create(&PostParams::default(), &foreign)
        .await
        .expect("foreign host object");

    for (labels, skipped) in [(&[("skip", "yes")][..], true), (&[][..], false)] {
        let ctx = SyncContext {
            translator: translator.clone(),
            virtual_client: virtual_cluster.client(),
            host_client: host.client(),
            host_namespace: "host-ns".into(),
            watch_timeout: DEFAULT_WATCH_TIMEOUT,
        };
        let engine = SyncEngine::new(
            CopiesUnlessSkipped,
            Arc::new(ctx),
            EngineConfig::default(),
            CancellationToken::new(),
        );
        let (mut virtual_store, mut host_store) = engine
            .inner
            .writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .expect("the stores' writers");
        let mut virt = config_map(labels);
        virt.metadata.uid = Some("virtual-uid".into());
        virtual_store.apply_watcher_event(&watcher::Event::Apply(virt));
        host_store.apply_watcher_event(&watcher::Event::Apply(foreign.clone()));

        let key = VirtualKey::namespaced("default", "settings");
        let outcome = engine.inner.reconcile(&key).await;
        if skipped {
            assert_eq!(outcome.expect("no conflict"), Outcome::Done);
        } else {
            assert!(
                matches!(outcome, Err(SyncError::NotOwned { .. })),
                "a synced object still meets the conflict"
            );
        }
        let still = host_configmaps.get(&host_name).await.expect("left alone");
        assert_eq!(still.metadata.uid, foreign.metadata.uid);
    }
}
