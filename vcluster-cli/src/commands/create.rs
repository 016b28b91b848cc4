//! `vcluster create`: deploy a virtual cluster's control plane into the
//! host namespace and wait until it serves.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, PostParams};

use crate::error::CliError;
use crate::host::{self, HostArgs};
use crate::manifests;
use crate::progress::Progress;

/// `vcluster create` flags.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The virtual cluster's name
    pub name: String,
    /// The host namespace [default: vcluster-<name>]
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// vcluster.yaml: the virtual cluster's configuration
    #[arg(long = "values", short = 'f', value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The control plane image (overrides controlPlane.statefulSet.image)
    #[arg(long)]
    pub image: Option<String>,
    /// Apply to an existing virtual cluster (a new configuration or image)
    #[arg(long)]
    pub upgrade: bool,
    /// Do not wait for the control plane to serve
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the control plane to serve
    #[arg(long, default_value = "5m", value_parser = crate::parse_duration)]
    pub timeout: Duration,
    /// The host cluster (`--kubeconfig`, `--context`).
    #[command(flatten)]
    pub host: HostArgs,
}

/// The namespace a virtual cluster lives in when none is given.
pub fn default_namespace(name: &str) -> String {
    format!("vcluster-{name}")
}

/// Deploys the control plane.
pub async fn create(args: CreateArgs) -> Result<(), CliError> {
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| default_namespace(&args.name));
    let progress = Progress::stderr();
    let plane = crate::config::control_plane(
        &args.name,
        &namespace,
        args.config.as_deref(),
        args.image.as_deref(),
    )?;
    let client = args.host.client().await?;
    ensure_namespace(&client, &namespace, &progress).await?;

    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let existing = sets
        .get_opt(&args.name)
        .await
        .map_err(|source| CliError::Api {
            what: format!("looking for virtual cluster {}/{}", namespace, args.name),
            source,
        })?;
    if existing.is_some() && !args.upgrade {
        return Err(CliError::Exists {
            name: args.name,
            namespace,
        });
    }

    for object in plane.objects() {
        host::apply(&client, &namespace, &object).await?;
        progress.step(&format!("applied {}", object.describe()));
    }
    if args.no_wait {
        progress.done(&format!(
            "virtual cluster {} created in namespace {namespace}; `vcluster connect {} -n {namespace}` once it serves",
            args.name, args.name
        ));
        return Ok(());
    }
    wait_until_serving(&client, &namespace, &plane, args.timeout, &progress).await?;
    progress.done(&format!(
        "virtual cluster {} is ready; next: vcluster connect {} -n {namespace}",
        args.name, args.name
    ));
    Ok(())
}

async fn ensure_namespace(
    client: &kube::Client,
    namespace: &str,
    progress: &Progress,
) -> Result<(), CliError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut object = Namespace::default();
    object.metadata.name = Some(namespace.to_owned());
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {
            progress.step(&format!("created namespace {namespace}"));
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        // Users allowed only into their namespace may not create (nor
        // read) namespaces; applying into it says whether it exists.
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(()),
        Err(source) => Err(CliError::Api {
            what: format!("creating namespace {namespace}"),
            source,
        }),
    }
}

/// Waits until the StatefulSet's pods are ready and the control plane
/// published its kubeconfig Secret, saying what it waits for.
async fn wait_until_serving(
    client: &kube::Client,
    namespace: &str,
    plane: &manifests::ControlPlane,
    timeout: Duration,
    progress: &Progress,
) -> Result<(), CliError> {
    let names = &plane.names();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let published = secrets
            .get_opt(&plane.kubeconfig_secret)
            .await
            .map_err(|source| CliError::Api {
                what: format!("reading secret {namespace}/{}", plane.kubeconfig_secret),
                source,
            })?
            .is_some();
        let listed = host::control_plane_pods(client, namespace, names).await?;
        let states: Vec<String> = listed.iter().map(pod_state).collect();
        let ready = !states.is_empty() && states.iter().all(|s| s.ends_with(": ready"));
        if published && ready {
            return Ok(());
        }
        let now = if states.is_empty() {
            "waiting for the control plane pod to be created".to_owned()
        } else if !published {
            format!(
                "waiting for the control plane to serve ({})",
                states.join(", ")
            )
        } else {
            format!("waiting for pods to be ready ({})", states.join(", "))
        };
        if now != last {
            progress.step(&now);
            last = now;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Timeout {
                what: format!("virtual cluster {}/{}", namespace, names.workload),
                hint: format!(
                    "{last}; see `kubectl -n {namespace} describe pod {}-0` and `kubectl -n {namespace} logs {}-0`",
                    names.workload, names.workload
                ),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `name: phase` or `name: ready` of a control plane pod.
fn pod_state(pod: &Pod) -> String {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    if host::is_ready(pod) {
        return format!("{name}: ready");
    }
    let waiting = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone());
    let phase = status.and_then(|s| s.phase.clone());
    format!(
        "{name}: {}",
        waiting.or(phase).unwrap_or_else(|| "Pending".into())
    )
}
