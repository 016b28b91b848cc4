//! What a pod sees of its cluster, for a program run outside one: the
//! `KUBERNETES_SERVICE_HOST`/`_PORT` variables and the service account
//! directory (`token`, `ca.crt`, `namespace`), with a real token of a real
//! service account issued by the host (TokenRequest). A control plane run
//! this way has exactly the rights its pod would have.

use std::path::Path;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

use crate::real_host::RealHost;

/// A pod's in-cluster environment, in a temporary directory (removed on
/// drop).
pub struct InClusterEnv {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl InClusterEnv {
    /// The environment of a pod running as `account` in `namespace` of
    /// `host` (the account must exist). Panics, saying why, on failure.
    pub async fn for_service_account(host: &RealHost, namespace: &str, account: &str) -> Self {
        let accounts: Api<ServiceAccount> = Api::namespaced(host.client(), namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let token = accounts
            .create_token_request(account, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("a token for {namespace}/{account}: {e}"))
            .status
            .map(|s| s.token)
            .unwrap_or_else(|| panic!("the token request for {namespace}/{account} has no status"));
        let dir = tempfile::tempdir().expect("a service account directory");
        let write = |name: &str, content: &[u8]| {
            std::fs::write(dir.path().join(name), content)
                .unwrap_or_else(|e| panic!("writing {name}: {e}"))
        };
        write("token", token.as_bytes());
        write(
            "ca.crt",
            &std::fs::read(&host.pki().ca_cert).expect("the host's CA certificate"),
        );
        write("namespace", namespace.as_bytes());
        let authority = host.url().trim_start_matches("https://");
        let (address, port) = authority
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("the host URL {} has no port", host.url()));
        let vars = vec![
            ("KUBERNETES_SERVICE_HOST".to_owned(), address.to_owned()),
            ("KUBERNETES_SERVICE_PORT".to_owned(), port.to_owned()),
        ];
        Self { dir, vars }
    }

    /// The service account directory (`token`, `ca.crt`, `namespace`).
    pub fn service_account_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment variables a pod gets.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }
}
