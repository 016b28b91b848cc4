//! Calling a webhook: where it is (`url`, or a `service` resolved to an
//! address), TLS verified against its `caBundle` with rustls, one HTTP/1.1
//! POST within the webhook's timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;

use crate::registry::{ObjectAddress, Registry};

/// The largest webhook answer read (upstream's limit is about 3 MiB).
const MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

/// A webhook's `clientConfig.service`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRef {
    /// The service's namespace.
    pub namespace: String,
    /// The service's name.
    pub name: String,
    /// The path, `/` by default.
    pub path: String,
    /// The service port (443 by default).
    pub port: u16,
}

/// Where a webhook is.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// `clientConfig.url`: host (name or IP), port and path.
    Url {
        /// The host as written (the TLS server name).
        host: String,
        /// The port (443 by default).
        port: u16,
        /// Path and query.
        path: String,
    },
    /// `clientConfig.service`.
    Service(ServiceRef),
}

impl Endpoint {
    /// The endpoint of a stored `clientConfig`.
    pub fn parse(config: &Value) -> Result<Self, String> {
        if let Some(url) = config.get("url").and_then(Value::as_str) {
            let uri: http::Uri = url
                .parse()
                .map_err(|e| format!("invalid url {url:?}: {e}"))?;
            if uri.scheme_str() != Some("https") {
                return Err(format!("invalid url {url:?}: the scheme must be https"));
            }
            let host = uri
                .host()
                .ok_or_else(|| format!("invalid url {url:?}: no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let path = uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into());
            return Ok(Endpoint::Url {
                host,
                port: uri.port_u16().unwrap_or(443),
                path,
            });
        }
        let service = config
            .get("service")
            .ok_or("clientConfig has neither url nor service")?;
        let text = |f: &str| service.get(f).and_then(Value::as_str).unwrap_or("");
        let path = match text("path") {
            "" => "/".to_owned(),
            path => path.to_owned(),
        };
        Ok(Endpoint::Service(ServiceRef {
            namespace: text("namespace").to_owned(),
            name: text("name").to_owned(),
            path,
            port: service
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443),
        }))
    }

    /// The URL errors show (upstream's `Post "<url>"`).
    pub fn display(&self) -> String {
        match self {
            Endpoint::Url { host, port, path } => format!("https://{host}:{port}{path}"),
            Endpoint::Service(s) => format!(
                "https://{}.{}.svc:{}{}",
                s.name, s.namespace, s.port, s.path
            ),
        }
    }
}

/// Resolves a webhook's service to an address the server can reach:
/// pluggable, because only the embedder knows its network (a virtual
/// cluster's service IPs are not routable from where its API server runs).
#[async_trait]
pub trait ServiceResolver: Send + Sync + std::fmt::Debug {
    /// The address of `service`'s port, or why there is none.
    async fn resolve(
        &self,
        registry: &Registry,
        service: &ServiceRef,
    ) -> Result<SocketAddr, String>;
}

/// The default [`ServiceResolver`]: a ready endpoint of the service (its
/// EndpointSlices, else its Endpoints), what kube-apiserver does with
/// `--enable-aggregator-routing`; the cluster IP when there is none.
#[derive(Clone, Copy, Debug, Default)]
pub struct EndpointsResolver;

#[async_trait]
impl ServiceResolver for EndpointsResolver {
    async fn resolve(
        &self,
        registry: &Registry,
        service: &ServiceRef,
    ) -> Result<SocketAddr, String> {
        let catalog = registry.catalog();
        let resource = catalog
            .by_resource("", "services")
            .ok_or("services are not served")?;
        let address = ObjectAddress {
            resource,
            namespace: Some(service.namespace.clone()),
            name: service.name.clone(),
        };
        let svc = registry.get(&address).await.map_err(|_| {
            format!(
                "service \"{}/{}\" not found",
                service.namespace, service.name
            )
        })?;
        let port = crate::object::path(&svc, "spec.ports")
            .and_then(Value::as_array)
            .and_then(|ports| {
                ports
                    .iter()
                    .find(|p| p["port"].as_u64() == Some(u64::from(service.port)))
            })
            .ok_or_else(|| format!("service port {} not found", service.port))?;
        let port_name = port["name"].as_str().unwrap_or("");
        if let Some(found) = from_slices(registry, service, port_name).await {
            return Ok(found);
        }
        if let Some(found) = from_endpoints(registry, service, port_name).await {
            return Ok(found);
        }
        let ip = crate::object::path(&svc, "spec.clusterIP")
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty() && *ip != "None")
            .ok_or_else(|| format!("no endpoints available for service \"{}\"", service.name))?;
        format!("{}:{}", ip.trim(), service.port)
            .parse::<SocketAddr>()
            .or_else(|_| format!("[{}]:{}", ip, service.port).parse())
            .map_err(|e| format!("cluster IP {ip:?}: {e}"))
    }
}

fn socket(ip: &str, port: u64) -> Option<SocketAddr> {
    let ip: std::net::IpAddr = ip.parse().ok()?;
    Some(SocketAddr::new(ip, u16::try_from(port).ok()?))
}

async fn from_slices(
    registry: &Registry,
    service: &ServiceRef,
    port_name: &str,
) -> Option<SocketAddr> {
    let slices = registry
        .list_in(
            "discovery.k8s.io",
            "endpointslices",
            Some(&service.namespace),
        )
        .await
        .ok()?;
    slices
        .iter()
        .filter(|s| {
            crate::object::path(s, "metadata.labels")
                .and_then(|l| l.get("kubernetes.io/service-name"))
                .and_then(Value::as_str)
                == Some(service.name.as_str())
        })
        .find_map(|slice| {
            let port = slice["ports"]
                .as_array()?
                .iter()
                .find(|p| p["name"].as_str().unwrap_or("") == port_name)?["port"]
                .as_u64()?;
            slice["endpoints"]
                .as_array()?
                .iter()
                .filter(|e| e["conditions"]["ready"].as_bool() != Some(false))
                .find_map(|e| socket(e["addresses"].as_array()?.first()?.as_str()?, port))
        })
}

async fn from_endpoints(
    registry: &Registry,
    service: &ServiceRef,
    port_name: &str,
) -> Option<SocketAddr> {
    let resource = registry.catalog().by_resource("", "endpoints")?;
    let address = ObjectAddress {
        resource,
        namespace: Some(service.namespace.clone()),
        name: service.name.clone(),
    };
    let endpoints = registry.get(&address).await.ok()?;
    endpoints["subsets"].as_array()?.iter().find_map(|subset| {
        let port = subset["ports"]
            .as_array()?
            .iter()
            .find(|p| p["name"].as_str().unwrap_or("") == port_name)?["port"]
            .as_u64()?;
        socket(
            subset["addresses"].as_array()?.first()?["ip"].as_str()?,
            port,
        )
    })
}

/// The TLS client configuration of a webhook: its CA bundle's
/// certificates as the only roots, or the system's roots without one.
pub fn tls_config(ca_bundle: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_bundle {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("invalid caBundle: {e}"))?;
            }
            if roots.is_empty() {
                return Err("invalid caBundle: no certificates".into());
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Why a call failed, worded as Go's HTTP client words it after
/// `Post "<url>": `.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer within the webhook's timeout.
    #[error("context deadline exceeded")]
    Timeout,
    /// Connecting, TLS or HTTP failed.
    #[error("{0}")]
    Transport(String),
}

/// Where one call goes: the address, the TLS server name, `Host` and path.
#[derive(Debug)]
pub struct Target {
    /// The socket address dialled.
    pub addr: SocketAddr,
    /// The name the certificate must carry (`<svc>.<ns>.svc` for a service).
    pub server_name: String,
    /// The path and query, with `timeout=<n>s` added as upstream adds it.
    pub path: String,
}

/// Where `endpoint` is now.
pub async fn target(
    registry: &Registry,
    resolver: &dyn ServiceResolver,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<Target, String> {
    let with_timeout = |path: &str| {
        let separator = if path.contains('?') { '&' } else { '?' };
        format!("{path}{separator}timeout={}s", timeout.as_secs())
    };
    match endpoint {
        Endpoint::Url { host, port, path } => {
            let addr = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|e| format!("dial tcp: lookup {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("dial tcp: lookup {host}: no such host"))?;
            Ok(Target {
                addr,
                server_name: host.clone(),
                path: with_timeout(path),
            })
        }
        Endpoint::Service(service) => Ok(Target {
            addr: resolver.resolve(registry, service).await?,
            server_name: format!("{}.{}.svc", service.name, service.namespace),
            path: with_timeout(&service.path),
        }),
    }
}

/// POSTs `body` (JSON) to `target` and returns the answer's body; a status
/// other than 200 is an error, as upstream's REST client treats it.
pub async fn post(
    target: &Target,
    tls: Arc<rustls::ClientConfig>,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Bytes, CallError> {
    tokio::time::timeout(timeout, exchange(target, tls, body))
        .await
        .map_err(|_| CallError::Timeout)?
}

async fn exchange(
    target: &Target,
    tls: Arc<rustls::ClientConfig>,
    body: Vec<u8>,
) -> Result<Bytes, CallError> {
    let transport = |e: &dyn std::fmt::Display| CallError::Transport(e.to_string());
    let name = ServerName::try_from(target.server_name.clone()).map_err(|e| transport(&e))?;
    let tcp = tokio::net::TcpStream::connect(target.addr)
        .await
        .map_err(|e| CallError::Transport(format!("dial tcp {}: {e}", target.addr)))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| CallError::Transport(format!("tls: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transport(&e))?;
    let driver = tokio::spawn(async move {
        // Ends when the sender is dropped or the webhook closes.
        let _ = connection.await;
    });
    let request = http::Request::post(target.path.as_str())
        .header(http::header::HOST, target.server_name.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| transport(&e))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(CallError::Transport(format!(
                "the server responded with the status code {} but did not return more information",
                status.as_u16()
            )));
        }
        Ok(bytes)
    }
    .await;
    drop(sender);
    driver.abort();
    result
}
