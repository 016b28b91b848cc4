//! Secrets encrypted at rest in the demo: by default a generated aesgcm
//! key file in the data directory, so the demo's SQLite file never holds
//! a secret in clear; or a kube-apiserver `EncryptionConfiguration` file
//! (`--encryption-provider-config`); or off.

use std::path::{Path, PathBuf};

use vcluster_apiserver::state_files;
use vcluster_apiserver::storage::EncryptionConfig;

use super::DemoError;

/// The generated configuration's file name in the data directory.
pub const GENERATED_FILE: &str = "encryption-config.yaml";

/// How the demo encrypts secrets at rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Encryption {
    /// aesgcm for secrets with a key generated on first start and kept
    /// (owner-only) in `<data-dir>/encryption-config.yaml`.
    #[default]
    Generated,
    /// kube-apiserver's `EncryptionConfiguration` file.
    File(PathBuf),
    /// Nothing is encrypted.
    Off,
}

impl std::str::FromStr for Encryption {
    type Err = std::convert::Infallible;

    /// `none` turns encryption off; anything else is a file.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(match value {
            "none" => Self::Off,
            path => Self::File(PathBuf::from(path)),
        })
    }
}

impl Encryption {
    /// The configuration to start the virtual API server with.
    pub(super) fn load(&self, data_dir: &Path) -> Result<Option<EncryptionConfig>, DemoError> {
        let error = |message: String| DemoError::Start {
            what: "encryption at rest",
            message,
        };
        let path = match self {
            Self::Off => return Ok(None),
            Self::File(path) => path.clone(),
            Self::Generated => {
                let path = data_dir.join(GENERATED_FILE);
                if !path.exists() {
                    let text = EncryptionConfig::generate_for_secrets()
                        .map_err(|e| error(e.to_string()))?;
                    state_files::write_private_file(&path, text.as_bytes())
                        .map_err(|e| error(format!("cannot write {}: {e}", path.display())))?;
                }
                path
            }
        };
        EncryptionConfig::load(&path)
            .map(Some)
            .map_err(|e| error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_key_is_owner_only_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        Encryption::Generated
            .load(dir.path())
            .expect("generated")
            .expect("on");
        let path = dir.path().join(GENERATED_FILE);
        let first = std::fs::read_to_string(&path).expect("written");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        Encryption::Generated.load(dir.path()).expect("again");
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), first);
        assert_eq!("none".parse(), Ok(Encryption::Off));
        assert!(Encryption::Off.load(dir.path()).expect("off").is_none());
        let error = Encryption::File(dir.path().join("missing.yaml"))
            .load(dir.path())
            .expect_err("missing file");
        assert!(error.to_string().contains("missing.yaml"), "{error}");
    }
}
