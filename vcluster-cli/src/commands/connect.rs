//! `vcluster connect`: a kubeconfig for the virtual cluster, reaching it
//! through a local port-forward to the control plane pod (nothing to
//! expose on the host), or at an address given with `--server`; with
//! `-- COMMAND`, runs the command with that kubeconfig and stops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::Api;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::error::CliError;
use crate::host::{self, HostArgs};
use crate::kubeconfig::{self, KubeconfigFile};
use crate::manifests::{Names, API_PORT};
use crate::progress::Progress;

/// `vcluster connect` flags.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The virtual cluster's name
    pub name: String,
    /// Its host namespace [default: vcluster-<name>]
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Reach the API server at this URL instead of through a port-forward
    /// (its Service's address, a LoadBalancer, an ingress)
    #[arg(long)]
    pub server: Option<String>,
    /// The local port of the port-forward [default: a free one]
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    pub local_port: u16,
    /// Write the virtual cluster's kubeconfig to this file instead of
    /// updating the current one [default with --update-current=false:
    /// ./kubeconfig.yaml]
    #[arg(long = "kube-config", value_name = "PATH")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Add the virtual cluster's context to the host's kubeconfig file and
    /// switch to it (`vcluster disconnect` switches back)
    #[arg(
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub update_current: bool,
    /// Print the kubeconfig on stdout instead of writing it
    #[arg(long)]
    pub print: bool,
    /// Run this command with KUBECONFIG set to the virtual cluster's
    /// (after `--`), then stop
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    /// The host cluster (`--kubeconfig`, `--context`).
    #[command(flatten)]
    pub host: HostArgs,
}

/// Connects; returns the command's exit code when one was run.
pub async fn connect(args: ConnectArgs) -> Result<i32, CliError> {
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| super::create::default_namespace(&args.name));
    let names = Names::new(&args.name, &namespace);
    let progress = if args.print {
        Progress::quiet()
    } else {
        Progress::stderr()
    };
    let client = args.host.client().await?;
    let secret_name =
        crate::config::deployed_kubeconfig_secret(&client, &namespace, &names).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = secrets
        .get_opt(&secret_name)
        .await
        .map_err(|source| CliError::Api {
            what: format!("reading secret {namespace}/{}", secret_name),
            source,
        })?
        .ok_or_else(|| {
            CliError::ControlPlane(format!(
                "virtual cluster {} in namespace {namespace} has not published its kubeconfig (secret {}) yet; is it running? (`vcluster list -n {namespace}`)",
                args.name, secret_name
            ))
        })?;
    let exported = secret
        .data
        .as_ref()
        .and_then(|d| d.get("config"))
        .map(|v| v.0.clone())
        .ok_or_else(|| {
            CliError::ControlPlane(format!(
                "secret {namespace}/{} has no `config` key",
                secret_name
            ))
        })?;
    let mut kubeconfig: serde_json::Value = serde_yaml::from_slice(&exported).map_err(|e| {
        CliError::ControlPlane(format!(
            "secret {namespace}/{} holds no valid kubeconfig: {e}",
            secret_name
        ))
    })?;

    let cancel = CancellationToken::new();
    let forwarding = match &args.server {
        Some(server) => {
            set_server(&mut kubeconfig, server);
            None
        }
        None => {
            let pod = serving_pod(&client, &namespace, &names).await?;
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.local_port)))
                .await
                .map_err(|source| CliError::Io {
                    what: format!("listening on 127.0.0.1:{}", args.local_port),
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| CliError::Io {
                what: "reading the local address".into(),
                source,
            })?;
            // localhost: a name the serving certificate holds.
            set_server(
                &mut kubeconfig,
                &format!("https://localhost:{}", local.port()),
            );
            progress.step(&format!(
                "forwarding 127.0.0.1:{} to pod {namespace}/{pod} port {API_PORT}",
                local.port()
            ));
            let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            Some(tokio::spawn(forward(listener, pods, pod, cancel.clone())))
        }
    };
    let parent = args.host.host_context()?;
    let context = kubeconfig::context_name(&args.name, &namespace, &parent);
    rename_context(&mut kubeconfig, &context);
    let yaml = serde_yaml::to_string(&kubeconfig).unwrap_or_default();

    if args.print {
        print!("{yaml}");
    }
    let output = if !args.command.is_empty() {
        // The command gets a file of its own; the current context stays.
        let path = args.kubeconfig_out.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("vcluster-{}-{namespace}.kubeconfig", args.name))
        });
        write_kubeconfig(&path, &yaml)?;
        Some(path)
    } else if args.print {
        None
    } else if args.update_current && args.kubeconfig_out.is_none() {
        let mut file =
            KubeconfigFile::load(&kubeconfig::file_to_edit(args.host.kubeconfig.as_deref())?)?;
        let entries = serde_yaml::to_value(&kubeconfig).map_err(|e| CliError::Kubeconfig {
            source_name: format!("secret {namespace}/{secret_name}"),
            message: e.to_string(),
        })?;
        file.merge_as_current(&entries, &context)?;
        file.save()?;
        progress.step(&format!(
            "switched the current context of {} to {context} (`vcluster disconnect` switches back to {parent})",
            file.path().display()
        ));
        None
    } else {
        let path = args
            .kubeconfig_out
            .clone()
            .unwrap_or_else(|| PathBuf::from("./kubeconfig.yaml"));
        write_kubeconfig(&path, &yaml)?;
        progress.step(&format!(
            "kubeconfig for virtual cluster {} written to {}",
            args.name,
            path.display()
        ));
        Some(path)
    };
    let code = if let Some((program, rest)) = args.command.split_first() {
        let mut command = tokio::process::Command::new(program);
        command.args(rest);
        if let Some(path) = &output {
            command.env("KUBECONFIG", path);
        }
        let status = command.status().await.map_err(|source| CliError::Command {
            command: program.clone(),
            source,
        })?;
        status.code().unwrap_or(1)
    } else {
        // Quiet with --print, whose kubeconfig went to stdout.
        let usage = match &output {
            Some(path) => format!("export KUBECONFIG={} and use kubectl", path.display()),
            None => format!("kubectl now talks to virtual cluster {}", args.name),
        };
        if forwarding.is_some() {
            progress.done(&format!("{usage}; press Ctrl+C to stop forwarding"));
            let _ = tokio::signal::ctrl_c().await;
        } else {
            progress.done(&usage);
        }
        0
    };
    cancel.cancel();
    if let Some(task) = forwarding {
        let _ = task.await;
    }
    Ok(code)
}

fn set_server(kubeconfig: &mut serde_json::Value, server: &str) {
    if let Some(clusters) = kubeconfig["clusters"].as_array_mut() {
        for cluster in clusters {
            cluster["cluster"]["server"] = server.into();
        }
    }
}

/// Names the context (and its cluster and user) `name`, so it can sit
/// beside others in one kubeconfig.
fn rename_context(kubeconfig: &mut serde_json::Value, name: &str) {
    for list in ["clusters", "users", "contexts"] {
        if let Some(entries) = kubeconfig[list].as_array_mut() {
            for entry in entries.iter_mut().take(1) {
                entry["name"] = name.into();
            }
        }
    }
    if let Some(context) = kubeconfig["contexts"].get_mut(0) {
        context["context"]["cluster"] = name.into();
        context["context"]["user"] = name.into();
    }
    kubeconfig["current-context"] = name.into();
}

fn write_kubeconfig(path: &Path, yaml: &str) -> Result<(), CliError> {
    // It holds the admin key: owner-only.
    vcluster_apiserver::state_files::write_private_file(path, yaml.as_bytes()).map_err(|source| {
        CliError::Io {
            what: format!("writing {}", path.display()),
            source,
        }
    })
}

/// A ready control plane pod (any, when none is ready yet).
async fn serving_pod(
    client: &kube::Client,
    namespace: &str,
    names: &Names,
) -> Result<String, CliError> {
    let listed = host::control_plane_pods(client, namespace, names).await?;
    listed
        .iter()
        .find(|p| host::is_ready(p))
        .or_else(|| listed.first())
        .and_then(|p| p.metadata.name.clone())
        .ok_or_else(|| {
            CliError::ControlPlane(format!(
                "virtual cluster {} in namespace {namespace} has no control plane pod (paused? `vcluster resume {} -n {namespace}`)",
                names.workload, names.workload
            ))
        })
}

/// Accepts local connections and carries each over its own port-forward
/// stream to the pod, until cancelled.
async fn forward(listener: TcpListener, pods: Api<Pod>, pod: String, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((local, _)) = accepted else { continue };
        let pods = pods.clone();
        let pod = pod.clone();
        tokio::spawn(async move {
            if let Err(e) = forward_one(local, &pods, &pod).await {
                tracing::warn!(pod = %pod, error = %e, "port-forward connection failed");
            }
        });
    }
}

async fn forward_one(mut local: TcpStream, pods: &Api<Pod>, pod: &str) -> Result<(), String> {
    let mut forwarder = pods
        .portforward(pod, &[API_PORT])
        .await
        .map_err(|e| e.to_string())?;
    let mut remote = forwarder
        .take_stream(API_PORT)
        .ok_or_else(|| "no stream for the port".to_owned())?;
    let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
    drop(remote);
    let _ = forwarder.join().await;
    Ok(())
}
