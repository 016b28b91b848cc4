//! The harness of the end-to-end tests: an [`ApiServer`] over a
//! [`MemoryStorage`] on a loopback port of the test's own runtime (plain
//! HTTP, TLS with a self-signed certificate, or "secure": TLS from a test
//! CA that also verifies client certificates, so authentication and RBAC
//! are enforced), a kubeconfig for it in a temporary directory (more for
//! other users of a secure server), the real `kubectl` with hard
//! timeouts, kube-rs clients over TCP, a raw HTTP/1.1 client, and
//! deadline-bounded waits.
//!
//! Nothing here can hang a test: every process, request and wait is bounded.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use vcluster_apiserver::registry::ObjectAddress;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiError, ApiServer, ApiServerConfig, TlsConfig};

/// How long any single wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Hard limit of one `kubectl` process; it is killed after this.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(30);
/// The `--request-timeout` every `kubectl` call gets.
pub const KUBECTL_REQUEST_TIMEOUT: &str = "10s";
/// How often bounded polling loops look again.
pub const POLL: Duration = Duration::from_millis(20);

/// Where the real kubectl is: the first `kubectl` on `PATH`. Fails the
/// test with a clear message when there is none.
pub fn kubectl_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("kubectl");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "kubectl is not on PATH: the end-to-end tests drive the real kubectl binary \
         (v1.32, normally /usr/bin/kubectl); install it or add it to PATH (.ci/run checks for it)"
    );
}

/// TLS material of a server started with [`TestServer::start_tls`].
pub struct TlsMaterial {
    /// The self-signed certificate, PEM (also the CA clients trust).
    pub cert_pem: String,
    /// The same certificate, DER.
    pub cert_der: Vec<u8>,
}

/// A CA for a secure test server: its serving certificate and client
/// certificates for any user.
pub struct TestPki {
    /// The CA certificate, PEM: clients trust it and the server verifies
    /// client certificates with it.
    pub ca_pem: String,
    /// The same, DER.
    pub ca_der: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestPki {
    /// A fresh CA.
    pub fn new() -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "vcluster-rs test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            ca_pem: cert.pem(),
            ca_der: cert.der().to_vec(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A serving certificate for 127.0.0.1 and localhost and its key (PEM).
    pub fn server_cert(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("server key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "vcluster-rs test");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// A client certificate with CN `user` and an O per group, and its
    /// key (PEM).
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("client key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, user);
        for (i, group) in groups.iter().enumerate() {
            // rcgen keeps one value per attribute type: further O's go in
            // as the same OID (2.5.4.10) spelled as a custom type.
            let ty = if i == 0 {
                rcgen::DnType::OrganizationName
            } else {
                rcgen::DnType::CustomDnType(vec![2, 5, 4, 10])
            };
            params.distinguished_name.push(ty, *group);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("client certificate");
        (cert.pem(), key.serialize_pem())
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// The user of the default kubeconfig of a secure server.
pub const ADMIN: (&str, &[&str]) = ("admin", &["system:masters"]);

/// A server under test, its kubeconfig and its scratch directory.
pub struct TestServer {
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
    pub pki: Option<TestPki>,
    /// Scratch directory (kubeconfig, kubectl's cache, manifests).
    pub dir: TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

/// Options of [`TestServer::start_with`].
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

impl TestServer {
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
        let mut config = ApiServerConfig::new(Arc::new(storage.clone()));
        configure(&mut config);
        let server = ApiServer::start(config)
            .await
            .expect("start the API server");
        let pki = secure.then(TestPki::new);
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
    /// take as a credential. [`TestServer::client`] sends nothing at all.
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

    /// A `kubectl` command against this server: its kubeconfig, a private
    /// cache and home, a bounded request timeout, killed when dropped.
    pub fn kubectl_command(&self, args: &[&str], request_timeout: &str) -> Command {
        self.kubectl_command_with(&self.kubeconfig, args, request_timeout)
    }

    /// Like [`TestServer::kubectl_command`] with another kubeconfig (and a
    /// cache of its own, so users do not share discovery).
    pub fn kubectl_command_with(
        &self,
        kubeconfig: &Path,
        args: &[&str],
        request_timeout: &str,
    ) -> Command {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("create kubectl's home");
        let cache = match kubeconfig.file_stem() {
            Some(stem) if kubeconfig != self.kubeconfig => {
                format!("cache-{}", stem.to_string_lossy())
            }
            _ => "cache".to_owned(),
        };
        let mut command = Command::new(kubectl_path());
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join(cache).display()
            ))
            .arg(format!("--request-timeout={request_timeout}"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `kubectl args...`; the process is killed (and the test fails)
    /// if it does not finish within [`KUBECTL_TIMEOUT`].
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, args).await
    }

    /// Runs `kubectl args...` with another kubeconfig (bounded like
    /// [`TestServer::kubectl`]).
    pub async fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let child = self
            .kubectl_command_with(kubeconfig, args, KUBECTL_REQUEST_TIMEOUT)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start kubectl {args:?}: {e}"));
        match tokio::time::timeout(KUBECTL_TIMEOUT, child.wait_with_output()).await {
            Ok(output) => output.unwrap_or_else(|e| panic!("kubectl {args:?} failed: {e}")),
            // Dropping the future drops the child, which kills it.
            Err(_) => {
                panic!("kubectl {args:?} did not finish within {KUBECTL_TIMEOUT:?} and was killed")
            }
        }
    }

    /// Runs `kubectl args...`, requires success, returns its stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        self.kubectl_ok_as(&self.kubeconfig, args).await
    }

    /// Runs `kubectl args...` with another kubeconfig, requires failure,
    /// returns its stderr.
    pub async fn kubectl_err_as(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let output = self.kubectl_as(kubeconfig, args).await;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success(),
            "kubectl {args:?} with {} should have failed:\nstdout: {}\nstderr: {stderr}",
            kubeconfig.display(),
            String::from_utf8_lossy(&output.stdout),
        );
        stderr
    }

    /// Runs `kubectl args...` with another kubeconfig, requires success,
    /// returns its stdout.
    pub async fn kubectl_ok_as(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let output = self.kubectl_as(kubeconfig, args).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Runs `kubectl args...`, requires failure, returns its stderr.
    pub async fn kubectl_err(&self, args: &[&str]) -> String {
        let output = self.kubectl(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success(),
            "kubectl {args:?} should have failed:\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&output.stdout),
        );
        stderr
    }

    /// Starts a long-running `kubectl` (e.g. `get -w`) whose stdout lines
    /// are collected as they come; it is killed when the handle drops.
    pub fn kubectl_stream(&self, args: &[&str]) -> StreamingChild {
        let mut child = self
            .kubectl_command(args, "60s")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start kubectl {args:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().expect("lines lock").push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let err_sink = stderr.clone();
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text).await;
            err_sink.lock().expect("stderr lock").push_str(&text);
        });
        StreamingChild {
            child,
            lines,
            stderr,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        }
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

    /// Reads an object straight from the registry (the stored state).
    pub async fn stored(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let resource = self
            .server
            .registry()
            .catalog()
            .get(group, "v1", plural)
            .unwrap_or_else(|| panic!("{plural}.{group} is not served"));
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
        let resource = self
            .server
            .registry()
            .catalog()
            .get(group, "v1", plural)
            .unwrap_or_else(|| panic!("{plural}.{group} is not served"));
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

/// A `kubectl` that keeps running (such as `get -w`), with its output so far.
pub struct StreamingChild {
    /// The process (killed on drop).
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    args: Vec<String>,
}

impl StreamingChild {
    /// The stdout lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// Waits (bounded) until a printed line satisfies `check`.
    pub async fn wait_for_line(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| check(l)) {
                return line;
            }
            if Instant::now() > deadline {
                panic!(
                    "kubectl {:?} printed no line with {what} within {DEADLINE:?}; stdout: {:#?}; stderr: {}",
                    self.args,
                    self.lines(),
                    self.stderr.lock().expect("stderr lock")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Kills the process and returns everything it printed.
    pub async fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill().await;
        self.lines()
    }
}

/// Polls `check` until it yields a value, failing after [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {DEADLINE:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Bounds any future by [`DEADLINE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?}: {what}"))
}

/// The table printed by `kubectl get`: header cells and row cells.
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// Cells of each row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Splits kubectl's column output (cells separated by 2+ spaces or
    /// aligned at the header's column starts).
    pub fn parse(text: &str) -> Self {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header_line = lines.next().unwrap_or_default();
        let starts = column_starts(header_line);
        let cut = |line: &str| -> Vec<String> {
            starts
                .iter()
                .enumerate()
                .map(|(i, &start)| {
                    let end = starts.get(i + 1).copied().unwrap_or(line.len());
                    line.get(start.min(line.len())..end.min(line.len()))
                        .unwrap_or("")
                        .trim()
                        .to_owned()
                })
                .collect()
        };
        Self {
            header: cut(header_line),
            rows: lines.map(cut).collect(),
        }
    }

    /// The row whose first cell is `name`.
    pub fn row(&self, name: &str) -> &[String] {
        self.rows
            .iter()
            .find(|r| r.first().map(String::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no row {name:?} in table {:?}", self.rows))
    }

    /// The cell of `row` under column `title`.
    pub fn cell<'a>(&'a self, row: &'a [String], title: &str) -> &'a str {
        let index = self
            .header
            .iter()
            .position(|h| h == title)
            .unwrap_or_else(|| panic!("no column {title:?} in {:?}", self.header));
        row.get(index).map(String::as_str).unwrap_or("")
    }
}

fn column_starts(header: &str) -> Vec<usize> {
    let bytes = header.as_bytes();
    let mut starts = Vec::new();
    for i in 0..bytes.len() {
        let starts_word = bytes[i] != b' ' && (i == 0 || bytes[i - 1] == b' ');
        // Titles such as "NOMINATED NODE" contain one space: a column starts
        // after two or more spaces (or at the beginning).
        let after_gap = i == 0 || (i >= 2 && bytes[i - 1] == b' ' && bytes[i - 2] == b' ');
        if starts_word && after_gap {
            starts.push(i);
        }
    }
    starts
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding removed).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header named `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` over a fresh
/// loopback connection and reads the whole answer (bounded by [`DEADLINE`]).
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    within(&format!("{method} {path}"), async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        let chunked = headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && *v == "chunked");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !chunked {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("send head");
        // The server may answer (413) and close before reading a large
        // body: a failed body write is not an error, the answer is read.
        let _ = if chunked {
            write_chunked(&mut stream, body).await
        } else {
            stream.write_all(body).await
        };
        let mut raw = Vec::new();
        // A reset after the answer is fine: what arrived is parsed.
        let _ = stream.read_to_end(&mut raw).await;
        parse_response(&raw)
    })
    .await
}

async fn write_chunked(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    for chunk in body.chunks(64 * 1024) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.write_all(chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
    stream.write_all(b"0\r\n\r\n").await
}

/// Parses a complete HTTP/1.1 response (`Content-Length`, chunked, or
/// until close).
pub fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete HTTP response head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let is_chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if is_chunked {
        dechunk(rest).0
    } else {
        rest.to_vec()
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

/// Removes chunked framing; also says whether the final chunk was seen.
pub fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim().to_owned();
        let Ok(size) = usize::from_str_radix(&size_text, 16) else {
            return (out, false);
        };
        if size == 0 {
            return (out, true);
        }
        let start = line_end + 2;
        if data.len() < start + size {
            out.extend_from_slice(&data[start..]);
            return (out, false);
        }
        out.extend_from_slice(&data[start..start + size]);
        data = data.get(start + size + 2..).unwrap_or_default();
    }
}

/// The JSON lines of a watch body.
pub fn watch_lines(body: &[u8]) -> Vec<Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "watch line is not JSON ({e}): {}",
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

/// A minimal pod manifest as JSON.
pub fn pod_json(name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    })
}
