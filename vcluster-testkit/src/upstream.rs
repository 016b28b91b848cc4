//! Where the upstream Kubernetes binaries are: `tools/upstream/build` builds
//! kube-apiserver, kube-controller-manager and etcd from their Go modules
//! (pinned by `tools/upstream/go.mod`) into a cache folder keyed by the pins;
//! this module finds that folder the same way the script does.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Overrides the folder: a directory holding the three binaries.
pub const BIN_ENV: &str = "VCLUSTER_UPSTREAM_BIN";

/// Why the binaries could not be found.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The build script could not be asked for its folder.
    #[error("cannot run {script} --dir: {reason}")]
    Script {
        /// The script.
        script: String,
        /// What went wrong.
        reason: String,
    },
    /// A binary is not there.
    #[error(
        "{binary} is missing: the real-host tests run upstream Kubernetes built from its Go \
         modules. Run `tools/upstream/build` (a few minutes the first time; `bash tools/test` \
         runs it) or point {BIN_ENV} at a folder holding kube-apiserver, \
         kube-controller-manager and etcd."
    )]
    Missing {
        /// The path looked at.
        binary: String,
    },
}

/// The workspace's `tools/upstream/build` script.
fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/upstream/build")
}

/// The folder the binaries are (or would be) built into.
pub fn binaries_dir() -> Result<PathBuf, UpstreamError> {
    if let Some(dir) = std::env::var_os(BIN_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let script = build_script();
    let failed = |reason: String| UpstreamError::Script {
        script: script.display().to_string(),
        reason,
    };
    let output = Command::new("bash")
        .arg(&script)
        .arg("--dir")
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    ))
}

/// The path of one built binary (`kube-apiserver`, `kube-controller-manager`
/// or `etcd`), checked to exist.
pub fn binary(name: &str) -> Result<PathBuf, UpstreamError> {
    let path = binaries_dir()?.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(UpstreamError::Missing {
            binary: path.display().to_string(),
        })
    }
}
