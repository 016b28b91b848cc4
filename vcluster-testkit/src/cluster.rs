//! Our own API server for a test: an [`ApiServer`] over a [`MemoryStorage`]
//! on a loopback port of the test's runtime (plain HTTP, TLS with a
//! self-signed certificate, or "secure": TLS from a [`TestCa`] that also
//! verifies client certificates, so authentication and RBAC are enforced),
//! a kubeconfig for it in a scratch folder (more for other users of a
//! secure server), and kube-rs clients over TCP. `kubectl` against it is in
//! [`crate::kubectl`], raw HTTP in [`crate::http`].
//!
//! Every crate's tests start the same server the same way, so a test of the
//! syncer and a test of the API server meet the same thing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::Value;
use tempfile::TempDir;
use vcluster_apiserver::registry::ObjectAddress;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiError, ApiServer, ApiServerConfig, TlsConfig};

use crate::http::{raw_request, RawResponse};
use crate::pki::TestCa;

/// TLS material of a server started with [`TestServer::start_tls`].
pub struct TlsMaterial {
    /// The self-signed certificate, PEM (also the CA clients trust).
    pub cert_pem: String,
    /// The same certificate, DER.
    pub cert_der: Vec<u8>,
}

/// The user of the default kubeconfig of a secure server.
pub const ADMIN: (&str, &[&str]) = ("admin", &["system:masters"]);

/// Our API server under test, its kubeconfig and its scratch directory;
/// shut down when dropped.
pub struct Cluster {
    /// The running server (for in-process reads of the stored state).
    pub server: ApiServer,
    /// The store under it.
    pub storage: MemoryStorage,
    /// The bound loopback address.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:port` or `https://127.0.0.1:port`.
    pub url: String,
    /// The kubeconfig written for `kubectl`.
    pub kubeconfig: PathBuf,
    /// TLS material when served over TLS.
    pub tls: Option<TlsMaterial>,
    /// The CA of a secure server (client certificates for more users).
    pub pki: Option<TestCa>,
    /// Scratch directory (kubeconfig, kubectl's cache, manifests).
    pub dir: TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

/// Options of [`Cluster::start_with`].
pub struct Options {
    /// The store (e.g. `MemoryStorage::with_history(small)`).
    pub storage: MemoryStorage,
    /// Serve TLS with a fresh self-signed certificate.
    pub tls: bool,
    /// Serve TLS from a fresh test CA that also verifies client
    /// certificates: authentication and RBAC are enforced, and the
    /// kubeconfig authenticates as [`ADMIN`] (`system:masters`).
    pub secure: bool,
    /// Adjusts the server configuration before start.
    pub configure: Box<dyn FnOnce(&mut ApiServerConfig) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            storage: MemoryStorage::new(),
            tls: false,
            secure: false,
            configure: Box::new(|_| {}),
        }
    }
}

fn self_signed() -> (TlsMaterial, TlsConfig) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("generate a self-signed certificate");
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let tls = TlsConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())
        .expect("the server accepts the generated certificate");
    (
        TlsMaterial {
            cert_der: certified.cert.der().to_vec(),
            cert_pem,
        },
        tls,
    )
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `user:` body of a kubeconfig with a client certificate.
fn cert_user(cert_pem: &str, key_pem: &str) -> String {
    format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        base64(cert_pem.as_bytes()),
        base64(key_pem.as_bytes())
    )
}

/// Writes a one-context kubeconfig for `url` (trusting the TLS CA, if
/// any) with the given `user:` body.
fn write_kubeconfig(path: &Path, url: &str, tls: Option<&TlsMaterial>, user: &str) {
    let cluster = match tls {
        Some(tls) => format!(
            "    server: {url}\n    certificate-authority-data: {}\n",
            base64(tls.cert_pem.as_bytes())
        ),
        None => format!("    server: {url}\n"),
    };
    let document = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n{cluster}\
         users:\n- name: test\n  user:\n{user}\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\n\
         current-context: test\n"
    );
    std::fs::write(path, document).expect("write the kubeconfig");
}

impl Cluster {
    /// A plain-HTTP server with default settings.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// A TLS server with a self-signed certificate for 127.0.0.1.
    pub async fn start_tls() -> Self {
        Self::start_with(Options {
            tls: true,
            ..Options::default()
        })
        .await
    }

    /// A secure server (see [`Options::secure`]).
    pub async fn start_secure() -> Self {
        Self::start_with(Options {
            secure: true,
            ..Options::default()
        })
        .await
    }

    /// A server with the given options, listening on 127.0.0.1:0.
    pub async fn start_with(options: Options) -> Self {
        let Options {
            storage,
            tls,
            secure,
            configure,
        } = options;
        Self::launch(storage, tls, secure, configure).await
    }

    /// A plain-HTTP server in memory whose configuration `configure`
    /// adjusts before start (the closure may borrow: unlike
    /// [`Options::configure`] it need not be `'static`).
    pub async fn start_configured(configure: impl FnOnce(&mut ApiServerConfig)) -> Self {
        Self::launch(MemoryStorage::new(), false, false, configure).await
    }

    async fn launch(
        storage: MemoryStorage,
        tls: bool,
        secure: bool,
        configure: impl FnOnce(&mut ApiServerConfig),
    ) -> Self {
        let mut config = ApiServerConfig::new(Arc::new(storage.clone()));
        configure(&mut config);
        let server = ApiServer::start(config)
            .await
            .expect("start the API server");
        let pki = secure.then(TestCa::new);
        let (tls, tls_config) = if let Some(pki) = &pki {
            let (cert, key) = pki.server_cert();
            let config = TlsConfig::from_pem_with_client_ca(
                cert.as_bytes(),
                key.as_bytes(),
                pki.ca_pem.as_bytes(),
            )
            .expect("the server accepts the test CA's certificates");
            let material = TlsMaterial {
                cert_pem: pki.ca_pem.clone(),
                cert_der: pki.ca_der.clone(),
            };
            (Some(material), Some(config))
        } else if tls {
            let (material, config) = self_signed();
            (Some(material), Some(config))
        } else {
            (None, None)
        };
        let addr = server
            .spawn("127.0.0.1:0".parse().expect("loopback address"), tls_config)
            .await
            .expect("bind a loopback port");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let user = match &pki {
            Some(pki) => {
                let (cert, key) = pki.client_cert(ADMIN.0, ADMIN.1);
                cert_user(&cert, &key)
            }
            None => "    token: e2e-test-token\n".to_owned(),
        };
        write_kubeconfig(&kubeconfig, &url, tls.as_ref(), &user);
        Self {
            server,
            storage,
            addr,
            url,
            kubeconfig,
            tls,
            pki,
            dir,
        }
    }

    /// Writes a kubeconfig for this server named `name` in the scratch
    /// directory, with the given YAML `user:` body (4-space indented).
    fn kubeconfig_with_user(&self, name: &str, user: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        write_kubeconfig(&path, &self.url, self.tls.as_ref(), user);
        path
    }

    /// A kubeconfig authenticating with a client certificate of the test
    /// CA for `user` in `groups` (secure servers only).
    pub fn cert_kubeconfig(&self, name: &str, user: &str, groups: &[&str]) -> PathBuf {
        let pki = self
            .pki
            .as_ref()
            .expect("client certificates need a secure server");
        let (cert, key) = pki.client_cert(user, groups);
        self.kubeconfig_with_user(name, &cert_user(&cert, &key))
    }

    /// A kubeconfig authenticating with a bearer token.
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> PathBuf {
        self.kubeconfig_with_user(name, &format!("    token: {token}\n"))
    }

    /// A kubeconfig with no usable credentials. kubectl prompts for a user
    /// name and password (and fails without a terminal) when a TLS
    /// kubeconfig names no credential at all, so this one names a user
    /// without a password: kubectl then sends a Basic `Authorization`
    /// header, which the server (like kube-apiserver since 1.19) does not
    /// take as a credential. [`Cluster::client`] sends nothing at all.
    pub fn anonymous_kubeconfig(&self) -> PathBuf {
        self.kubeconfig_with_user("anonymous", "    username: anonymous\n")
    }

    /// A kube-rs client over TCP with the identity of `kubeconfig`.
    pub async fn client_from(&self, kubeconfig: &Path) -> kube::Client {
        let file = kube::config::Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig");
        let mut config =
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .expect("a kube config from the kubeconfig");
        config.read_timeout = None;
        config.connect_timeout = Some(Duration::from_secs(5));
        kube::Client::try_from(config).expect("build a kube client")
    }

    /// Writes a file into the scratch directory; returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// A kube-rs client over real TCP (and TLS, trusting the test
    /// certificate), not the in-process one.
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().expect("server URL"));
        if let Some(tls) = &self.tls {
            config.root_cert = Some(vec![tls.cert_der.clone()]);
        }
        config.read_timeout = None;
        config.connect_timeout = Some(Duration::from_secs(5));
        kube::Client::try_from(config).expect("build a kube client")
    }

    /// The served `v1` resource `plural` of `group`; fails the test if the
    /// server does not serve it.
    fn served(
        &self,
        group: &str,
        plural: &str,
    ) -> Arc<vcluster_apiserver::resources::ResourceInfo> {
        self.server
            .registry()
            .catalog()
            .get(group, "v1", plural)
            .unwrap_or_else(|| panic!("{plural}.{group} is not served"))
    }

    /// Reads an object straight from the registry (the stored state).
    pub async fn stored(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let resource = self.served(group, plural);
        self.server
            .registry()
            .get(&ObjectAddress {
                resource,
                namespace: namespace.map(str::to_owned),
                name: name.to_owned(),
            })
            .await
    }

    /// The names stored for a resource (in one namespace, or all).
    pub async fn stored_names(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<String> {
        let resource = self.served(group, plural);
        let page = self
            .server
            .registry()
            .list(&resource, namespace, &Default::default())
            .await
            .expect("list the stored objects");
        page.items
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// An API of namespaced kind `K` in `namespace`, over a fresh TCP
    /// client.
    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client(), namespace)
    }

    /// An API of a cluster-scoped kind (nodes, storage classes).
    pub fn cluster_api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>,
        K::DynamicType: Default,
    {
        Api::all(self.client())
    }

    /// Creates namespace `name` unless it exists.
    pub async fn create_namespace(&self, name: &str) {
        create_namespace(&self.client(), name).await;
    }

    /// One raw HTTP/1.1 request (see [`raw_request`]).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        assert!(self.tls.is_none(), "raw requests are plain HTTP");
        raw_request(self.addr, method, path, headers, body).await
    }
}

/// Creates namespace `name` through `client`; one that exists already is
/// fine (several scenarios share a host).
pub async fn create_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.to_owned());
    match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => panic!("creating namespace {name}: {err}"),
    }
}
