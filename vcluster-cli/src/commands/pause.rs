//! `vcluster pause` and `resume` (vCluster's sleep): pausing scales the
//! control plane to zero and removes the tenants' host pods, so the
//! virtual cluster costs nothing but its volume; its state (every virtual
//! object) stays in the store. Resuming scales the control plane back;
//! its syncer then brings the workloads back as their controllers
//! recreate their pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::commands::delete::MANAGED_BY_LABEL;
use crate::error::CliError;
use crate::host::{delete_matching, HostArgs};
use crate::manifests::{self, Names, PAUSED_ANNOTATION, PAUSED_REPLICAS_ANNOTATION};
use crate::progress::Progress;

/// `vcluster pause` / `resume` flags.
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    /// The virtual cluster's name
    pub name: String,
    /// Its host namespace [default: vcluster-<name>]
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The host cluster (`--kubeconfig`, `--context`).
    #[command(flatten)]
    pub host: HostArgs,
}

async fn stateful_set(
    client: &kube::Client,
    args: &PauseArgs,
) -> Result<(Api<StatefulSet>, StatefulSet, String), CliError> {
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| super::create::default_namespace(&args.name));
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let set = sets
        .get_opt(&Names::new(&args.name, &namespace).workload)
        .await
        .map_err(|source| CliError::Api {
            what: format!("reading virtual cluster {namespace}/{}", args.name),
            source,
        })?
        .ok_or_else(|| CliError::NotFound {
            name: args.name.clone(),
            namespace: namespace.clone(),
        })?;
    Ok((sets, set, namespace))
}

fn annotations(set: &StatefulSet) -> BTreeMap<String, String> {
    set.metadata.annotations.clone().unwrap_or_default()
}

/// Pauses the virtual cluster.
pub async fn pause(args: PauseArgs) -> Result<(), CliError> {
    let progress = Progress::stderr();
    let client = args.host.client().await?;
    let (sets, set, namespace) = stateful_set(&client, &args).await?;
    if annotations(&set)
        .get(PAUSED_ANNOTATION)
        .is_some_and(|v| v == "true")
    {
        progress.done(&format!("virtual cluster {} is already paused", args.name));
        return Ok(());
    }
    let replicas = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    // One patch: the replicas to restore and the scale-down together, so
    // an interrupted pause never loses the replica count.
    let patch = json!({
        "metadata": {"annotations": {
            PAUSED_ANNOTATION: "true",
            PAUSED_REPLICAS_ANNOTATION: replicas.to_string(),
        }},
        "spec": {"replicas": 0},
    });
    sets.patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| CliError::Api {
            what: format!("scaling {namespace}/{} to zero", args.name),
            source,
        })?;
    progress.step(&format!(
        "scaled the control plane {namespace}/{} to zero",
        args.name
    ));
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    crate::host::wait_gone(
        &pods,
        &manifests::selector(&args.name),
        "control plane pods",
        std::time::Duration::from_secs(120),
    )
    .await?;
    let removed =
        delete_matching(&pods, &format!("{MANAGED_BY_LABEL}={}", args.name), "pods").await?;
    progress.step(&format!("deleted {removed} tenant pod(s) on the host"));
    progress.done(&format!(
        "virtual cluster {} paused; `vcluster resume {} -n {namespace}` brings it back",
        args.name, args.name
    ));
    Ok(())
}

/// Resumes a paused virtual cluster.
pub async fn resume(args: PauseArgs) -> Result<(), CliError> {
    let progress = Progress::stderr();
    let client = args.host.client().await?;
    let (sets, set, namespace) = stateful_set(&client, &args).await?;
    let annotations = annotations(&set);
    if annotations
        .get(PAUSED_ANNOTATION)
        .is_none_or(|v| v != "true")
    {
        progress.done(&format!("virtual cluster {} is not paused", args.name));
        return Ok(());
    }
    let replicas: i32 = annotations
        .get(PAUSED_REPLICAS_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(1);
    let patch = json!({
        "metadata": {"annotations": {
            PAUSED_ANNOTATION: null,
            PAUSED_REPLICAS_ANNOTATION: null,
        }},
        "spec": {"replicas": replicas},
    });
    sets.patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| CliError::Api {
            what: format!("scaling {namespace}/{} back", args.name),
            source,
        })?;
    progress.done(&format!(
        "virtual cluster {} resumed with {replicas} replica(s)",
        args.name
    ));
    Ok(())
}
