//! `vcluster disconnect`: back from a virtual cluster's context, which
//! `vcluster connect` made current, to the host context it was reached
//! from.

use std::path::PathBuf;

use crate::error::CliError;
use crate::kubeconfig::{self, KubeconfigFile};
use crate::progress::Progress;

/// `vcluster disconnect` flags.
#[derive(Debug, clap::Args)]
pub struct DisconnectArgs {
    /// The kubeconfig file to switch [default: the first of $KUBECONFIG,
    /// else ~/.kube/config]
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// Switches the current context back; returns the context now current.
pub fn disconnect(args: DisconnectArgs) -> Result<String, CliError> {
    let mut file = KubeconfigFile::load(&kubeconfig::file_to_edit(args.kubeconfig.as_deref())?)?;
    let current = file.current_context().unwrap_or_default().to_owned();
    let Some((name, namespace, parent)) = kubeconfig::parse_context_name(&current) else {
        return Err(CliError::Kubeconfig {
            source_name: file.path().display().to_string(),
            message: format!(
                "its current context {current:?} is not a virtual cluster's (`vcluster connect` makes one); nothing to disconnect"
            ),
        });
    };
    let parent = parent.to_owned();
    file.use_context(&parent);
    file.save()?;
    Progress::stderr().done(&format!(
        "disconnected from virtual cluster {name} (namespace {namespace}); the current context is {parent} again"
    ));
    Ok(parent)
}
