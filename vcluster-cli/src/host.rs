//! The host cluster as the command line sees it: a client from the user's
//! kubeconfig, and the few writes the commands make (server-side apply,
//! deletes that wait until the object is gone).

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CliError;
use crate::manifests::{self, HostObject, Names};

/// The field manager of everything `vcluster` applies.
pub const FIELD_MANAGER: &str = "vcluster";

/// Which host cluster to talk to (the usual kubectl flags).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct HostArgs {
    /// The host cluster's kubeconfig [default: $KUBECONFIG or ~/.kube/config]
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context of the host cluster [default: the current one]
    #[arg(long, global = true)]
    pub context: Option<String>,
}

impl HostArgs {
    /// The kubeconfig as kubectl reads it (the file given, else the files
    /// of `$KUBECONFIG` merged, else `~/.kube/config`), with where it came
    /// from for messages.
    fn read_kubeconfig(&self) -> Result<(Kubeconfig, String), CliError> {
        let (read, source) = match &self.kubeconfig {
            Some(path) => (Kubeconfig::read_from(path), path.display().to_string()),
            None => (
                Kubeconfig::read(),
                "$KUBECONFIG or ~/.kube/config".to_owned(),
            ),
        };
        let file = read.map_err(|e| CliError::Kubeconfig {
            source_name: source.clone(),
            message: e.to_string(),
        })?;
        Ok((file, source))
    }

    /// The host's context: `--context`, else the current one. A virtual
    /// cluster's context (made current by `vcluster connect`) stands for
    /// the host context it was reached from, so `list` or `delete` still
    /// talk to the host while connected.
    pub fn host_context(&self) -> Result<String, CliError> {
        if let Some(context) = &self.context {
            return Ok(context.clone());
        }
        let (file, source) = self.read_kubeconfig()?;
        self.context_in(&file, &source)
    }

    fn context_in(&self, file: &Kubeconfig, source: &str) -> Result<String, CliError> {
        if let Some(context) = &self.context {
            return Ok(context.clone());
        }
        let current = file
            .current_context
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| CliError::Kubeconfig {
                source_name: source.to_owned(),
                message: "has no current context; pass --context".into(),
            })?;
        Ok(match crate::kubeconfig::parse_context_name(current) {
            Some((_, _, parent)) => parent.to_owned(),
            None => current.to_owned(),
        })
    }

    /// A client of the host cluster, checked to answer.
    pub async fn client(&self) -> Result<kube::Client, CliError> {
        let (file, source) = self.read_kubeconfig()?;
        let context = self.context_in(&file, &source)?;
        let options = KubeConfigOptions {
            context: Some(context),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|e| CliError::Kubeconfig {
                source_name: source,
                message: e.to_string(),
            })?;
        let url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|e| CliError::Kubeconfig {
            source_name: url.clone(),
            message: e.to_string(),
        })?;
        match tokio::time::timeout(Duration::from_secs(15), client.apiserver_version()).await {
            Ok(Ok(_)) => Ok(client),
            Ok(Err(e)) => Err(CliError::HostUnreachable {
                url,
                message: e.to_string(),
            }),
            Err(_) => Err(CliError::HostUnreachable {
                url,
                message: "no answer within 15s".into(),
            }),
        }
    }
}

/// Applies `object` (server-side apply, taking over fields other managers
/// set: `vcluster create` owns what it made).
pub async fn apply(
    client: &kube::Client,
    namespace: &str,
    object: &HostObject,
) -> Result<(), CliError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let what = object.describe();
    let result = match object {
        HostObject::ServiceAccount(o) => apply_namespaced(client, namespace, o, &params).await,
        HostObject::Role(o) => apply_namespaced(client, namespace, o, &params).await,
        HostObject::RoleBinding(o) => apply_namespaced(client, namespace, o, &params).await,
        HostObject::Secret(o) => apply_namespaced(client, namespace, o, &params).await,
        HostObject::Service(o) => apply_namespaced(client, namespace, o.as_ref(), &params).await,
        HostObject::StatefulSet(o) => {
            apply_namespaced(client, namespace, o.as_ref(), &params).await
        }
        HostObject::ClusterRole(o) => apply_cluster(client, o, &params).await,
        HostObject::ClusterRoleBinding(o) => apply_cluster(client, o, &params).await,
    };
    result.map_err(|source| CliError::Api {
        what: format!("applying {what} in namespace {namespace}"),
        source,
    })
}

async fn apply_namespaced<K>(
    client: &kube::Client,
    namespace: &str,
    object: &K,
    params: &PatchParams,
) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(&name, params, &Patch::Apply(with_type(object)))
        .await
        .map(|_| ())
}

async fn apply_cluster<K>(
    client: &kube::Client,
    object: &K,
    params: &PatchParams,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(&name, params, &Patch::Apply(with_type(object)))
        .await
        .map(|_| ())
}

/// `object` as JSON with `apiVersion` and `kind` (which typed objects
/// leave out, and server-side apply requires).
fn with_type<K: Resource<DynamicType = ()> + Serialize>(object: &K) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    value["apiVersion"] = K::api_version(&()).into();
    value["kind"] = K::kind(&()).into();
    value
}

/// Deletes `name` if it exists; `true` when something was deleted.
pub async fn delete_if_present<K>(api: &Api<K>, name: &str, what: &str) -> Result<bool, CliError>
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    let params = DeleteParams::background();
    match api.delete(name, &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(CliError::Api {
            what: format!("deleting {what}/{name}"),
            source,
        }),
    }
}

/// Every object of `api` matching `selector` (`what` names them in the
/// error).
pub async fn list_matching<K>(api: &Api<K>, selector: &str, what: &str) -> Result<Vec<K>, CliError>
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|list| list.items)
        .map_err(|source| CliError::Api {
            what: format!("listing {what} ({selector})"),
            source,
        })
}

/// The control plane's pods of virtual cluster `names` in `namespace`.
pub async fn control_plane_pods(
    client: &kube::Client,
    namespace: &str,
    names: &Names,
) -> Result<Vec<Pod>, CliError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    list_matching(
        &pods,
        &manifests::selector(&names.workload),
        &format!("the control plane's pods in {namespace}"),
    )
    .await
}

/// Whether `pod`'s Ready condition is true.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Creates `object`, taking an existing one of the same name as done (a
/// replica or an earlier start made it).
pub async fn create_if_absent<K>(api: &Api<K>, object: &K, what: &str) -> Result<(), CliError>
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(source) => Err(CliError::Api {
            what: format!("creating {what}"),
            source,
        }),
    }
}

/// Deletes every object of `api` matching `selector`; how many there were.
pub async fn delete_matching<K>(api: &Api<K>, selector: &str, what: &str) -> Result<usize, CliError>
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    let mut count = 0;
    for object in list_matching(api, selector, what).await? {
        let name = object.meta().name.clone().unwrap_or_default();
        if delete_if_present(api, &name, what).await? {
            count += 1;
        }
    }
    Ok(count)
}

/// Waits (bounded) until `api` has nothing matching `selector`.
pub async fn wait_gone<K>(
    api: &Api<K>,
    selector: &str,
    what: &str,
    timeout: Duration,
) -> Result<(), CliError>
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = list_matching(api, selector, what).await?;
        if left.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Timeout {
                what: format!("{} {what} to be deleted", left.len()),
                hint: "check their finalizers with kubectl get -o yaml".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
