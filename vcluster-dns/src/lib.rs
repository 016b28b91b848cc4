//! The virtual cluster's DNS server: what CoreDNS is to a vCluster.
//!
//! Tenant pods run on the host, but the names they look up
//! (`web.team.svc.cluster.local`) are the *virtual* cluster's. This server
//! watches the virtual cluster's Services, EndpointSlices and Pods through
//! a [`kube::Client`] and answers the records of the Kubernetes DNS
//! specification (schema [`SCHEMA_VERSION`]) for the cluster domain; every
//! other name goes to the upstream resolvers. The syncer points synced
//! pods' `dnsConfig` at it (`PodEnvironment::dns_server` in
//! `vcluster-syncer`).
//!
//! A virtual Service's cluster IP is the host Service's (the syncer copies
//! it back), so an answer is an address that works on the host.
//!
//! ```
//! use std::sync::Arc;
//! use tokio_util::sync::CancellationToken;
//! use vcluster_dns::{DnsOptions, DnsServer};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use vcluster_apiserver::{storage::MemoryStorage, ApiServer, ApiServerConfig};
//! # let api = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new()))).await?;
//! // A client of the virtual cluster (here an in-process API server).
//! let virtual_client: kube::Client = api.client();
//! let options = DnsOptions {
//!     cluster_domain: "cluster.local".into(),
//!     // Names outside the cluster domain go here (default: the
//!     // nameservers of /etc/resolv.conf).
//!     upstream: Some(vec!["127.0.0.1:5353".parse()?]),
//!     ..DnsOptions::default()
//! };
//! // Port 53 on a Service IP in a real deployment; any free port here.
//! let server = DnsServer::new(virtual_client, options)
//!     .bind("127.0.0.1:0".parse()?)
//!     .await?;
//! println!("DNS on {}", server.local_addr());
//! let cancel = CancellationToken::new();
//! let running = tokio::spawn(server.run(cancel.clone()));
//! // ... pods resolve `<svc>.<ns>.svc.cluster.local` through it ...
//! cancel.cancel();
//! running.await??;
//! # api.shutdown();
//! # Ok(())
//! # }
//! ```
//!
//! Modules: `index` (what is known of the cluster), `watch` (keeping it
//! current), `lookup` (records of the cluster domain), `forward` (the
//! upstream resolvers), `handler` (one request).
#![warn(missing_docs)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio_util::sync::CancellationToken;

mod forward;
mod handler;
mod index;
mod lookup;
mod watch;

pub use forward::{resolv_conf_nameservers, ForwardError};
pub use lookup::SCHEMA_VERSION;

/// The resolv.conf whose nameservers are the default upstream.
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

/// How the DNS server answers.
#[derive(Clone, Debug)]
pub struct DnsOptions {
    /// The cluster domain (`cluster.local`), the zone this server answers
    /// with authority.
    pub cluster_domain: String,
    /// The TTL of the zone's records and of negative answers (the SOA's
    /// minimum), in seconds; CoreDNS's `kubernetes` plugin uses 5.
    pub ttl: u32,
    /// Where names outside the cluster domain go. `None`: the nameservers
    /// of [`DnsOptions::resolv_conf`].
    pub upstream: Option<Vec<SocketAddr>>,
    /// The resolv.conf read when `upstream` is `None`.
    pub resolv_conf: PathBuf,
    /// How long one upstream has to answer before the next is asked.
    pub upstream_timeout: Duration,
    /// How long a TCP connection may stay idle between requests.
    pub tcp_idle_timeout: Duration,
    /// What `kubernetes.default.svc.<domain>` resolves to. Empty: the
    /// virtual `kubernetes` Service's cluster IP, an address of the
    /// virtual API server's own service range that nothing on the host
    /// routes; set it to where host pods reach the virtual API server
    /// (vCluster points the name at its host Service).
    pub kubernetes_addresses: Vec<IpAddr>,
}

impl Default for DnsOptions {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".into(),
            ttl: 5,
            upstream: None,
            resolv_conf: PathBuf::from(DEFAULT_RESOLV_CONF),
            upstream_timeout: Duration::from_secs(2),
            tcp_idle_timeout: Duration::from_secs(10),
            kubernetes_addresses: Vec::new(),
        }
    }
}

/// Why the DNS server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The cluster domain is not a DNS name.
    #[error("invalid cluster domain: {0}")]
    Domain(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr} ({protocol}): {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The upstream resolvers could not be read.
    #[error("cannot read the upstream resolvers from {path}: {source}")]
    ResolvConf {
        /// The resolv.conf file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("DNS server: {0}")]
    Serve(String),
}

/// A DNS server for one virtual cluster (not yet listening).
pub struct DnsServer {
    client: kube::Client,
    options: DnsOptions,
}

/// A DNS server with its sockets bound: [`BoundDnsServer::local_addr`]
/// says where (useful with port 0), [`BoundDnsServer::run`] serves.
pub struct BoundDnsServer {
    client: kube::Client,
    options: DnsOptions,
    handler: handler::Handler,
    udp: tokio::net::UdpSocket,
    tcp: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl DnsServer {
    /// A server answering from the virtual cluster `client` talks to.
    pub fn new(client: kube::Client, options: DnsOptions) -> Self {
        Self { client, options }
    }

    /// Binds UDP and TCP on `addr` (with port 0, one free port for both).
    pub async fn bind(self, addr: SocketAddr) -> Result<BoundDnsServer, DnsError> {
        let zone = lookup::Zone::new(&self.options.cluster_domain, self.options.ttl)
            .map_err(DnsError::Domain)?
            .with_kubernetes(self.options.kubernetes_addresses.clone());
        let servers = match &self.options.upstream {
            Some(servers) => servers.clone(),
            None => resolv_conf_nameservers(&self.options.resolv_conf).map_err(|source| {
                DnsError::ResolvConf {
                    path: self.options.resolv_conf.display().to_string(),
                    source,
                }
            })?,
        };
        let (udp, tcp) = bind_both(addr).await?;
        let addr = udp.local_addr().map_err(|source| DnsError::Listen {
            addr,
            protocol: "udp",
            source,
        })?;
        let handler = handler::Handler {
            zone,
            index: Arc::new(index::Index::default()),
            upstream: forward::Upstream::new(servers, self.options.upstream_timeout),
        };
        Ok(BoundDnsServer {
            client: self.client,
            options: self.options,
            handler,
            udp,
            tcp,
            addr,
        })
    }

    /// Binds `addr` and serves until `cancel`.
    pub async fn serve(self, addr: SocketAddr, cancel: CancellationToken) -> Result<(), DnsError> {
        self.bind(addr).await?.run(cancel).await
    }
}

/// Binds UDP and TCP to the same address; for port 0, retries until the
/// UDP port the system picked is free for TCP too.
async fn bind_both(
    addr: SocketAddr,
) -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener), DnsError> {
    let listen = |protocol, source| DnsError::Listen {
        addr,
        protocol,
        source,
    };
    let mut attempts = if addr.port() == 0 { 20 } else { 1 };
    loop {
        let udp = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(|e| listen("udp", e))?;
        let bound = udp.local_addr().map_err(|e| listen("udp", e))?;
        match tokio::net::TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if attempts > 1 && e.kind() == std::io::ErrorKind::AddrInUse => attempts -= 1,
            Err(e) => return Err(listen("tcp", e)),
        }
    }
}

impl BoundDnsServer {
    /// Where the server listens (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Watches the virtual cluster and answers queries until `cancel`.
    /// Names of the cluster domain get SERVFAIL (clients retry) until the
    /// first list of every kind is in.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), DnsError> {
        let index = self.handler.index.clone();
        let watches = cancel.child_token();
        let mut tasks = vec![
            tokio::spawn(watch::run::<Service>(
                self.client.clone(),
                index.clone(),
                watches.clone(),
            )),
            tokio::spawn(watch::run::<EndpointSlice>(
                self.client.clone(),
                index.clone(),
                watches.clone(),
            )),
            tokio::spawn(watch::run::<Pod>(
                self.client.clone(),
                index,
                watches.clone(),
            )),
        ];
        let mut server = hickory_server::Server::new(self.handler);
        server.register_socket(self.udp);
        // 64 responses may wait per TCP connection.
        server.register_listener(self.tcp, self.options.tcp_idle_timeout, 64);
        cancel.cancelled().await;
        let result = server
            .shutdown_gracefully()
            .await
            .map_err(|e| DnsError::Serve(e.to_string()));
        watches.cancel();
        for task in tasks.drain(..) {
            let _ = task.await;
        }
        result
    }
}
