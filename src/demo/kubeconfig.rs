//! Writing kubeconfig files that kubectl and every client library read.

use std::path::Path;

use base64::Engine as _;
use serde_json::json;
use vcluster_apiserver::state_files;

use super::tls::Certificates;

/// Writes a kubeconfig for `server` with the admin client certificate
/// (or, for plain HTTP, no credentials), as context `name`.
pub fn write(
    path: &Path,
    name: &str,
    server: &str,
    certs: &Certificates,
    insecure_http: bool,
) -> std::io::Result<()> {
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
    let mut cluster = json!({"server": server});
    let mut user = json!({});
    if !insecure_http {
        cluster["certificate-authority-data"] = json!(b64(&certs.ca_cert));
        user = json!({
            "client-certificate-data": b64(&certs.admin_cert),
            "client-key-data": b64(&certs.admin_key),
        });
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": format!("{name}-admin"), "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": format!("{name}-admin"), "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    });
    let yaml = serde_yaml::to_string(&config).map_err(std::io::Error::other)?;
    // Owner-only: it holds the admin key.
    state_files::write_private_file(path, yaml.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_kubeconfigs_load_in_kube_rs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = Certificates::generate(&[]).expect("certs");
        let path = dir.path().join("kubeconfig");
        write(&path, "demo", "https://127.0.0.1:6443", &certs, false).expect("write");
        let config = kube::config::Kubeconfig::read_from(&path).expect("kube-rs reads it");
        assert_eq!(config.current_context.as_deref(), Some("demo"));
        assert_eq!(
            config.clusters[0]
                .cluster
                .as_ref()
                .and_then(|c| c.server.clone())
                .as_deref(),
            Some("https://127.0.0.1:6443")
        );
    }
}
