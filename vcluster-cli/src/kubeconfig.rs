//! The user's own kubeconfig file, as `vcluster connect`, `disconnect` and
//! `delete` edit it: vCluster's context `vcluster_NAME_NAMESPACE_PARENT`
//! merged in and made current, the parent context restored on disconnect.
//!
//! The file is edited as a YAML tree, so what this module does not know
//! (extensions, preferences, other tools' fields) is kept as it was.
//! Kubernetes names hold no `_`, so a context name tells its virtual
//! cluster, namespace and parent context apart.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::error::CliError;

/// What a virtual cluster's context names start with.
pub const CONTEXT_PREFIX: &str = "vcluster_";

/// vCluster's name for the context of virtual cluster `name` in host
/// `namespace`, reached from the host context `parent`.
pub fn context_name(name: &str, namespace: &str, parent: &str) -> String {
    format!("{CONTEXT_PREFIX}{name}_{namespace}_{parent}")
}

/// The (virtual cluster, namespace, parent context) of a context that
/// `vcluster connect` made; `None` for any other context.
pub fn parse_context_name(context: &str) -> Option<(&str, &str, &str)> {
    let rest = context.strip_prefix(CONTEXT_PREFIX)?;
    let mut parts = rest.splitn(3, '_');
    let (name, namespace, parent) = (parts.next()?, parts.next()?, parts.next()?);
    (!name.is_empty() && !namespace.is_empty() && !parent.is_empty())
        .then_some((name, namespace, parent))
}

/// The file a kubeconfig change goes to: `explicit` (`--kubeconfig`), else
/// the first file of `$KUBECONFIG`, else `~/.kube/config`, as kubectl
/// writes new entries.
pub fn file_to_edit(explicit: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .as_ref()
        .and_then(|list| std::env::split_paths(list).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".kube").join("config"))
        .ok_or_else(|| CliError::Kubeconfig {
            source_name: "$HOME".into(),
            message: "not set, so there is no ~/.kube/config; pass --kubeconfig".into(),
        })
}

/// A kubeconfig file held as a YAML tree.
#[derive(Clone, Debug, PartialEq)]
pub struct KubeconfigFile {
    path: PathBuf,
    tree: Value,
}

impl KubeconfigFile {
    /// Reads `path`; a missing file is an empty kubeconfig.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let tree = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => empty(),
            Ok(bytes) => serde_yaml::from_slice(&bytes).map_err(|e| CliError::Kubeconfig {
                source_name: path.display().to_string(),
                message: format!("not a kubeconfig: {e}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => empty(),
            Err(source) => {
                return Err(CliError::Io {
                    what: format!("reading {}", path.display()),
                    source,
                })
            }
        };
        if !tree.is_mapping() {
            return Err(CliError::Kubeconfig {
                source_name: path.display().to_string(),
                message: "not a kubeconfig: not a mapping".into(),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            tree,
        })
    }

    /// Where it is read from and saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its `current-context`, if any.
    pub fn current_context(&self) -> Option<&str> {
        self.tree
            .get("current-context")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
    }

    /// The names of its contexts.
    pub fn context_names(&self) -> Vec<String> {
        entries(&self.tree, "contexts")
            .filter_map(entry_name)
            .map(str::to_owned)
            .collect()
    }

    /// Adds (or replaces) the first cluster, user and context of `other`
    /// under the one name `name`, and makes that context current.
    pub fn merge_as_current(&mut self, other: &Value, name: &str) -> Result<(), CliError> {
        for list in ["clusters", "users", "contexts"] {
            let mut entry = other
                .get(list)
                .and_then(Value::as_sequence)
                .and_then(|s| s.first())
                .cloned()
                .ok_or_else(|| CliError::Kubeconfig {
                    source_name: format!("the virtual cluster's kubeconfig ({list})"),
                    message: format!("has no {list}"),
                })?;
            set(&mut entry, "name", name.into());
            if list == "contexts" {
                if let Some(context) = entry.get_mut("context") {
                    set(context, "cluster", name.into());
                    set(context, "user", name.into());
                }
            }
            if let Some(sequence) = sequence_mut(&mut self.tree, list) {
                sequence.retain(|e| entry_name(e) != Some(name));
                sequence.push(entry);
            }
        }
        set(&mut self.tree, "current-context", name.into());
        Ok(())
    }

    /// Makes `context` current.
    pub fn use_context(&mut self, context: &str) {
        set(&mut self.tree, "current-context", context.into());
    }

    /// Removes every context of virtual cluster `name` in `namespace`, with
    /// the cluster and user of the same name; when one was current, its
    /// parent becomes current again. Returns the removed names.
    pub fn remove_virtual_cluster(&mut self, name: &str, namespace: &str) -> Vec<String> {
        let ours = |context: &str| {
            parse_context_name(context).is_some_and(|(n, ns, _)| n == name && ns == namespace)
        };
        let removed: Vec<String> = self
            .context_names()
            .into_iter()
            .filter(|c| ours(c))
            .collect();
        if removed.is_empty() {
            return removed;
        }
        for list in ["clusters", "users", "contexts"] {
            if let Some(sequence) = sequence_mut(&mut self.tree, list) {
                sequence.retain(|e| entry_name(e).is_none_or(|n| !removed.iter().any(|r| r == n)));
            }
        }
        if let Some(current) = self.current_context().map(str::to_owned) {
            if ours(&current) {
                let parent = parse_context_name(&current).map(|(_, _, p)| p.to_owned());
                self.use_context(parent.as_deref().unwrap_or_default());
            }
        }
        removed
    }

    /// Writes it back, readable by its owner only (it holds keys).
    pub fn save(&self) -> Result<(), CliError> {
        let yaml = serde_yaml::to_string(&self.tree).map_err(|e| CliError::Kubeconfig {
            source_name: self.path.display().to_string(),
            message: format!("cannot be written: {e}"),
        })?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
                what: format!("creating {}", dir.display()),
                source,
            })?;
        }
        vcluster_apiserver::state_files::write_private_file(&self.path, yaml.as_bytes()).map_err(
            |source| CliError::Io {
                what: format!("writing {}", self.path.display()),
                source,
            },
        )
    }
}

fn empty() -> Value {
    let mut tree = Mapping::new();
    tree.insert("apiVersion".into(), "v1".into());
    tree.insert("kind".into(), "Config".into());
    Value::Mapping(tree)
}

fn entries<'a>(tree: &'a Value, list: &str) -> impl Iterator<Item = &'a Value> {
    tree.get(list)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}

fn entry_name(entry: &Value) -> Option<&str> {
    entry.get("name").and_then(Value::as_str)
}

fn set(tree: &mut Value, key: &str, value: Value) {
    if let Some(map) = tree.as_mapping_mut() {
        map.insert(key.into(), value);
    }
}

/// The list `list` of the tree, made a list when missing or null (`None`
/// only if the tree is not a mapping, which [`KubeconfigFile::load`]
/// refuses).
fn sequence_mut<'a>(tree: &'a mut Value, list: &str) -> Option<&'a mut Vec<Value>> {
    let slot = tree
        .as_mapping_mut()?
        .entry(list.into())
        .or_insert(Value::Null);
    if !slot.is_sequence() {
        *slot = Value::Sequence(Vec::new());
    }
    slot.as_sequence_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "apiVersion: v1
kind: Config
preferences: {colors: true}
clusters:
- name: host
  cluster: {server: 'https://127.0.0.1:6443'}
users:
- name: admin
  user: {token: abc}
contexts:
- name: host
  context: {cluster: host, user: admin, namespace: team-a}
current-context: host
";

    const VIRTUAL: &str = "apiVersion: v1
kind: Config
clusters:
- name: my-vc
  cluster: {server: 'https://localhost:8443', certificate-authority-data: Q0E=}
users:
- name: my-vc
  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
contexts:
- name: my-vc
  context: {cluster: my-vc, user: my-vc}
current-context: my-vc
";

    fn file(text: &str) -> KubeconfigFile {
        KubeconfigFile {
            path: PathBuf::from("/nonexistent/config"),
            tree: serde_yaml::from_str(text).expect("yaml"),
        }
    }

    #[test]
    fn context_names_round_trip_with_underscores_only_in_the_parent() {
        let name = context_name("my-vc", "team-a", "kind_dev");
        assert_eq!(name, "vcluster_my-vc_team-a_kind_dev");
        assert_eq!(
            parse_context_name(&name),
            Some(("my-vc", "team-a", "kind_dev"))
        );
        assert_eq!(parse_context_name("host"), None);
        assert_eq!(parse_context_name("vcluster_my-vc_team-a"), None);
    }

    #[test]
    fn connect_merges_one_context_and_keeps_the_rest_of_the_file() {
        let mut config = file(HOST);
        let virtual_config: Value = serde_yaml::from_str(VIRTUAL).expect("yaml");
        let name = context_name("my-vc", "team-a", "host");
        config
            .merge_as_current(&virtual_config, &name)
            .expect("merge");
        // Twice: replaced, not duplicated.
        config
            .merge_as_current(&virtual_config, &name)
            .expect("merge");
        assert_eq!(config.current_context(), Some(name.as_str()));
        assert_eq!(config.context_names(), ["host", name.as_str()]);
        let context = entries(&config.tree, "contexts").last().expect("context");
        assert_eq!(context["context"]["cluster"], Value::from(name.as_str()));
        assert_eq!(context["context"]["user"], Value::from(name.as_str()));
        let cluster = entries(&config.tree, "clusters").last().expect("cluster");
        assert_eq!(
            cluster["cluster"]["server"],
            Value::from("https://localhost:8443")
        );
        assert_eq!(config.tree["preferences"]["colors"], Value::from(true));
        assert_eq!(entries(&config.tree, "users").count(), 2);
    }

    #[test]
    fn removing_a_virtual_cluster_switches_back_to_its_parent() {
        let mut config = file(HOST);
        let virtual_config: Value = serde_yaml::from_str(VIRTUAL).expect("yaml");
        let ours = context_name("my-vc", "team-a", "host");
        let other = context_name("my-vc", "team-b", "host");
        config
            .merge_as_current(&virtual_config, &other)
            .expect("merge");
        config
            .merge_as_current(&virtual_config, &ours)
            .expect("merge");
        assert_eq!(config.remove_virtual_cluster("my-vc", "team-a"), [ours]);
        assert_eq!(config.current_context(), Some("host"));
        assert_eq!(config.context_names(), ["host", other.as_str()]);
        assert_eq!(entries(&config.tree, "clusters").count(), 2);
        assert!(config.remove_virtual_cluster("my-vc", "team-a").is_empty());
    }

    #[test]
    fn a_missing_file_is_an_empty_kubeconfig_and_a_broken_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("config");
        let mut config = KubeconfigFile::load(&path).expect("missing is empty");
        assert_eq!(config.current_context(), None);
        let virtual_config: Value = serde_yaml::from_str(VIRTUAL).expect("yaml");
        config
            .merge_as_current(&virtual_config, "vcluster_my-vc_team-a_host")
            .expect("merge");
        config.save().expect("save");
        let again = KubeconfigFile::load(&path).expect("load");
        assert_eq!(again, config);
        std::fs::write(&path, "- a list").expect("write");
        let err = KubeconfigFile::load(&path).expect_err("not a mapping");
        assert!(err.to_string().contains("not a kubeconfig"), "{err}");
    }
}
