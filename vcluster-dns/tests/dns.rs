//! The DNS server answering a real resolver (hickory's, pointed at the
//! server's loopback port) from a real virtual API server (ours, in
//! process): every record shape of the cluster domain, a deletion seen
//! through the watch, and forwarding to an upstream (a second tiny DNS
//! server on loopback).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::Resolver;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::Record;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiServer, ApiServerConfig};
use vcluster_dns::{DnsOptions, DnsServer};

/// The address the upstream answers for `upstream.example.`.
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

/// A one-record authoritative server: the "upstream" resolver.
struct Upstream;

#[async_trait::async_trait]
impl RequestHandler for Upstream {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let query = &request.queries.queries()[0];
        let name = query.original().name().clone();
        let known = name.to_ascii().eq_ignore_ascii_case("upstream.example.");
        let answers: Vec<Record> = if known && query.query_type() == RecordType::A {
            vec![Record::from_rdata(name, 60, RData::A(A(UPSTREAM_ANSWER)))]
        } else {
            Vec::new()
        };
        if !known {
            metadata.response_code = ResponseCode::NXDomain;
        }
        let built = MessageResponseBuilder::from_message_request(request).build(
            metadata,
            answers.iter(),
            std::iter::empty(),
            std::iter::empty(),
            std::iter::empty(),
        );
        response.send_response(built).await.unwrap_or_else(|_| {
            ResponseInfo::from(Header {
                metadata: Metadata::response_from_request(&request.metadata),
                counts: HeaderCounts::default(),
            })
        })
    }
}

async fn start_upstream() -> (hickory_server::Server<Upstream>, SocketAddr) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("upstream socket");
    let addr = socket.local_addr().expect("upstream addr");
    let mut server = hickory_server::Server::new(Upstream);
    server.register_socket(socket);
    (server, addr)
}

fn resolver(addr: SocketAddr) -> Resolver<TokioRuntimeProvider> {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
        addr.ip(),
        true,
        vec![udp, tcp],
    )]);
    let mut options = ResolverOpts::default();
    // Every lookup asks the server: the test watches answers change.
    options.cache_size = 0;
    options.timeout = Duration::from_secs(2);
    options.attempts = 1;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .expect("resolver")
}

async fn addresses(
    resolver: &Resolver<TokioRuntimeProvider>,
    name: &str,
    qtype: RecordType,
) -> Result<Vec<IpAddr>, NetError> {
    let lookup = resolver.lookup(name, qtype).await?;
    Ok(lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect())
}

/// Polls `check` (at most 20 s) until it returns `Some`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn create<K>(client: &kube::Client, namespace: &str, object: serde_json::Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let object: K = serde_json::from_value(object).expect("object");
    Api::<K>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &object)
        .await
        .expect("create")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_virtual_clusters_names_and_forwards_the_rest() {
    let api = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new())))
        .await
        .expect("virtual API server");
    let client = api.client();
    let (mut upstream, upstream_addr) = start_upstream().await;

    let options = DnsOptions {
        upstream: Some(vec![upstream_addr]),
        ..DnsOptions::default()
    };
    let dns = DnsServer::new(client.clone(), options)
        .bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let dns_addr = dns.local_addr();
    let cancel = CancellationToken::new();
    let serving = tokio::spawn(dns.run(cancel.clone()));

    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace");
    let web: Service = create(&client, "team", json!({
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics", "port": 9000, "protocol": "UDP"}]}
    }))
    .await;
    let web_ip: IpAddr = web
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("cluster IP")
        .parse()
        .expect("ip");
    create::<Service>(
        &client,
        "team",
        json!({
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}
        }),
    )
    .await;
    create::<EndpointSlice>(
        &client,
        "team",
        json!({
            "metadata": {"name": "db-abcde", "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.244.0.6"], "hostname": "db-1", "conditions": {"ready": true}},
                {"addresses": ["10.244.0.7"], "hostname": "db-2", "conditions": {"ready": false}}
            ]
        }),
    )
    .await;
    create::<Service>(
        &client,
        "team",
        json!({
            "metadata": {"name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "upstream.example"}
        }),
    )
    .await;
    create::<Pod>(
        &client,
        "team",
        json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }),
    )
    .await;
    Api::<Pod>::namespaced(client.clone(), "team")
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"podIP": "10.244.0.9", "podIPs": [{"ip": "10.244.0.9"}]}}),
            ),
        )
        .await
        .expect("pod status");

    let resolver = resolver(dns_addr);

    // ClusterIP service: A with its cluster IP (once the watch has it).
    let found = eventually("the service's A record", || async {
        addresses(&resolver, "web.team.svc.cluster.local.", RecordType::A)
            .await
            .ok()
            .filter(|a| !a.is_empty())
    })
    .await;
    assert_eq!(found, vec![web_ip]);
    // No IPv6 address: NOERROR without answers (not NXDOMAIN).
    let err = resolver
        .lookup("web.team.svc.cluster.local.", RecordType::AAAA)
        .await
        .expect_err("no AAAA");
    assert!(err.is_no_records_found() && !err.is_nx_domain(), "{err}");

    // SRV of a named port points at the service name.
    let srv = resolver
        .lookup("_http._tcp.web.team.svc.cluster.local.", RecordType::SRV)
        .await
        .expect("SRV");
    let records: Vec<_> = srv
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some((srv.port, srv.target.to_ascii())),
            _ => None,
        })
        .collect();
    assert_eq!(
        records,
        vec![(80, "web.team.svc.cluster.local.".to_owned())]
    );
    let err = resolver
        .lookup("_nope._tcp.web.team.svc.cluster.local.", RecordType::SRV)
        .await
        .expect_err("unknown port");
    assert!(err.is_nx_domain(), "{err}");

    // Headless: the ready endpoints, and each one by hostname.
    let mut found = eventually("the headless service's endpoints", || async {
        addresses(&resolver, "db.team.svc.cluster.local.", RecordType::A)
            .await
            .ok()
            .filter(|a| a.len() == 2)
    })
    .await;
    found.sort();
    assert_eq!(
        found,
        vec![
            "10.244.0.5".parse::<IpAddr>().expect("ip"),
            "10.244.0.6".parse().expect("ip")
        ]
    );
    assert_eq!(
        addresses(&resolver, "db-1.db.team.svc.cluster.local.", RecordType::A)
            .await
            .expect("endpoint"),
        vec!["10.244.0.6".parse::<IpAddr>().expect("ip")]
    );
    let err = resolver
        .lookup("db-2.db.team.svc.cluster.local.", RecordType::A)
        .await
        .expect_err("not ready");
    assert!(err.is_nx_domain(), "{err}");
    let srv = resolver
        .lookup("_pg._tcp.db.team.svc.cluster.local.", RecordType::SRV)
        .await
        .expect("headless SRV");
    let mut targets: Vec<_> = srv
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some((srv.port, srv.target.to_ascii())),
            _ => None,
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            (5432, "db-0.db.team.svc.cluster.local.".to_owned()),
            (5432, "db-1.db.team.svc.cluster.local.".to_owned())
        ]
    );

    // Reverse lookups: a cluster IP names its service, a headless
    // endpoint its hostname; other addresses go upstream.
    let ptr = |name: String| {
        let resolver = &resolver;
        async move {
            let lookup = resolver.lookup(name, RecordType::PTR).await.ok()?;
            lookup.answers().iter().find_map(|r| match &r.data {
                RData::PTR(p) => Some(p.0.to_ascii()),
                _ => None,
            })
        }
    };
    let IpAddr::V4(web_v4) = web_ip else {
        panic!("an IPv4 cluster IP")
    };
    let [a, b, c, d] = web_v4.octets();
    assert_eq!(
        ptr(format!("{d}.{c}.{b}.{a}.in-addr.arpa."))
            .await
            .as_deref(),
        Some("web.team.svc.cluster.local.")
    );
    assert_eq!(
        ptr("6.0.244.10.in-addr.arpa.".to_owned()).await.as_deref(),
        Some("db-1.db.team.svc.cluster.local.")
    );
    let err = resolver
        .lookup("99.2.0.192.in-addr.arpa.", RecordType::PTR)
        .await
        .expect_err("unknown upstream");
    assert!(err.is_nx_domain(), "{err}");

    // An answer too large for UDP comes truncated; the resolver asks
    // again over TCP and gets every address.
    create::<Service>(
        &client,
        "team",
        json!({"metadata": {"name": "big"}, "spec": {"clusterIP": "None"}}),
    )
    .await;
    let endpoints: Vec<_> = (1..=200)
        .map(|i: u32| json!({"addresses": [format!("10.245.{}.{}", i / 100, i % 100)]}))
        .collect();
    create::<EndpointSlice>(
        &client,
        "team",
        json!({
            "metadata": {"name": "big-abcde", "labels": {"kubernetes.io/service-name": "big"}},
            "addressType": "IPv4",
            "endpoints": endpoints
        }),
    )
    .await;
    let found = eventually("all 200 addresses", || async {
        addresses(&resolver, "big.team.svc.cluster.local.", RecordType::A)
            .await
            .ok()
            .filter(|a| a.len() == 200)
    })
    .await;
    assert_eq!(found.len(), 200);

    // ExternalName: a CNAME, followed upstream for addresses.
    let cname = eventually("the ExternalName CNAME", || async {
        resolver
            .lookup("ext.team.svc.cluster.local.", RecordType::CNAME)
            .await
            .ok()
    })
    .await;
    let targets: Vec<_> = cname
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(targets, vec!["upstream.example.".to_owned()]);
    assert_eq!(
        addresses(&resolver, "ext.team.svc.cluster.local.", RecordType::A)
            .await
            .expect("followed CNAME"),
        vec![IpAddr::V4(UPSTREAM_ANSWER)]
    );

    // Pod records, for IPs pods of that namespace have.
    let found = eventually("the pod record", || async {
        addresses(
            &resolver,
            "10-244-0-9.team.pod.cluster.local.",
            RecordType::A,
        )
        .await
        .ok()
    })
    .await;
    assert_eq!(found, vec!["10.244.0.9".parse::<IpAddr>().expect("ip")]);
    let err = resolver
        .lookup("10-244-0-9.other.pod.cluster.local.", RecordType::A)
        .await
        .expect_err("another namespace");
    assert!(err.is_nx_domain(), "{err}");

    // Unknown names of the zone: NXDOMAIN with the zone's SOA.
    let err = resolver
        .lookup("nope.team.svc.cluster.local.", RecordType::A)
        .await
        .expect_err("unknown");
    assert!(err.is_nx_domain(), "{err}");
    let soa = err.into_soa().expect("SOA in the authority section");
    assert_eq!(soa.name.to_ascii(), "cluster.local.");

    // Everything else goes upstream.
    assert_eq!(
        addresses(&resolver, "upstream.example.", RecordType::A)
            .await
            .expect("forwarded"),
        vec![IpAddr::V4(UPSTREAM_ANSWER)]
    );
    let err = resolver
        .lookup("unknown.example.", RecordType::A)
        .await
        .expect_err("upstream NXDOMAIN");
    assert!(err.is_nx_domain(), "{err}");

    // A deleted service is gone once the watch delivers the deletion.
    Api::<Service>::namespaced(client.clone(), "team")
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("NXDOMAIN for the deleted service", || async {
        match resolver
            .lookup("web.team.svc.cluster.local.", RecordType::A)
            .await
        {
            Err(err) if err.is_nx_domain() => Some(()),
            _ => None,
        }
    })
    .await;

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("DNS server stops")
        .expect("task")
        .expect("clean stop");
    upstream
        .shutdown_gracefully()
        .await
        .expect("upstream stops");
    api.shutdown();
}

/// A server that watched nothing yet answers forwarded names, and binds
/// UDP and TCP on one port.
#[tokio::test]
async fn tcp_answers_too() {
    let api = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new())))
        .await
        .expect("virtual API server");
    let (mut upstream, upstream_addr) = start_upstream().await;
    let options = DnsOptions {
        upstream: Some(vec![upstream_addr]),
        ..DnsOptions::default()
    };
    let dns = DnsServer::new(api.client(), options)
        .bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = dns.local_addr();
    let cancel = CancellationToken::new();
    let serving = tokio::spawn(dns.run(cancel.clone()));
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let config =
        ResolverConfig::from_name_servers(vec![NameServerConfig::new(addr.ip(), true, vec![tcp])]);
    let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .build()
        .expect("resolver");
    let found = eventually("the dns-version record over TCP", || async {
        resolver
            .lookup("dns-version.cluster.local.", RecordType::TXT)
            .await
            .ok()
    })
    .await;
    let text: Vec<String> = found
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(text, vec![vcluster_dns::SCHEMA_VERSION.to_owned()]);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("DNS server stops")
        .expect("task")
        .expect("clean stop");
    upstream
        .shutdown_gracefully()
        .await
        .expect("upstream stops");
    api.shutdown();
}
