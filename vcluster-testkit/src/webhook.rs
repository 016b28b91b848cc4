//! A webhook server for admission and conversion tests: HTTPS on
//! 127.0.0.1 with a certificate from a fresh test CA (its PEM goes in the
//! webhook's `caBundle`), answering every POST as the test's handler says
//! and recording what it received, so a test reads as its scenario.
//!
//! ```no_run
//! use vcluster_testkit::webhook::{Answer, WebhookServer};
//!
//! # async fn scenario() {
//! let server = WebhookServer::start(&["127.0.0.1"], |review| {
//!     Answer::review(&review, serde_json::json!({"allowed": false, "status": {"message": "no"}}))
//! })
//! .await;
//! let url = server.url("/deny");
//! // ... create a ValidatingWebhookConfiguration with `url` and
//! // `server.ca_bundle()`, write, check the denial ...
//! server.stop().await;
//! # }
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::pki::TestCa;

/// What the server answers to one request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A JSON body with status 200.
    Json(Value),
    /// Any bytes with status 200 (a webhook answering garbage).
    Raw(String),
    /// The inner answer, after a pause (a webhook slower than its
    /// `timeoutSeconds`).
    After(Duration, Box<Answer>),
}

impl Answer {
    /// An `AdmissionReview` answering `review` (its version and uid) with
    /// `response` (`allowed`, `status`, `patch`, `warnings`, ...).
    pub fn review(review: &Value, response: Value) -> Self {
        let mut response = response;
        response["uid"] = review["request"]["uid"].clone();
        Answer::Json(json!({
            "apiVersion": review["apiVersion"].clone(),
            "kind": "AdmissionReview",
            "response": response,
        }))
    }

    /// Admits `review`.
    pub fn allow(review: &Value) -> Self {
        Self::review(review, json!({"allowed": true}))
    }

    /// Admits `review` with an RFC 6902 `patch` (sent base64-encoded, as
    /// `patchType: JSONPatch`).
    pub fn patch(review: &Value, patch: Value) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
        Self::review(
            review,
            json!({"allowed": true, "patchType": "JSONPatch", "patch": encoded}),
        )
    }

    /// Denies `review` with `message` and HTTP `code`.
    pub fn deny(review: &Value, message: &str, code: u16) -> Self {
        Self::review(
            review,
            json!({"allowed": false, "status": {"message": message, "code": code}}),
        )
    }
}

type Handler = dyn Fn(Value) -> Answer + Send + Sync;

/// A running webhook server; [`WebhookServer::stop`] ends it (dropping it
/// stops it too).
pub struct WebhookServer {
    addr: SocketAddr,
    ca_pem: String,
    received: Arc<Mutex<Vec<Value>>>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WebhookServer {
    /// Starts a server on 127.0.0.1 whose certificate names `names` (IPs or
    /// DNS names, such as `hook.team.svc` for a service-referenced
    /// webhook); every request's JSON body goes to `handler`.
    pub async fn start(
        names: &[&str],
        handler: impl Fn(Value) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let ca = TestCa::new();
        Self::start_with(&ca, names, handler).await
    }

    /// Like [`WebhookServer::start`], with a certificate from `ca`.
    pub async fn start_with(
        ca: &TestCa,
        names: &[&str],
        handler: impl Fn(Value) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let (cert_pem, key_pem) = ca.server_cert_for(names);
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("the test certificate");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("the test key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("a server TLS configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let handler: Arc<Handler> = Arc::new(handler);
        let task = tokio::spawn(serve(
            listener,
            acceptor,
            handler,
            received.clone(),
            stop.clone(),
        ));
        Self {
            addr,
            ca_pem: ca.ca_pem.clone(),
            received,
            stop,
            task: Some(task),
        }
    }

    /// The server's address on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port><path>`, for `clientConfig.url`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The CA certificate, base64-encoded PEM, for `clientConfig.caBundle`.
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    /// The bodies received so far, oldest first.
    pub fn received(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    handler: Arc<Handler>,
    received: Arc<Mutex<Vec<Value>>>,
    stop: CancellationToken,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        let received = received.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            // A client refusing the certificate ends here.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    let received = received.clone();
                    async move {
                        let bytes = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        received
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(body.clone());
                        let mut answer = handler(body);
                        while let Answer::After(pause, inner) = answer {
                            tokio::time::sleep(pause).await;
                            answer = *inner;
                        }
                        let text = match answer {
                            Answer::Json(value) => value.to_string(),
                            Answer::Raw(text) => text,
                            Answer::After(..) => String::new(),
                        };
                        let response = http::Response::builder()
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(Full::new(Bytes::from(text)))
                            .unwrap_or_default();
                        Ok::<_, Infallible>(response)
                    }
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = connection => {}
            }
        });
    }
    connections.shutdown().await;
}
