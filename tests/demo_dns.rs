//! The demo's DNS for the virtual cluster, asked by a real resolver
//! (hickory's, on the demo's DNS port): a virtual service resolves to the
//! host address the syncer gave it, a pod to its IP; and synced pods are
//! pointed at that server (`dnsConfig`) and at the virtual API server
//! (`KUBERNETES_SERVICE_*`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::Resolver;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use vcluster::demo::{self, DemoOptions};
use vcluster_testkit::{eventually, free_port};

async fn client(kubeconfig: &Path) -> kube::Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn resolver(addr: SocketAddr) -> Resolver<TokioRuntimeProvider> {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let config =
        ResolverConfig::from_name_servers(vec![NameServerConfig::new(addr.ip(), true, vec![udp])]);
    let mut options = ResolverOpts::default();
    options.cache_size = 0;
    options.timeout = Duration::from_secs(2);
    options.attempts = 1;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .expect("resolver")
}

async fn a_records(resolver: &Resolver<TokioRuntimeProvider>, name: &str) -> Option<Vec<IpAddr>> {
    let lookup = resolver.lookup(name, RecordType::A).await.ok()?;
    let found: Vec<IpAddr> = lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    (!found.is_empty()).then_some(found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_pods_resolve_virtual_services_through_the_demos_dns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = DemoOptions::new(dir.path().join("data"));
    options.listen = ([127, 0, 0, 1], free_port()).into();
    options.host_listen = ([127, 0, 0, 1], free_port()).into();
    let running = demo::start(options).await.expect("start the demo");
    let virtual_client = client(&running.kubeconfig).await;
    let host_client = client(running.host_kubeconfig.as_ref().expect("embedded host")).await;
    let resolver = resolver(running.dns_addr);

    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}
    }))
    .expect("service");
    let services: Api<Service> = Api::namespaced(virtual_client.clone(), "default");
    services
        .create(&PostParams::default(), &service)
        .await
        .expect("create the service");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}
    }))
    .expect("pod");
    let pods: Api<Pod> = Api::namespaced(virtual_client.clone(), "default");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");

    // The virtual service's address is the host service's; DNS answers it.
    let host_services: Api<Service> = Api::namespaced(host_client.clone(), &running.host_namespace);
    let host_ip: IpAddr = eventually("the host service's cluster IP", || async {
        host_services
            .get_opt("web-x-default-x-demo")
            .await
            .ok()
            .flatten()
            .and_then(|s| s.spec?.cluster_ip)
            .and_then(|ip| ip.parse().ok())
    })
    .await;
    let found = eventually("the service's A record", || async {
        a_records(&resolver, "web.default.svc.cluster.local.")
            .await
            .filter(|ips| ips == &vec![host_ip])
    })
    .await;
    assert_eq!(found, vec![host_ip]);

    // `kubernetes.default.svc` names where pods reach the virtual API
    // server (not the virtual Service's unroutable cluster IP).
    let found = eventually("the kubernetes service's A record", || async {
        a_records(&resolver, "kubernetes.default.svc.cluster.local.").await
    })
    .await;
    assert_eq!(found, vec![running.virtual_addr.ip()]);

    // The host pod resolves through that server, in its virtual namespace,
    // and reaches the virtual API server as `kubernetes`.
    let host_pods: Api<Pod> = Api::namespaced(host_client.clone(), &running.host_namespace);
    let host_pod = eventually("the host pod", || async {
        host_pods
            .get_opt("app-x-default-x-demo")
            .await
            .ok()
            .flatten()
    })
    .await;
    let spec = host_pod.spec.expect("spec");
    assert_eq!(spec.dns_policy.as_deref(), Some("None"));
    let dns = spec.dns_config.expect("dnsConfig");
    assert_eq!(
        dns.nameservers,
        Some(vec![running.dns_addr.ip().to_string()])
    );
    assert_eq!(
        dns.searches,
        Some(vec![
            "default.svc.cluster.local".to_owned(),
            "svc.cluster.local".to_owned(),
            "cluster.local".to_owned()
        ])
    );
    let env = spec.containers[0].env.clone().unwrap_or_default();
    let value = |name: &str| {
        env.iter()
            .find(|v| v.name == name)
            .and_then(|v| v.value.clone())
    };
    assert_eq!(
        value("KUBERNETES_SERVICE_HOST"),
        Some(running.virtual_addr.ip().to_string())
    );
    assert_eq!(
        value("KUBERNETES_SERVICE_PORT"),
        Some(running.virtual_addr.port().to_string())
    );

    // The pod's own record, once the simulated node gave it an address.
    let pod_ip: IpAddr = eventually("the pod's IP", || async {
        pods.get("app")
            .await
            .ok()
            .and_then(|p| p.status?.pod_ip)
            .and_then(|ip| ip.parse().ok())
    })
    .await;
    let dashed = pod_ip.to_string().replace('.', "-");
    let found = eventually("the pod's A record", || async {
        a_records(&resolver, &format!("{dashed}.default.pod.cluster.local.")).await
    })
    .await;
    assert_eq!(found, vec![pod_ip]);

    // A deleted service's name is gone.
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("NXDOMAIN for the deleted service", || async {
        match resolver
            .lookup("web.default.svc.cluster.local.", RecordType::A)
            .await
        {
            Err(err) if err.is_nx_domain() => Some(()),
            _ => None,
        }
    })
    .await;

    running.shutdown().await;
}
