//! `vcluster`: virtual Kubernetes clusters in a host cluster.
//!
//! ```sh
//! vcluster create my-vc -n team-a
//! vcluster connect my-vc -n team-a -- kubectl get namespaces
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vcluster_cli::commands::{connect, create, delete, disconnect, list, pause, run};

/// Virtual Kubernetes clusters: a full control plane in one namespace of a
/// host cluster, its workloads synced into that namespace.
#[derive(Parser, Debug)]
#[command(name = "vcluster", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Deploy a virtual cluster into the host cluster of the current kubeconfig
    Create(create::CreateArgs),
    /// Switch the current kube context to a virtual cluster (port-forwarding to it), write a kubeconfig for it, or run a command with it
    Connect(connect::ConnectArgs),
    /// Switch the current kube context back from a virtual cluster to its host
    Disconnect(disconnect::DisconnectArgs),
    /// List the virtual clusters of the host cluster
    List(list::ListArgs),
    /// Delete a virtual cluster and everything it made on the host
    Delete(delete::DeleteArgs),
    /// Scale a virtual cluster's control plane and workloads to zero, keeping its state
    Pause(pause::PauseArgs),
    /// Bring a paused virtual cluster back
    Resume(pause::PauseArgs),
    /// Run the control plane (what the control plane pod executes)
    Run(run::RunArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if matches!(cli.command, Command::Run(_)) {
            "info"
        } else {
            "warn"
        })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Create(args) => create::create(args).await.map(|()| 0),
        Command::Connect(args) => connect::connect(args).await,
        Command::Disconnect(args) => disconnect::disconnect(args).map(|_| 0),
        Command::List(args) => list::list(args).await.map(|()| 0),
        Command::Delete(args) => delete::delete(args).await.map(|()| 0),
        Command::Pause(args) => pause::pause(args).await.map(|()| 0),
        Command::Resume(args) => pause::resume(args).await.map(|()| 0),
        Command::Run(args) => run::run(args).await.map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
