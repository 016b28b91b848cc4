//! Putting it together: an [`ApiServer`] over a [`Storage`], served on a
//! TCP listener with or without TLS, or called in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::allocator::{AllocationError, DEFAULT_NODE_PORTS, DEFAULT_SERVICE_CIDR};
use crate::auth::{Auth, AuthConfig, ConnectionAuth, InProcessUser, KeyError, UserInfo};
use crate::error::ApiError;
use crate::http::{router, ApiState, HttpOptions};
use crate::registry::{GarbageCollectorOptions, Registry, ServiceNetwork};
use crate::resources::Catalog;
use crate::storage::{EncryptedStorage, EncryptionConfig, Storage, StorageError};
use crate::watch_cache::{WatchHub, WatchLimits};

/// How long a client may take to send its request headers or finish TLS.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// hyper's smallest HTTP/1 read buffer (it refuses anything smaller).
const MIN_HEADER_BYTES: usize = 8192;

/// Why a server could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store failed while starting.
    #[error("storage failed while starting the API server: {0}")]
    Storage(#[from] StorageError),
    /// The service network settings are wrong.
    #[error("invalid service network: {0}")]
    ServiceNetwork(#[from] AllocationError),
    /// Creating the system namespaces or the `kubernetes` service failed.
    #[error("bootstrapping the cluster's built-in objects failed: {0}")]
    Bootstrap(ApiError),
    /// The TLS certificate or key is unusable.
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
    /// The service-account signing key is unusable.
    #[error("authentication setup failed: {0}")]
    Auth(#[from] KeyError),
    /// The listener failed.
    #[error("listener error on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Everything an API server is made of, with sane defaults.
#[derive(Clone)]
pub struct ApiServerConfig {
    /// Where objects live.
    pub storage: Arc<dyn Storage>,
    /// The service network (default `10.96.0.0/12`).
    pub service_cidr: String,
    /// Extra ranges from which explicitly requested service IPs are
    /// accepted but never handed out; a virtual cluster lists the host's
    /// service range here so the syncer can give virtual services the
    /// addresses the host assigned.
    pub extra_service_cidrs: Vec<String>,
    /// The node port range (default 30000-32767).
    pub node_ports: std::ops::RangeInclusive<u16>,
    /// Watch cache limits.
    pub watch: WatchLimits,
    /// HTTP settings.
    pub http: HttpOptions,
    /// The port the `kubernetes` service points at.
    pub advertised_port: u16,
    /// The garbage collector (owner references, foreground/orphan
    /// deletion, emptying namespaces and CRDs being deleted); `None` turns
    /// it off, and then namespaces and CRDs being deleted stay
    /// `Terminating` and owned objects stay behind.
    pub garbage_collector: Option<GarbageCollectorOptions>,
    /// Authentication and authorization. The default
    /// ([`crate::auth::AuthMode::Auto`]) enforces them on TLS listeners that
    /// verify client certificates ([`TlsConfig::from_pem_with_client_ca`])
    /// and not on plain HTTP nor the bare in-process [`ApiServer::router`];
    /// see `docs/security.md`.
    pub auth: AuthConfig,
    /// Where container logs come from (`kubectl logs`); `None`: requests
    /// get 503 ([`crate::logs`]).
    pub pod_logs: Option<Arc<dyn crate::logs::PodLogs>>,
    /// What runs `kubectl exec`, `attach` and `port-forward`
    /// ([`vcluster_streams::ContainerStreams`]): a proxy to host pods, a
    /// simulated node. `None`: those requests get 503.
    pub container_streams: Option<Arc<dyn vcluster_streams::ContainerStreams>>,
    /// The control-plane parts `componentstatuses` reports besides the
    /// storage (`etcd-0`), which the server checks itself. By default the
    /// scheduler and controller manager, reported unhealthy (this server
    /// runs neither); an embedder that runs them says so here.
    pub components: Vec<crate::health::Component>,
    /// Extra metrics served on `/metrics` after the server's own
    /// ([`crate::metrics`]).
    pub metrics: Vec<crate::metrics::MetricsSource>,
    /// Where a new Service's cluster IP and node ports come from before the
    /// server's own ranges: a virtual cluster asks its host (the syncer's
    /// `HostServiceAddresses`), so a service is created once with the
    /// addresses that work. The host's range must be among
    /// `extra_service_cidrs`. `None`: the server allocates.
    pub service_addresses:
        Option<Arc<dyn vcluster_core::service_addresses::ServiceAddressProvider>>,
    /// Encryption at rest (kube-apiserver's `--encryption-provider-config`):
    /// values of the configured resources are encrypted before they reach
    /// `storage`. `None`: stored as they are. See `docs/security.md`.
    pub encryption: Option<EncryptionConfig>,
    /// The audit log (kube-apiserver's `--audit-policy-file` and
    /// `--audit-log-path`); `None`, the default: nothing is audited.
    pub audit: Option<crate::audit::AuditConfig>,
    /// Where the services admission webhooks name are
    /// (`clientConfig.service`); `None`, the default: a ready endpoint of
    /// the virtual service, else its cluster IP
    /// ([`crate::registry::admission::webhook::EndpointsResolver`]).
    pub webhook_services: Option<Arc<dyn crate::registry::admission::webhook::ServiceResolver>>,
}

impl ApiServerConfig {
    /// Defaults around a store.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            service_cidr: DEFAULT_SERVICE_CIDR.to_owned(),
            extra_service_cidrs: Vec::new(),
            node_ports: DEFAULT_NODE_PORTS,
            watch: WatchLimits::default(),
            http: HttpOptions::default(),
            advertised_port: 6443,
            garbage_collector: Some(GarbageCollectorOptions::default()),
            auth: AuthConfig::default(),
            pod_logs: None,
            container_streams: None,
            components: crate::health::Component::not_run_here(),
            service_addresses: None,
            metrics: Vec::new(),
            encryption: None,
            audit: None,
            webhook_services: None,
        }
    }
}

/// A running API server: its watch cache follows the store until
/// [`ApiServer::shutdown`]; serve it with [`ApiServer::serve`] or call it
/// in-process through [`ApiServer::router`] / [`ApiServer::client`].
#[derive(Clone)]
pub struct ApiServer {
    state: Arc<ApiState>,
}

/// TLS settings for [`ApiServer::serve`].
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<rustls::ServerConfig>,
    verifies_client_certificates: bool,
}

impl TlsConfig {
    /// A server certificate chain and its private key, both PEM; client
    /// certificates are not asked for.
    pub fn from_pem(cert_chain: &[u8], private_key: &[u8]) -> Result<Self, ServerError> {
        Self::build(cert_chain, private_key, None)
    }

    /// Like [`TlsConfig::from_pem`], and asks clients for a certificate
    /// signed by a CA of `client_ca` (PEM, one or more): a verified
    /// certificate authenticates its client (CN = user, O = groups). A
    /// client without one still connects (to authenticate with a bearer
    /// token, or to reach the health endpoints); one with a certificate
    /// that does not verify fails the handshake. With the default
    /// [`crate::auth::AuthMode::Auto`], listeners with this configuration
    /// enforce authentication and RBAC.
    pub fn from_pem_with_client_ca(
        cert_chain: &[u8],
        private_key: &[u8],
        client_ca: &[u8],
    ) -> Result<Self, ServerError> {
        Self::build(cert_chain, private_key, Some(client_ca))
    }

    fn build(
        cert_chain: &[u8],
        private_key: &[u8],
        client_ca: Option<&[u8]>,
    ) -> Result<Self, ServerError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<_, _>>()
            .map_err(|e| ServerError::Tls(format!("certificate chain: {e}")))?;
        if certs.is_empty() {
            return Err(ServerError::Tls(
                "the certificate PEM holds no certificate".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(private_key)
            .map_err(|e| ServerError::Tls(format!("private key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| ServerError::Tls(format!("client CA: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| ServerError::Tls(format!("client CA: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(ServerError::Tls(
                        "the client CA PEM holds no certificate".into(),
                    ));
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| ServerError::Tls(format!("client CA: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            verifies_client_certificates: client_ca.is_some(),
        })
    }

    /// A ready rustls configuration (for settings this crate does not
    /// wrap). Set `verifies_client_certificates` when its verifier checks
    /// client certificates: their CN and O then authenticate requests,
    /// and [`crate::auth::AuthMode::Auto`] enforces authentication on it.
    /// Certificates are only trusted as verified by that verifier.
    pub fn from_rustls(
        config: Arc<rustls::ServerConfig>,
        verifies_client_certificates: bool,
    ) -> Self {
        Self {
            config,
            verifies_client_certificates,
        }
    }

    /// Whether client certificates are verified (and so authenticate).
    pub fn verifies_client_certificates(&self) -> bool {
        self.verifies_client_certificates
    }
}

impl ApiServer {
    /// Starts the watch cache, serves the stored CRDs, creates the
    /// cluster's built-in objects and starts the garbage collector.
    pub async fn start(mut config: ApiServerConfig) -> Result<Self, ServerError> {
        if let Some(encryption) = config.encryption.take() {
            config.storage = Arc::new(EncryptedStorage::new(config.storage, encryption));
        }
        let shutdown = CancellationToken::new();
        let hub = WatchHub::start(
            config.storage.clone(),
            config.watch.clone(),
            shutdown.clone(),
        )
        .await?;
        let services = ServiceNetwork::new(
            &config.service_cidr,
            &config.extra_service_cidrs,
            config.node_ports.clone(),
        )?
        .with_provider(config.service_addresses.clone())
        .with_records(config.storage.clone());
        let mut registry = Registry::new(config.storage.clone(), Catalog::builtin(), services, hub);
        if let Some(resolver) = config.webhook_services.clone() {
            registry = registry.with_webhook_services(resolver);
        }
        let registry = Arc::new(registry);
        registry.load_crds().await.map_err(ServerError::Bootstrap)?;
        registry
            .bootstrap(config.advertised_port)
            .await
            .map_err(ServerError::Bootstrap)?;
        crate::auth::bootstrap_policy(&registry)
            .await
            .map_err(ServerError::Bootstrap)?;
        if let Some(options) = config.garbage_collector.clone() {
            crate::registry::gc::spawn(registry.clone(), options, shutdown.clone());
        }
        let auth = Arc::new(Auth::new(config.auth.clone(), registry.clone())?);
        let state = Arc::new(ApiState {
            registry,
            options: config.http,
            shutdown: shutdown.clone(),
            auth,
            pod_logs: config.pod_logs,
            container_streams: config.container_streams,
            components: config.components,
            metrics: config.metrics,
            audit: config.audit.map(Arc::new),
        });
        crate::auth::spawn_policy_watch(state.auth.clone(), shutdown);
        Ok(Self { state })
    }

    /// The API as a tower service, without an identity: its requests are
    /// anonymous (or authenticated by a bearer token they carry), and
    /// authentication and RBAC apply only with
    /// [`crate::auth::AuthMode::Always`]. Do not serve it to the network
    /// yourself; [`ApiServer::serve`] does that with the right identity.
    pub fn router(&self) -> axum::Router {
        router(self.state.clone())
    }

    /// The API as a tower service whose every request acts as `user`
    /// (trusted as authenticated: in-process callers are code, not the
    /// network), subject to RBAC unless the mode is
    /// [`crate::auth::AuthMode::Never`].
    pub fn router_as(&self, user: UserInfo) -> axum::Router {
        self.router().layer(axum::Extension(InProcessUser(user)))
    }

    /// A privileged `kube::Client` that calls this server in-process (no
    /// TCP), as `system:apiserver` in `system:masters`: what the syncer,
    /// the controllers and embedding code use.
    pub fn client(&self) -> kube::Client {
        self.client_as(UserInfo::in_process_admin())
    }

    /// An in-process `kube::Client` acting as `user` (see
    /// [`ApiServer::router_as`]).
    pub fn client_as(&self, user: UserInfo) -> kube::Client {
        kube::Client::new(self.router_as(user), "default")
    }

    /// Starts a garbage collector over this server's objects, running
    /// until `cancel` (or the server's shutdown). For a server configured
    /// with [`ApiServerConfig::garbage_collector`] `None` whose collector
    /// must run only some of the time: replicas sharing one store run it
    /// only while they lead (two collectors would race on the same
    /// objects).
    pub fn spawn_garbage_collector(
        &self,
        options: GarbageCollectorOptions,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let stop = cancel.child_token();
        let shutdown = self.state.shutdown.clone();
        let linked = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => linked.cancel(),
                _ = linked.cancelled() => {}
            }
        });
        crate::registry::gc::spawn(self.state.registry.clone(), options, stop)
    }

    /// The authentication and authorization state (signing key, policy).
    pub fn auth(&self) -> &Auth {
        &self.state.auth
    }

    /// The object registry (for embedding code that writes directly).
    pub fn registry(&self) -> &Registry {
        &self.state.registry
    }

    /// Ends watches and stops [`ApiServer::serve`] loops.
    pub fn shutdown(&self) {
        self.state.shutdown.cancel();
    }

    /// A token cancelled when the server shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves connections from `listener` until shutdown, over TLS when
    /// `tls` is given (HTTP/2 and HTTP/1.1 either way).
    pub async fn serve(
        &self,
        listener: TcpListener,
        tls: Option<TlsConfig>,
    ) -> Result<(), ServerError> {
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        let verifies = tls
            .as_ref()
            .is_some_and(TlsConfig::verifies_client_certificates);
        let enforced = self.state.auth.enforced_on_listener(verifies);
        let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let shutdown = self.state.shutdown.clone();
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(%addr, error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            // Each connection's requests carry what it says about its
            // client (see `crate::auth::ConnectionAuth`).
            // ... and its address (per-client limits: see `crate::http::PeerAddr`).
            let router = self
                .router()
                .layer(axum::Extension(crate::http::PeerAddr(peer)));
            let service = move |client_certificate: Option<UserInfo>| {
                TowerToHyperService::new(router.layer(axum::Extension(ConnectionAuth {
                    client_certificate,
                    enforced,
                })))
            };
            let acceptor = acceptor.clone();
            let watcher = graceful.watcher();
            let limits = self.state.options.clone();
            tokio::spawn(async move {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                // Explicit limits on what a client may make the server
                // buffer before a handler runs (see `HttpOptions`).
                let header_bytes = limits.max_header_bytes.max(MIN_HEADER_BYTES);
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT)
                    .max_buf_size(header_bytes)
                    .max_headers(limits.max_headers);
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .max_header_list_size(u32::try_from(header_bytes).unwrap_or(u32::MAX))
                    .max_concurrent_streams(limits.max_concurrent_streams);
                let result = match acceptor {
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls)) => {
                                // Only a certificate the verifier accepted is here.
                                let user = if verifies {
                                    tls.get_ref()
                                        .1
                                        .peer_certificates()
                                        .and_then(|chain| chain.first())
                                        .and_then(|cert| {
                                            crate::auth::authn::certificate_user(cert.as_ref())
                                        })
                                } else {
                                    None
                                };
                                let conn = builder.serve_connection_with_upgrades(
                                    TokioIo::new(tls),
                                    service(user),
                                );
                                watcher.watch(conn.into_owned()).await
                            }
                            Ok(Err(err)) => {
                                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                    None => {
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service(None));
                        watcher.watch(conn.into_owned()).await
                    }
                };
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
            });
        }
        // Watches end on the shutdown token; give open requests a moment.
        let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
        Ok(())
    }

    /// Binds `addr` and serves it in the background; returns the bound
    /// address (useful with port 0).
    pub async fn spawn(
        &self,
        addr: SocketAddr,
        tls: Option<TlsConfig>,
    ) -> Result<SocketAddr, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Listen {
                addr: addr.to_string(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: addr.to_string(),
                source,
            })?;
        let server = self.clone();
        tokio::spawn(async move {
            if let Err(err) = server.serve(listener, tls).await {
                tracing::error!(error = %err, "API server stopped");
            }
        });
        Ok(local)
    }
}
