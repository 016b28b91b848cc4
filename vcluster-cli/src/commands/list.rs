//! `vcluster list`: the virtual clusters of the host (or of one
//! namespace), from their StatefulSets.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, ListParams};

use crate::error::CliError;
use crate::host::HostArgs;
use crate::manifests::{APP_LABEL, PAUSED_ANNOTATION, RELEASE_LABEL};

/// `vcluster list` flags.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this host namespace [default: all namespaces]
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The host cluster (`--kubeconfig`, `--context`).
    #[command(flatten)]
    pub host: HostArgs,
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The virtual cluster's name.
    pub name: String,
    /// Its host namespace.
    pub namespace: String,
    /// `Running`, `Paused` or `Pending`.
    pub status: &'static str,
    /// Ready replicas / wanted replicas.
    pub replicas: String,
}

/// The row of one control plane StatefulSet.
pub fn row(set: &StatefulSet) -> Row {
    let paused = set
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.get(PAUSED_ANNOTATION).is_some_and(|v| v == "true"));
    let wanted = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = set
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let status = if paused {
        "Paused"
    } else if wanted > 0 && ready >= wanted {
        "Running"
    } else {
        "Pending"
    };
    let labels = set.metadata.labels.clone().unwrap_or_default();
    Row {
        name: labels
            .get(RELEASE_LABEL)
            .cloned()
            .or_else(|| set.metadata.name.clone())
            .unwrap_or_default(),
        namespace: set.metadata.namespace.clone().unwrap_or_default(),
        status,
        replicas: format!("{ready}/{wanted}"),
    }
}

/// Prints the table.
pub async fn list(args: ListArgs) -> Result<(), CliError> {
    let client = args.host.client().await?;
    let api: Api<StatefulSet> = match &args.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let selector = format!("{}={}", APP_LABEL.0, APP_LABEL.1);
    let sets = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| CliError::Api {
            what: "listing virtual clusters (StatefulSets labelled app=vcluster)".into(),
            source,
        })?;
    let rows: Vec<Row> = sets.items.iter().map(row).collect();
    print!("{}", table(&rows));
    Ok(())
}

/// The rows as an aligned table, kubectl's style.
pub fn table(rows: &[Row]) -> String {
    let header = ["NAME", "NAMESPACE", "STATUS", "READY"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.namespace.clone(),
                r.status.to_owned(),
                r.replicas.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header);
    for row in &cells {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    out
}
