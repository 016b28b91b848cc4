//! The one test kit of the workspace's tests and benchmarks, so a test
//! reads as the scenario it checks:
//!
//! - [`cluster::Cluster`]: our API server in memory on loopback, with its
//!   kubeconfigs and clients; [`kubectl`] and [`http`] drive it as the
//!   real kubectl and a raw HTTP/1.1 client.
//! - [`real_host::RealHost`]: a real Kubernetes control plane (upstream
//!   kube-apiserver, kube-controller-manager and etcd, built from their Go
//!   modules by `tools/upstream/build`) with a simulated node, the reference
//!   host every syncer behaviour is proven against.
//! - [`node::RunningNode`]: the simulated node on any cluster;
//!   [`kubelet`]: the scripted kubelet of the controllers' scenarios.
//! - [`fault_proxy::FaultProxy`]: faults between a component and its API
//!   server.
//! - [`etcd::EtcdServer`]: a real, throw-away etcd on loopback.
//! - [`pki`]: throw-away CAs, certificates and kubeconfigs.
//! - [`webhook::WebhookServer`]: an admission or conversion webhook over
//!   TLS on loopback, answering as the test scripts it.
//! - [`python::interpreter`]: the official Python client's interpreter.
//! - [`demo`]: the demo binary as a child process.
//! - [`bench`]: the benchmarks' harness.
//! - [`eventually`] and its variants over one loop ([`poll`]): bounded
//!   polling, the only way tests wait.
//! - [`free_ports`]: loopback ports nobody listens on.
//!
//! Everything binds to 127.0.0.1 only, and every process started here is
//! stopped when its guard drops (or, for the shared real host, when the test
//! process exits).
//!
//! ```no_run
//! use vcluster_testkit::{eventually, real_host::RealHost};
//! use k8s_openapi::api::core::v1::Namespace;
//!
//! # async fn scenario() {
//! let host = RealHost::shared(); // started once per test binary
//! let namespaces: kube::Api<Namespace> = kube::Api::all(host.client());
//! eventually("kube-system exists", || async {
//!     namespaces.get_opt("kube-system").await.ok().flatten()
//! })
//! .await;
//! # }
//! ```
#![warn(missing_docs)]

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

pub mod bench;
pub mod cluster;
pub mod demo;
pub mod etcd;
pub mod fault_proxy;
pub mod http;
pub mod in_cluster;
pub mod kubectl;
pub mod kubelet;
pub mod node;
pub mod pki;
pub mod process;
pub mod python;
pub mod real_host;
pub mod streams;
pub mod upstream;
pub mod webhook;

/// How long a test waits for any one condition before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How often a wait looks again.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `condition` until it returns `Some`, or fails the test after
/// [`DEADLINE`] saying what was awaited.
pub async fn eventually<T, F, Fut>(what: &str, condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(DEADLINE, what, condition).await
}

/// [`eventually`] with a deadline of the caller's choosing.
pub async fn eventually_within<T, F, Fut>(deadline: Duration, what: &str, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_explained(deadline, what, || {
        let attempt = condition();
        async { attempt.await.ok_or_else(String::new) }
    })
    .await
}

/// The one polling loop behind every wait, [`eventually`] and its
/// variants: runs `condition` every `interval` until it returns `Ok`;
/// after `deadline` returns the last `Err` instead.
pub async fn poll<T, F, Fut>(
    deadline: Duration,
    interval: Duration,
    mut condition: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let last = match condition().await {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if start.elapsed() > deadline {
            return Err(last);
        }
        tokio::time::sleep(interval).await;
    }
}

/// Polls `condition` every [`POLL`] until it returns `Ok`, or fails the
/// test after `deadline` with what was awaited and the last `Err` (say,
/// the output that did not match), so a timeout explains itself.
pub async fn eventually_explained<T, F, Fut>(deadline: Duration, what: &str, condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    eventually_every(deadline, POLL, what, condition).await
}

/// [`eventually_explained`] looking again only every `interval`, for
/// conditions that are costly to check (a kubectl process each time).
pub async fn eventually_every<T, F, Fut>(
    deadline: Duration,
    interval: Duration,
    what: &str,
    condition: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    match poll(deadline, interval, condition).await {
        Ok(value) => value,
        Err(last) if last.is_empty() => panic!("timed out after {deadline:?} waiting for: {what}"),
        Err(last) => panic!("timed out after {deadline:?} waiting for: {what}; last: {last}"),
    }
}

/// Waits until `api` has no object `name` (a failed read counts as "not
/// yet"), failing the test after [`DEADLINE`] saying `what`.
pub async fn eventually_gone<K>(what: &str, api: &kube::Api<K>, name: &str)
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(what, || async {
        api.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await
}

/// Bounds any future by [`DEADLINE`]: a request or a stop that could hang
/// fails the test instead.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?}: {what}"))
}

/// Logs of the code under test in the test's output (shown for a failing
/// test) at the level `RUST_LOG` asks for, else `default_filter`; once per
/// test binary.
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// One loopback port nobody listens on right now (see [`free_ports`]).
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// `N` distinct loopback ports nobody listens on right now: the kernel's
/// picks for port 0, held together so they differ. Another process may
/// take one before the caller binds it; launchers retry on new ports.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free loopback port"))
        .collect();
    std::array::from_fn(|i| {
        listeners[i]
            .local_addr()
            .expect("a bound listener has an address")
            .port()
    })
}
