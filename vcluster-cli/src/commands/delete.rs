//! `vcluster delete`: remove a control plane and everything its syncer
//! made in the host namespace, so nothing is left behind.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, LimitRange, Namespace, PersistentVolumeClaim, Pod, ResourceQuota, Secret,
    Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::NamespaceResourceScope;
use kube::api::Api;
use kube::Resource;
use serde::de::DeserializeOwned;

use crate::error::CliError;
use crate::host::{delete_if_present, delete_matching, wait_gone, HostArgs};
use crate::kubeconfig::{self, KubeconfigFile};
use crate::manifests::{self, Names};
use crate::progress::Progress;

/// The label the syncer puts on every host object it makes.
pub const MANAGED_BY_LABEL: &str = "vcluster.loft.sh/managed-by";

/// `vcluster delete` flags.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The virtual cluster's name
    pub name: String,
    /// Its host namespace [default: vcluster-<name>]
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Keep the control plane's data volumes (its store)
    #[arg(long)]
    pub keep_pvc: bool,
    /// Also delete the host namespace
    #[arg(long)]
    pub delete_namespace: bool,
    /// How long to wait until everything is gone
    #[arg(long, default_value = "2m", value_parser = crate::parse_duration)]
    pub timeout: Duration,
    /// The host cluster (`--kubeconfig`, `--context`).
    #[command(flatten)]
    pub host: HostArgs,
}

/// Deletes the virtual cluster.
pub async fn delete(args: DeleteArgs) -> Result<(), CliError> {
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| super::create::default_namespace(&args.name));
    let names = Names::new(&args.name, &namespace);
    let progress = Progress::stderr();
    let client = args.host.client().await?;
    let ns = |c: &kube::Client| c.clone();

    // The control plane first, so its syncer stops making objects.
    let sets: Api<StatefulSet> = Api::namespaced(ns(&client), &namespace);
    if !delete_if_present(&sets, &names.workload, "statefulset").await? {
        return Err(CliError::NotFound {
            name: args.name,
            namespace,
        });
    }
    progress.step(&format!("deleted statefulset/{}", names.workload));
    let control_plane = manifests::selector(&args.name);
    let pods: Api<Pod> = Api::namespaced(ns(&client), &namespace);
    wait_gone(&pods, &control_plane, "control plane pods", args.timeout).await?;

    let services: Api<Service> = Api::namespaced(ns(&client), &namespace);
    for name in [&names.workload, &names.headless] {
        delete_if_present(&services, name, "service").await?;
    }
    // Read before the config Secret goes.
    let kubeconfig_secret =
        crate::config::deployed_kubeconfig_secret(&client, &namespace, &names).await?;
    let secrets: Api<Secret> = Api::namespaced(ns(&client), &namespace);
    for name in [
        &kubeconfig_secret,
        &names.config_secret,
        &names.certs_secret,
    ] {
        delete_if_present(&secrets, name, "secret").await?;
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(ns(&client), &namespace);
    delete_if_present(&accounts, &names.account, "serviceaccount").await?;
    let roles: Api<Role> = Api::namespaced(ns(&client), &namespace);
    delete_if_present(&roles, &names.account, "role").await?;
    let bindings: Api<RoleBinding> = Api::namespaced(ns(&client), &namespace);
    delete_if_present(&bindings, &names.account, "rolebinding").await?;
    let cluster_roles: Api<ClusterRole> = Api::all(ns(&client));
    delete_if_present(&cluster_roles, &names.cluster_role, "clusterrole").await?;
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(ns(&client));
    delete_if_present(&cluster_bindings, &names.cluster_role, "clusterrolebinding").await?;
    if !args.keep_pvc {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(ns(&client), &namespace);
        let removed = delete_matching(&claims, &control_plane, "persistentvolumeclaims").await?;
        if removed > 0 {
            progress.step(&format!("deleted {removed} data volume claim(s)"));
        }
    }
    progress.step("deleted the control plane's service account, RBAC, services and secrets");

    // Then what the syncer made for tenants.
    let synced = format!("{MANAGED_BY_LABEL}={}", args.name);
    let mut removed = 0;
    removed += purge::<Pod>(&client, &namespace, &synced, "pods").await?;
    removed += purge::<Service>(&client, &namespace, &synced, "services").await?;
    removed += purge::<Endpoints>(&client, &namespace, &synced, "endpoints").await?;
    removed += purge::<EndpointSlice>(&client, &namespace, &synced, "endpointslices").await?;
    removed += purge::<ConfigMap>(&client, &namespace, &synced, "configmaps").await?;
    removed += purge::<Secret>(&client, &namespace, &synced, "secrets").await?;
    removed +=
        purge::<PersistentVolumeClaim>(&client, &namespace, &synced, "persistentvolumeclaims")
            .await?;
    removed += purge::<ServiceAccount>(&client, &namespace, &synced, "serviceaccounts").await?;
    removed += purge::<Ingress>(&client, &namespace, &synced, "ingresses").await?;
    removed += purge::<NetworkPolicy>(&client, &namespace, &synced, "networkpolicies").await?;
    removed +=
        purge::<PodDisruptionBudget>(&client, &namespace, &synced, "poddisruptionbudgets").await?;
    removed += purge::<ResourceQuota>(&client, &namespace, &synced, "resourcequotas").await?;
    removed += purge::<LimitRange>(&client, &namespace, &synced, "limitranges").await?;
    progress.step(&format!("deleted {removed} object(s) synced for tenants"));
    wait_gone(&pods, &synced, "synced pods", args.timeout).await?;

    if args.delete_namespace {
        let namespaces: Api<Namespace> = Api::all(ns(&client));
        delete_if_present(&namespaces, &namespace, "namespace").await?;
        progress.step(&format!("deleted namespace {namespace}"));
    }
    forget_contexts(&args, &namespace, &progress)?;
    progress.done(&format!("virtual cluster {} deleted", args.name));
    Ok(())
}

/// Removes the contexts `vcluster connect` made for this virtual cluster
/// from the user's kubeconfig (they hold its keys and name a server that
/// is gone), switching back to the host context if one was current.
fn forget_contexts(
    args: &DeleteArgs,
    namespace: &str,
    progress: &Progress,
) -> Result<(), CliError> {
    let path = kubeconfig::file_to_edit(args.host.kubeconfig.as_deref())?;
    if !path.exists() {
        return Ok(());
    }
    let mut file = KubeconfigFile::load(&path)?;
    let removed = file.remove_virtual_cluster(&args.name, namespace);
    if !removed.is_empty() {
        file.save()?;
        progress.step(&format!(
            "removed context(s) {} from {}",
            removed.join(", "),
            path.display()
        ));
    }
    Ok(())
}

/// Deletes the synced objects of one kind; a kind the host does not
/// serve, or the caller may not list, is reported, not fatal (the syncer
/// did not make any there either).
async fn purge<K>(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    what: &str,
) -> Result<usize, CliError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match delete_matching(&api, selector, what).await {
        Ok(count) => Ok(count),
        Err(CliError::Api {
            source: kube::Error::Api(status),
            ..
        }) if status.code == 404 => Ok(0),
        Err(e) => Err(e),
    }
}
