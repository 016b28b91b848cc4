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
use crate::error::ApiError;
use crate::http::{router, ApiState, HttpOptions};
use crate::registry::{GarbageCollectorOptions, Registry, ServiceNetwork};
use crate::resources::Catalog;
use crate::storage::{Storage, StorageError};
use crate::watch::{WatchHub, WatchLimits};

/// How long a client may take to send its request headers or finish TLS.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
pub struct TlsConfig(Arc<rustls::ServerConfig>);

impl TlsConfig {
    /// A server certificate chain and its private key, both PEM.
    pub fn from_pem(cert_chain: &[u8], private_key: &[u8]) -> Result<Self, ServerError> {
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
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ServerError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self(Arc::new(config)))
    }

    /// A ready rustls configuration (for client-certificate verification
    /// and other settings this crate does not wrap).
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        Self(config)
    }
}

impl ApiServer {
    /// Starts the watch cache, serves the stored CRDs, creates the
    /// cluster's built-in objects and starts the garbage collector.
    pub async fn start(config: ApiServerConfig) -> Result<Self, ServerError> {
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
        )?;
        let registry = Arc::new(Registry::new(
            config.storage.clone(),
            Catalog::builtin(),
            services,
            hub,
        ));
        registry.load_crds().await.map_err(ServerError::Bootstrap)?;
        registry
            .bootstrap(config.advertised_port)
            .await
            .map_err(ServerError::Bootstrap)?;
        if let Some(options) = config.garbage_collector.clone() {
            crate::registry::gc::spawn(registry.clone(), options, shutdown.clone());
        }
        Ok(Self {
            state: Arc::new(ApiState {
                registry,
                options: config.http,
                shutdown,
            }),
        })
    }

    /// The API as a tower service.
    pub fn router(&self) -> axum::Router {
        router(self.state.clone())
    }

    /// A `kube::Client` that calls this server in-process (no TCP).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
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
        let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.0));
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
            let service = TowerToHyperService::new(self.router());
            let acceptor = acceptor.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT);
                builder.http2().timer(TokioTimer::new());
                let result = match acceptor {
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls)) => {
                                let conn = builder
                                    .serve_connection_with_upgrades(TokioIo::new(tls), service);
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
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
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
