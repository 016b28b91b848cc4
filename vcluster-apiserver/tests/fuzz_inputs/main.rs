//! Hostile input, bounded for CI: random and mutated request bodies,
//! selectors and patches through the real router (in process) never panic,
//! every failure is a `metav1.Status`, and a rejected write stores nothing
//! (the store's revision does not move); and over TCP: huge headers, a body
//! sent byte by byte, too many watches from one user, a watch client that
//! never reads. The server keeps answering everyone else throughout.
//!
//! `VCLUSTER_FUZZ_CASES` sets the number of proptest cases per family
//! (default 1000); the run prints one `FUZZ ...` line per family.
//!
//! `bodies`: what goes through the router (bodies, selectors, patches);
//! `connections`: what arrives over TCP (headers, slow bodies, watches).

mod bodies;
mod connections;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tower::ServiceExt;
use vcluster_apiserver::auth::UserInfo;
use vcluster_apiserver::storage::{MemoryStorage, Storage};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::http::raw_request;
use vcluster_testkit::within;

pub(crate) const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

pub(crate) fn cases() -> u32 {
    std::env::var("VCLUSTER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// A server for in-process fuzzing: no garbage collector, so nothing but
/// the requests themselves writes to the store.
pub(crate) async fn quiet_server() -> Cluster {
    Cluster::start_with(vcluster_testkit::cluster::Options {
        configure: Box::new(|c| c.garbage_collector = None),
        ..vcluster_testkit::cluster::Options::default()
    })
    .await
}

/// One in-process request; the whole answer.
pub(crate) async fn call(
    router: &axum::Router,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Bytes) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let request = request
        .body(Body::from(body))
        .expect("a request the test builds is valid");
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status().as_u16();
    let body = within("read a response body", response.into_body().collect())
        .await
        .expect("the body is readable")
        .to_bytes();
    (status, body)
}

/// Checks the answer of a failed request: a `metav1.Status` with its code.
pub(crate) fn check_status(code: u16, body: &[u8]) -> Result<(), String> {
    if code < 400 {
        return Ok(());
    }
    let status: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "a {code} answer is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })?;
    let ok = status["kind"] == "Status"
        && status["apiVersion"] == "v1"
        && status["status"] == "Failure"
        && status["code"] == code
        && status["reason"].as_str().is_some_and(|r| !r.is_empty())
        && status["message"].is_string();
    if ok {
        Ok(())
    } else {
        Err(format!("a {code} answer is not a proper Status: {status}"))
    }
}
