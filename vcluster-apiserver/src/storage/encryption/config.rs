//! kube-apiserver's `EncryptionConfiguration` file
//! (`--encryption-provider-config`), parsed and validated so that an
//! existing upstream file works unchanged and a broken one is refused at
//! start-up with the field that is wrong.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use super::providers::{Cipher, NamedKey, Provider};

/// Why an encryption configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionConfigError {
    /// The file cannot be read.
    #[error("error reading encryption provider configuration file {path:?}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("encryption provider configuration file {path:?} is empty")]
    Empty {
        /// The file.
        path: String,
    },
    /// Not YAML/JSON of the expected shape (unknown fields are refused, as
    /// upstream's strict decoder does).
    #[error("error decoding encryption provider configuration: {0}")]
    Decode(#[from] serde_yaml::Error),
    /// Another kind of document.
    #[error("got unexpected config type: apiVersion {api_version:?}, kind {kind:?} (expected apiVersion apiserver.config.k8s.io/v1, kind EncryptionConfiguration)")]
    Type {
        /// The document's `apiVersion`.
        api_version: String,
        /// The document's `kind`.
        kind: String,
    },
    /// The operating system gave no random bytes for a new key.
    #[error("cannot generate an encryption key: {0}")]
    Random(String),
    /// Fields with invalid values, each with its path.
    #[error("invalid encryption provider configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// The file as written; unknown fields are refused, as upstream's strict
/// decoder does.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    resources: Vec<RawResourceConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResourceConfig {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<RawProvider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    aesgcm: Option<RawKeys>,
    aescbc: Option<RawKeys>,
    secretbox: Option<RawKeys>,
    identity: Option<serde_yaml::Value>,
    kms: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    #[serde(default)]
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret: String,
}

/// A group and resource as the file names them (`secrets`,
/// `deployments.apps`, `*.apps`, `*.` for the core group, `*.*`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupResource {
    /// The API group; empty for the core group, `*` for any.
    pub group: String,
    /// The resource; `*` for any in the group.
    pub resource: String,
}

impl GroupResource {
    /// Upstream's `schema.ParseGroupResource`: the first dot splits.
    pub fn parse(text: &str) -> Self {
        match text.split_once('.') {
            Some((resource, group)) => Self {
                group: group.to_owned(),
                resource: resource.to_owned(),
            },
            None => Self {
                group: String::new(),
                resource: text.to_owned(),
            },
        }
    }

    fn any() -> Self {
        Self {
            group: "*".into(),
            resource: "*".into(),
        }
    }

    fn any_in(group: &str) -> Self {
        Self {
            group: group.into(),
            resource: "*".into(),
        }
    }
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.group.as_str(), self.resource.as_str()) {
            ("", "*") => f.write_str("*."),
            ("", resource) => f.write_str(resource),
            (group, resource) => write!(f, "{resource}.{group}"),
        }
    }
}

/// A parsed, validated encryption configuration: for each configured
/// resource the providers in order (the first writes, all read).
#[derive(Clone, Debug)]
pub struct EncryptionConfig {
    providers: HashMap<GroupResource, Arc<Vec<Provider>>>,
}

/// Key sizes upstream accepts (`aes.NewCipher`; secretbox needs 32).
const AES_KEY_SIZES: &[usize] = &[16, 24, 32];
const SECRETBOX_KEY_SIZES: &[usize] = &[32];

impl EncryptionConfig {
    /// Reads and validates a file (kube-apiserver's
    /// `--encryption-provider-config`).
    pub fn load(path: &Path) -> Result<Self, EncryptionConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| EncryptionConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if text.trim().is_empty() {
            return Err(EncryptionConfigError::Empty {
                path: path.display().to_string(),
            });
        }
        Self::parse(&text)
    }

    /// Parses and validates a document (YAML, or JSON, which is YAML).
    pub fn parse(text: &str) -> Result<Self, EncryptionConfigError> {
        let raw: RawFile = serde_yaml::from_str(text)?;
        let current = raw.api_version == "apiserver.config.k8s.io/v1"
            && raw.kind == "EncryptionConfiguration";
        // Upstream still reads the pre-1.13 form.
        let legacy = raw.api_version == "v1" && raw.kind == "EncryptionConfig";
        if !current && !legacy {
            return Err(EncryptionConfigError::Type {
                api_version: raw.api_version,
                kind: raw.kind,
            });
        }
        let mut errors = Vec::new();
        if raw.resources.is_empty() {
            errors.push("resources: Required value: at least one resources is required".into());
        }
        let mut providers: HashMap<GroupResource, Vec<Provider>> = HashMap::new();
        for (i, entry) in raw.resources.iter().enumerate() {
            let path = format!("resources[{i}]");
            validate_resources(&entry.resources, &path, &mut errors);
            if entry.providers.is_empty() {
                errors.push(format!(
                    "{path}.providers: Required value: at least one {path}.providers is required"
                ));
            }
            let built: Vec<Provider> = entry
                .providers
                .iter()
                .enumerate()
                .filter_map(|(j, p)| {
                    build_provider(p, &format!("{path}.providers[{j}]"), &mut errors)
                })
                .collect();
            for resource in &entry.resources {
                let gr = GroupResource::parse(resource);
                for mask in [GroupResource::any_in(&gr.group), GroupResource::any()] {
                    if mask != gr && providers.contains_key(&mask) {
                        errors.push(format!(
                            "resource {:?} is masked by earlier rule {:?}",
                            gr.to_string(),
                            mask.to_string()
                        ));
                    }
                }
                providers
                    .entry(gr)
                    .or_default()
                    .extend(built.iter().cloned());
            }
        }
        if !errors.is_empty() {
            return Err(EncryptionConfigError::Invalid(errors));
        }
        Ok(Self {
            providers: providers
                .into_iter()
                .map(|(gr, list)| (gr, Arc::new(list)))
                .collect(),
        })
    }

    /// The providers of a stored resource (`group` empty for the core
    /// group), looked up as upstream does: the exact resource, then
    /// `*.<group>`, then `*.*`. `None`: stored as is.
    pub fn providers_for(&self, group: &str, resource: &str) -> Option<&Arc<Vec<Provider>>> {
        let exact = GroupResource {
            group: group.to_owned(),
            resource: resource.to_owned(),
        };
        self.providers
            .get(&exact)
            .or_else(|| self.providers.get(&GroupResource::any_in(group)))
            .or_else(|| self.providers.get(&GroupResource::any()))
    }

    /// A new configuration file's text: one fresh random 32-byte aesgcm
    /// key (`key1`) for secrets, then `identity`, so that secrets stored
    /// before encryption was turned on stay readable (what the demo writes
    /// into its data directory).
    pub fn generate_for_secrets() -> Result<String, EncryptionConfigError> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret)
            .map_err(|e| EncryptionConfigError::Random(e.to_string()))?;
        let secret = base64::engine::general_purpose::STANDARD.encode(secret);
        Ok(format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n      - aesgcm:\n          keys:\n            - name: key1\n              secret: {secret}\n      - identity: {{}}\n"
        ))
    }
}

/// Upstream's resource-name rules (validation_encryption.go).
fn validate_resources(resources: &[String], path: &str, errors: &mut Vec<String>) {
    if resources.is_empty() {
        errors.push(format!(
            "{path}.resources: Required value: at least one {path}.resources is required"
        ));
    }
    let parsed: Vec<GroupResource> = resources.iter().map(|r| GroupResource::parse(r)).collect();
    let duplicate = parsed
        .iter()
        .enumerate()
        .any(|(i, a)| parsed[..i].contains(a));
    if duplicate {
        errors.push(format!(
            "{path}.resources: Invalid value: {resources:?}: the same resource cannot be specified multiple times"
        ));
    }
    let overlap = parsed.iter().enumerate().any(|(i, a)| {
        parsed.iter().enumerate().any(|(j, b)| {
            i != j
                && a != b
                && (*a == GroupResource::any()
                    || (a.group == b.group && (a.resource == "*" || b.resource == "*")))
        })
    });
    if overlap {
        errors.push(format!(
            "{path}.resources: Invalid value: {resources:?}: using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"
        ));
    }
    for (j, (text, gr)) in resources.iter().zip(&parsed).enumerate() {
        let message = if text.chars().any(char::is_uppercase) {
            "resource name should not contain capital letters"
        } else if text == "*" {
            "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"
        } else if matches!(
            text.as_str(),
            "apiserveripinfo" | "serviceipallocations" | "servicenodeportallocations"
        ) {
            "resources which do not have REST API/s cannot be encrypted"
        } else if gr.group == "events.k8s.io" {
            "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file"
        } else if gr.group == "extensions" {
            "'extensions' group has been removed and cannot be used for encryption"
        } else if gr.group == "*" && gr.resource != "*" {
            "encrypting the same resource across groups is not supported"
        } else {
            continue;
        };
        errors.push(format!(
            "{path}.resources[{j}]: Invalid value: {text:?}: {message}"
        ));
    }
}

/// One provider entry; `None` (with errors recorded) when it is invalid.
fn build_provider(raw: &RawProvider, path: &str, errors: &mut Vec<String>) -> Option<Provider> {
    let set = [
        raw.aesgcm.is_some(),
        raw.aescbc.is_some(),
        raw.secretbox.is_some(),
        raw.identity.is_some(),
        raw.kms.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if set == 0 {
        errors.push(format!("{path}: Invalid value: provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity"));
        return None;
    }
    if set > 1 {
        errors.push(format!("{path}: Invalid value: more than one provider specified in a single element, should split into different list elements"));
        return None;
    }
    if raw.kms.is_some() {
        errors.push(format!("{path}.kms: Unsupported value: kms providers (an external key management plugin) are not supported by this API server; use aesgcm, aescbc, secretbox or identity"));
        return None;
    }
    if raw.identity.is_some() {
        return Some(Provider::Identity);
    }
    let (name, keys, sizes): (&str, &RawKeys, &[usize]) = if let Some(k) = &raw.aesgcm {
        ("aesgcm", k, AES_KEY_SIZES)
    } else if let Some(k) = &raw.aescbc {
        ("aescbc", k, AES_KEY_SIZES)
    } else {
        ("secretbox", raw.secretbox.as_ref()?, SECRETBOX_KEY_SIZES)
    };
    let path = format!("{path}.{name}.keys");
    if keys.keys.is_empty() {
        errors.push(format!(
            "{path}: Required value: at least one keys is required"
        ));
        return None;
    }
    let before = errors.len();
    let mut built = Vec::new();
    for (k, key) in keys.keys.iter().enumerate() {
        let path = format!("{path}[{k}]");
        if key.name.is_empty() {
            errors.push(format!(
                "{path}.name: Required value: name is a mandatory field for a key"
            ));
        }
        if key.secret.is_empty() {
            errors.push(format!(
                "{path}.secret: Required value: secret is a mandatory field for a key"
            ));
            continue;
        }
        let Ok(secret) = base64::engine::general_purpose::STANDARD.decode(key.secret.trim()) else {
            errors.push(format!(
                "{path}.secret: Invalid value: \"REDACTED\": secrets must be base64 encoded"
            ));
            continue;
        };
        if !sizes.contains(&secret.len()) {
            errors.push(format!(
                "{path}.secret: Invalid value: \"REDACTED\": secret is not of the expected length, got {}, expected one of {sizes:?}",
                secret.len()
            ));
            continue;
        }
        let cipher = match name {
            "aesgcm" => Cipher::aes_gcm(&secret),
            "aescbc" => Cipher::aes_cbc(&secret),
            _ => Cipher::secretbox(&secret),
        };
        match cipher {
            Some(cipher) => built.push(NamedKey::new(key.name.clone(), cipher)),
            None => errors.push(format!(
                "{path}.secret: Invalid value: \"REDACTED\": unusable key"
            )),
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(match name {
        "aesgcm" => Provider::AesGcm(built),
        "aescbc" => Provider::AesCbc(built),
        _ => Provider::Secretbox(built),
    })
}
