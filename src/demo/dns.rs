//! The demo's DNS server for the virtual cluster (`vcluster-dns`), what
//! vCluster runs as CoreDNS behind its `kube-dns` Service.
//!
//! A pod's `dnsConfig` can name a nameserver only by IP, on port 53. A real
//! deployment serves port 53 on a Service IP of the host (vCluster's
//! `kube-dns` Service) and the syncer writes that IP into host pods. The
//! demo has no such Service: it listens on a loopback port (printed at
//! start, free by default) and still writes its IP into the synced pods'
//! `dnsConfig`, so the shape of the pods is a real deployment's while
//! resolution is tried with a client that takes a port (`dig -p`).

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;
use vcluster_dns::{DnsOptions, DnsServer};

use super::DemoError;

/// The virtual cluster's domain unless configured
/// (`DemoOptions::cluster_domain`).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Binds the DNS server for `cluster_domain` on `listen` and runs it (as one of `tasks`) until
/// `cancel`; returns where it answers.
/// `api_server`: what `kubernetes.default.svc` resolves to (where pods
/// reach the virtual API server), if pods can reach it.
pub async fn start(
    virtual_client: kube::Client,
    listen: SocketAddr,
    cluster_domain: &str,
    api_server: Option<std::net::IpAddr>,
    cancel: CancellationToken,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<SocketAddr, DemoError> {
    // Names outside the cluster go where this machine's resolver sends
    // them; without a resolv.conf the cluster's names still resolve.
    let upstream = match vcluster_dns::resolv_conf_nameservers(
        vcluster_dns::DEFAULT_RESOLV_CONF.as_ref(),
    ) {
        Ok(servers) => servers,
        Err(err) => {
            tracing::warn!(error = %err, "no upstream resolvers: only the cluster's names resolve");
            Vec::new()
        }
    };
    let options = DnsOptions {
        cluster_domain: cluster_domain.to_owned(),
        upstream: Some(upstream),
        kubernetes_addresses: api_server.into_iter().collect(),
        ..DnsOptions::default()
    };
    let server = DnsServer::new(virtual_client, options)
        .bind(listen)
        .await
        .map_err(|e| DemoError::Listen {
            addr: listen,
            message: e.to_string(),
            flag: "--dns-listen",
        })?;
    let addr = server.local_addr();
    tasks.push(tokio::spawn(async move {
        if let Err(err) = server.run(cancel).await {
            tracing::error!(error = %err, "DNS server stopped");
        }
    }));
    Ok(addr)
}
