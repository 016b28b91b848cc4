//! A simulated container's filesystem: what its configMap, secret and
//! projected volumes hold, at the paths it mounts them, plus the few
//! files every container has (`/etc/hostname`) and whatever `kubectl cp`
//! or a redirect writes later. It lives in memory, one per container, for
//! as long as the node runs.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use serde_json::Value;

/// Files by absolute path, and the directories that exist besides the
/// files' parents.
#[derive(Clone, Debug, Default)]
pub(crate) struct Files {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeSet<String>,
}

/// `path` made absolute (relative to `/`) and without `.` or `..` parts.
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Files {
    /// The file at `path`.
    pub(crate) fn read(&self, path: &str) -> Option<&[u8]> {
        self.files.get(&normalize(path)).map(Vec::as_slice)
    }

    /// Writes (or appends to) a file, creating its directories.
    pub(crate) fn write(&mut self, path: &str, data: &[u8], append: bool) {
        let path = normalize(path);
        let entry = self.files.entry(path).or_default();
        if !append {
            entry.clear();
        }
        entry.extend_from_slice(data);
    }

    /// Makes a directory.
    pub(crate) fn mkdir(&mut self, path: &str) {
        self.dirs.insert(normalize(path));
    }

    /// Whether `path` is a directory: made so, or the parent of a file.
    pub(crate) fn is_dir(&self, path: &str) -> bool {
        let path = normalize(path);
        if path == "/" || self.dirs.contains(&path) {
            return true;
        }
        let prefix = format!("{path}/");
        self.files.keys().any(|k| k.starts_with(&prefix))
            || self.dirs.iter().any(|d| d.starts_with(&prefix))
    }

    /// Whether `path` is a file.
    pub(crate) fn is_file(&self, path: &str) -> bool {
        self.files.contains_key(&normalize(path))
    }

    /// Removes a file or a whole tree; whether anything was there.
    pub(crate) fn remove(&mut self, path: &str) -> bool {
        let path = normalize(path);
        let prefix = format!("{path}/");
        let before = self.files.len() + self.dirs.len();
        self.files
            .retain(|k, _| *k != path && !k.starts_with(&prefix));
        self.dirs.retain(|k| *k != path && !k.starts_with(&prefix));
        before != self.files.len() + self.dirs.len()
    }

    /// The names directly inside directory `path`, sorted.
    pub(crate) fn list(&self, path: &str) -> Vec<String> {
        let path = normalize(path);
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        let mut names = BTreeSet::new();
        for key in self.files.keys().chain(self.dirs.iter()) {
            if let Some(rest) = key.strip_prefix(&prefix) {
                if let Some(first) = rest.split('/').next().filter(|s| !s.is_empty()) {
                    names.insert(first.to_owned());
                }
            }
        }
        names.into_iter().collect()
    }

    /// Every file at or under `path`, with its content.
    pub(crate) fn tree(&self, path: &str) -> Vec<(String, Vec<u8>)> {
        let path = normalize(path);
        let prefix = format!("{path}/");
        self.files
            .iter()
            .filter(|(k, _)| **k == path || k.starts_with(&prefix) || path == "/")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The files a container starts with: its mounted configMap, secret and
/// projected volumes (read from the cluster, as a kubelet would), and
/// `/etc/hostname`.
pub(crate) async fn seed(client: &kube::Client, pod: &Value, container: &str) -> Files {
    let mut files = Files::default();
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let hostname = pod
        .pointer("/spec/hostname")
        .and_then(Value::as_str)
        .unwrap_or(pod_name);
    files.write("/etc/hostname", format!("{hostname}\n").as_bytes(), false);
    files.mkdir("/tmp");
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mounts = containers(pod)
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .and_then(|c| c.get("volumeMounts"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for mount in &mounts {
        let (Some(name), Some(path)) = (
            mount.get("name").and_then(Value::as_str),
            mount.get("mountPath").and_then(Value::as_str),
        ) else {
            continue;
        };
        let sub_path = mount.get("subPath").and_then(Value::as_str);
        let Some(volume) = volumes
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
        else {
            continue;
        };
        let mut content = BTreeMap::new();
        for (kind, source) in volume_sources(volume) {
            content.extend(source_files(client, namespace, kind, source).await);
        }
        files.mkdir(path);
        match sub_path {
            Some(sub) => {
                if let Some(data) = content.get(sub) {
                    files.write(path, data, false);
                }
            }
            None => {
                for (file, data) in content {
                    files.write(&format!("{path}/{file}"), &data, false);
                }
            }
        }
    }
    files
}

/// All containers of a pod (regular, init, ephemeral).
pub(crate) fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .filter_map(|list| pod.pointer(&format!("/spec/{list}")))
        .filter_map(Value::as_array)
        .flatten()
}

/// The configMap and secret sources of a volume, projected ones included.
fn volume_sources(volume: &Value) -> Vec<(&'static str, &Value)> {
    let mut sources = Vec::new();
    for kind in ["configMap", "secret"] {
        if let Some(source) = volume.get(kind) {
            sources.push((kind, source));
        }
    }
    if let Some(projected) = volume
        .pointer("/projected/sources")
        .and_then(Value::as_array)
    {
        for source in projected {
            for kind in ["configMap", "secret"] {
                if let Some(inner) = source.get(kind) {
                    sources.push((kind, inner));
                }
            }
        }
    }
    sources
}

/// The files one source puts in its volume: every key, or its `items`.
async fn source_files(
    client: &kube::Client,
    namespace: &str,
    kind: &str,
    source: &Value,
) -> BTreeMap<String, Vec<u8>> {
    let name = source
        .get("name")
        .or_else(|| source.get("secretName"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let data: BTreeMap<String, Vec<u8>> = if kind == "configMap" {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(map)) => {
                let mut out: BTreeMap<String, Vec<u8>> = map
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                out.extend(
                    map.binary_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
                out
            }
            _ => BTreeMap::new(),
        }
    } else {
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(secret)) => secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .chain(
                    secret
                        .string_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes())),
                )
                .collect(),
            _ => BTreeMap::new(),
        }
    };
    match source.get("items").and_then(Value::as_array) {
        Some(items) => items
            .iter()
            .filter_map(|item| {
                let key = item.get("key")?.as_str()?;
                let path = item.get("path")?.as_str()?;
                Some((path.to_owned(), data.get(key)?.clone()))
            })
            .collect(),
        None => data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_follow_from_files() {
        let mut files = Files::default();
        files.write("/etc/config/app.yaml", b"a: 1", false);
        files.write("etc/config/../config/other", b"x", false);
        files.write("/etc/config/other", b"y", true);
        assert!(files.is_dir("/etc") && files.is_dir("/etc/config/"));
        assert_eq!(files.list("/etc/config"), ["app.yaml", "other"]);
        assert_eq!(files.read("/etc/config/other"), Some(&b"xy"[..]));
        assert!(files.remove("/etc/config"));
        assert!(!files.is_dir("/etc/config"));
    }
}
