//! Per-namespace defaults, as upstream's serviceaccount and
//! root-ca-cert-publisher controllers keep them:
//!
//! - a `default` ServiceAccount in every namespace (pods run as it unless
//!   they name another; recreated if deleted);
//! - a `kube-root-ca.crt` ConfigMap in every namespace, whose `ca.crt` is
//!   the virtual API server's CA, so pods can verify it (rewritten if
//!   someone changes it).
//!
//! Namespaces being deleted are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::error::{is_status, ApiContext, Result};
use crate::meta::name_of;
use crate::runtime::{drive, Shared};
use vcluster_core::FieldManager;

/// The ServiceAccount every namespace has.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The ConfigMap with the cluster's CA in every namespace.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// The key of the CA certificate in [`ROOT_CA_CONFIG_MAP`].
pub const CA_KEY: &str = "ca.crt";
/// Upstream's description of [`ROOT_CA_CONFIG_MAP`].
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Ctx {
    shared: Arc<Shared>,
    service_accounts: bool,
    root_ca: Option<String>,
}

impl AsRef<Shared> for Ctx {
    fn as_ref(&self) -> &Shared {
        &self.shared
    }
}

/// Runs the namespace-defaults controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let enabled = &shared.options.enabled;
    let ctx = Arc::new(Ctx {
        service_accounts: enabled.service_accounts,
        root_ca: shared
            .options
            .root_ca_pem
            .clone()
            .filter(|_| enabled.root_ca_config_maps),
        shared: shared.clone(),
    });
    let in_namespace = |meta: &ObjectMeta, wanted: &str| -> Option<ObjectRef<Namespace>> {
        (meta.name.as_deref() == Some(wanted))
            .then(|| meta.namespace.as_deref().map(ObjectRef::new))
            .flatten()
    };
    let controller = Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<ServiceAccount>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SERVICE_ACCOUNT}")),
        move |sa: ServiceAccount| in_namespace(&sa.metadata, DEFAULT_SERVICE_ACCOUNT),
    )
    .watches(
        Api::<ConfigMap>::all(client),
        watcher::Config::default().fields(&format!("metadata.name={ROOT_CA_CONFIG_MAP}")),
        move |cm: ConfigMap| in_namespace(&cm.metadata, ROOT_CA_CONFIG_MAP),
    );
    drive("namespace-defaults", controller, ctx, reconcile, cancel).await;
}

/// The `kube-root-ca.crt` ConfigMap holding `pem`.
pub fn root_ca_config_map(namespace: &str, pem: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(ROOT_CA_CONFIG_MAP.into()),
            namespace: Some(namespace.into()),
            annotations: Some(BTreeMap::from([(
                "kubernetes.io/description".to_owned(),
                DESCRIPTION.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(CA_KEY.to_owned(), pem.to_owned())])),
        ..ConfigMap::default()
    }
}

async fn reconcile(obj: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action> {
    let name = name_of(obj.as_ref())?;
    let client = ctx.shared.client.clone();
    let Some(namespace) = Api::<Namespace>::all(client.clone())
        .get_opt(&name)
        .await
        .context("get", "Namespace", &name)?
    else {
        return Ok(Action::await_change());
    };
    let terminating = namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Ok(Action::await_change());
    }
    if ctx.service_accounts {
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        if api
            .get_opt(DEFAULT_SERVICE_ACCOUNT)
            .await
            .context(
                "get",
                "ServiceAccount",
                &format!("{name}/{DEFAULT_SERVICE_ACCOUNT}"),
            )?
            .is_none()
        {
            let account = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(DEFAULT_SERVICE_ACCOUNT.into()),
                    namespace: Some(name.clone()),
                    ..ObjectMeta::default()
                },
                ..ServiceAccount::default()
            };
            match api
                .create(&FieldManager::CONTROLLERS.post_params(), &account)
                .await
            {
                Ok(_) => tracing::info!("created the default service account"),
                Err(err) if is_status(&err, 409) => {}
                Err(err) => {
                    return Err(err).context(
                        "create",
                        "ServiceAccount",
                        &format!("{name}/{DEFAULT_SERVICE_ACCOUNT}"),
                    )
                }
            }
        }
    }
    if let Some(pem) = &ctx.root_ca {
        let api: Api<ConfigMap> = Api::namespaced(client, &name);
        let key = format!("{name}/{ROOT_CA_CONFIG_MAP}");
        let wanted = root_ca_config_map(&name, pem);
        match api
            .get_opt(ROOT_CA_CONFIG_MAP)
            .await
            .context("get", "ConfigMap", &key)?
        {
            None => match api
                .create(&FieldManager::CONTROLLERS.post_params(), &wanted)
                .await
            {
                Ok(_) => tracing::info!("published the root CA"),
                Err(err) if is_status(&err, 409) => {}
                Err(err) => return Err(err).context("create", "ConfigMap", &key),
            },
            Some(mut current) => {
                let data_ok = current.data == wanted.data && current.binary_data.is_none();
                let description_ok = current
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("kubernetes.io/description"))
                    .is_some();
                if !(data_ok && description_ok) {
                    current.data = wanted.data;
                    current.binary_data = None;
                    current
                        .metadata
                        .annotations
                        .get_or_insert_with(BTreeMap::new)
                        .insert("kubernetes.io/description".into(), DESCRIPTION.into());
                    api.replace(
                        ROOT_CA_CONFIG_MAP,
                        &FieldManager::CONTROLLERS.post_params(),
                        &current,
                    )
                    .await
                    .context("update", "ConfigMap", &key)?;
                    tracing::info!("restored the root CA");
                }
            }
        }
    }
    Ok(Action::requeue(ctx.shared.options.resync))
}
