//! End to end: services between a virtual and a host API server. The host
//! has its own service range; the virtual API server accepts it as an
//! extra range, so virtual services can take the host's addresses. Every
//! wait has a deadline.

mod common;

use std::sync::Arc;

use common::{
    config, eventually, object, start_syncer_to, Cluster, Environment, Host, HostKind,
    HOST_SERVICE_CIDR,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vcluster_core::markers::{MANAGED_BY_LABEL, NAMESPACE_LABEL};
use vcluster_testkit::eventually_gone;
use vcluster_testkit::fault_proxy::Fault;

on_both_hosts!(
    a_service_runs_on_the_host_and_the_virtual_one_takes_the_host_addresses,
    headless_and_external_name_services_keep_their_kind_of_address,
    without_the_host_range_the_virtual_service_keeps_its_address,
    a_re_created_service_keeps_its_field_managers_for_server_side_apply,
    services_created_at_once_keep_their_uid_and_the_hosts_address,
    a_host_unreachable_at_create_falls_back_and_says_so,
    the_python_client_reads_back_what_it_created,
);

fn in_host_range(ip: &str) -> bool {
    let prefix = HOST_SERVICE_CIDR.trim_end_matches(".0.0/16");
    ip.starts_with(&format!("{prefix}."))
}

fn node_ports(service: &Service) -> Vec<Option<i32>> {
    service
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| p.node_port)
        .collect()
}

async fn a_service_runs_on_the_host_and_the_virtual_one_takes_the_host_addresses(host: HostKind) {
    let env = Environment::start_with(host, "svc1", |_| {}).await;
    let vsvc = env.virtual_cluster.api::<Service>("default");
    let hsvc = env.host.api::<Service>(&env.host_namespace);
    let created = vsvc
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"note": "kept"}},
                // A load balancer: node ports to adopt, and a status that
                // a real API server lets the (simulated) cloud set.
                "spec": {
                    "type": "LoadBalancer",
                    "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                },
            })),
        )
        .await
        .expect("create service");
    let first_uid = created.metadata.uid.clone();

    // On the host: translated selector, host-allocated address.
    let host_name = env.host_name("default", "web");
    let host = eventually("the host service", || async {
        hsvc.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    let spec = host.spec.clone().expect("spec");
    let selector = spec.selector.clone().expect("selector");
    assert_eq!(selector["app"], "web");
    assert_eq!(selector[MANAGED_BY_LABEL], "svc1");
    assert_eq!(selector[NAMESPACE_LABEL], "default");
    let host_ip = spec.cluster_ip.clone().expect("host cluster IP");
    assert!(
        in_host_range(&host_ip),
        "{host_ip} comes from the host's range"
    );

    // The virtual service was created with the host's address and node
    // ports (the host reserved them first): the create's answer already
    // had them, and it is never re-created.
    assert_eq!(
        created.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()),
        Some(host_ip.as_str()),
        "the create response carries the host's address"
    );
    let virt = vsvc.get("web").await.expect("the virtual service");
    assert_eq!(virt.metadata.uid, first_uid, "never re-created");
    assert_eq!(virt.metadata.labels.as_ref().expect("labels")["app"], "web");
    assert_eq!(
        virt.metadata.annotations.as_ref().expect("annotations")["note"],
        "kept"
    );
    let virt_spec = virt.spec.clone().expect("spec");
    assert_eq!(virt_spec.selector.expect("selector")["app"], "web");
    assert_eq!(virt_spec.cluster_ips, Some(vec![host_ip.clone()]));
    let host = hsvc.get(&host_name).await.expect("host service");
    assert_eq!(node_ports(&virt), node_ports(&host));
    assert!(node_ports(&host)[0].is_some());

    // A new port follows to the host; the host's node port comes back.
    vsvc.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": node_ports(&virt)[0]},
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443},
        ]}})),
    )
    .await
    .expect("add a port");
    let host = eventually("the host service with two ports", || async {
        let s = hsvc.get(&host_name).await.ok()?;
        (node_ports(&s).len() == 2).then_some(s)
    })
    .await;
    assert_eq!(
        node_ports(&host)[0],
        node_ports(&virt)[0],
        "the host keeps its node port"
    );
    eventually("the virtual service with the host's node ports", || async {
        let s = vsvc.get("web").await.ok()?;
        let host = hsvc.get(&host_name).await.ok()?;
        (node_ports(&s) == node_ports(&host)
            && s.spec.as_ref()?.cluster_ip.as_deref() == Some(host_ip.as_str()))
        .then_some(())
    })
    .await;

    // The host's load balancer status flows back.
    hsvc.patch_status(
        &host_name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}})),
    )
    .await
    .expect("host status");
    eventually("the virtual status", || async {
        let s = vsvc.get("web").await.ok()?;
        let ingress = s.status?.load_balancer?.ingress?;
        (ingress.first()?.ip.as_deref() == Some("203.0.113.7")).then_some(())
    })
    .await;

    // A selector change follows; removing it removes it on the host.
    vsvc.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"selector": {"app": "api"}}})),
    )
    .await
    .expect("selector");
    eventually("the host selector updated", || async {
        let s = hsvc.get(&host_name).await.ok()?;
        (s.spec?.selector?.get("app").map(String::as_str) == Some("api")).then_some(())
    })
    .await;
    vsvc.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"selector": null}})),
    )
    .await
    .expect("no selector");
    eventually("the host selector removed", || async {
        let s = hsvc.get(&host_name).await.ok()?;
        s.spec?.selector.is_none_or(|s| s.is_empty()).then_some(())
    })
    .await;

    // The virtual API server's own service never reaches the host.
    assert!(hsvc
        .get_opt(&env.host_name("default", "kubernetes"))
        .await
        .expect("get")
        .is_none());

    vsvc.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually_gone("the host service gone", &hsvc, &host_name).await;
}

async fn headless_and_external_name_services_keep_their_kind_of_address(host: HostKind) {
    let env = Environment::start_with(host, "svc2", |_| {}).await;
    let vsvc = env.virtual_cluster.api::<Service>("default");
    let hsvc = env.host.api::<Service>(&env.host_namespace);
    vsvc.create(
        &PostParams::default(),
        &object(json!({
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]},
        })),
    )
    .await
    .expect("headless");
    vsvc.create(
        &PostParams::default(),
        &object(json!({
            "metadata": {"name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"},
        })),
    )
    .await
    .expect("external name");
    let headless = eventually("the headless host service", || async {
        hsvc.get_opt(&env.host_name("default", "db"))
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(
        headless.spec.expect("spec").cluster_ip.as_deref(),
        Some("None")
    );
    let external = eventually("the external name host service", || async {
        hsvc.get_opt(&env.host_name("default", "ext"))
            .await
            .ok()
            .flatten()
    })
    .await;
    let spec = external.spec.expect("spec");
    assert_eq!(spec.external_name.as_deref(), Some("db.example.com"));
    assert_eq!(spec.selector, None);
    // Both keep their virtual identity (nothing to adopt).
    let db = vsvc.get("db").await.expect("db");
    assert_eq!(db.spec.expect("spec").cluster_ip.as_deref(), Some("None"));
}

async fn without_the_host_range_the_virtual_service_keeps_its_address(host: HostKind) {
    // The virtual API server does not accept the host's range.
    let env = Environment::start_custom(host, "svc3", |_| {}, |_| {}).await;
    let vsvc = env.virtual_cluster.api::<Service>("default");
    let hsvc = env.host.api::<Service>(&env.host_namespace);
    let created = vsvc
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
            })),
        )
        .await
        .expect("create");
    let host_name = env.host_name("default", "web");
    eventually("the host service", || async {
        hsvc.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    // A later change reaching the host proves the syncer has looked at the
    // service since; it must not have deleted it.
    vsvc.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"checked": "yes"}}})),
    )
    .await
    .expect("label");
    eventually("the host label", || async {
        let s = hsvc.get(&host_name).await.ok()?;
        (s.metadata.labels?.get("checked").map(String::as_str) == Some("yes")).then_some(())
    })
    .await;
    let virt = vsvc.get("web").await.expect("still there");
    assert_eq!(virt.metadata.uid, created.metadata.uid, "not re-created");
    assert_eq!(
        virt.spec.and_then(|s| s.cluster_ip),
        created.spec.and_then(|s| s.cluster_ip)
    );
}

/// The managers named in an object's `managedFields`, with their operation.
fn managers(service: &Service) -> Vec<(String, String)> {
    service
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|e| {
            (
                e.manager.clone().unwrap_or_default(),
                e.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

async fn a_re_created_service_keeps_its_field_managers_for_server_side_apply(host: HostKind) {
    // The fallback path: the virtual API server allocates, the syncer
    // re-creates the service with the host's address.
    let env = Environment::start_without_host_addresses(host, "svc-ssa").await;
    let vsvc = env.virtual_cluster.api::<Service>("default");
    let hsvc = env.host.api::<Service>(&env.host_namespace);
    let manifest = |ports: serde_json::Value| {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "dns"},
            "spec": {"selector": {"app": "dns"}, "ports": ports},
        })
    };
    let tenant = PatchParams::apply("tenant");
    let udp = json!([{"name": "dns", "port": 53, "protocol": "UDP"}]);
    vsvc.patch("dns", &tenant, &Patch::Apply(manifest(udp)))
        .await
        .expect("server-side apply");

    // The syncer re-creates the virtual service with the host's address,
    // then gives the tenant's field ownership back (a create records its
    // own manager as the owner of every field; the restore follows it).
    let host_name = env.host_name("default", "dns");
    let recreated = eventually(
        "the virtual service re-created with the host's IP and the tenant's apply",
        || async {
            let host_ip = hsvc.get_opt(&host_name).await.ok()??.spec?.cluster_ip?;
            let service = vsvc.get_opt("dns").await.ok()??;
            let tenant_kept = managers(&service).contains(&("tenant".into(), "Apply".into()));
            (service.spec.as_ref()?.cluster_ip.as_deref() == Some(host_ip.as_str()) && tenant_kept)
                .then_some(service)
        },
    )
    .await;
    assert!(
        managers(&recreated).iter().all(|(m, _)| m != "unknown"),
        "{:?}",
        managers(&recreated)
    );

    // The tenant's next apply (a TCP port added) is not a conflict.
    let both = json!([
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]);
    let applied = vsvc
        .patch("dns", &tenant, &Patch::Apply(manifest(both)))
        .await
        .expect("the tenant's second apply");
    assert_eq!(applied.spec.and_then(|s| s.ports).map(|p| p.len()), Some(2));
    // Another manager renaming the tenant's UDP port still conflicts,
    // naming the tenant.
    let other = PatchParams::apply("other");
    let renamed = json!([{"name": "domain", "port": 53, "protocol": "UDP"}]);
    let err = vsvc
        .patch("dns", &other, &Patch::Apply(manifest(renamed)))
        .await
        .expect_err("a conflict");
    assert!(err.to_string().contains("tenant"), "{err}");
}

async fn services_created_at_once_keep_their_uid_and_the_hosts_address(host: HostKind) {
    const N: usize = 20;
    let env = Environment::start_with(host, "svc-many", |_| {}).await;
    let vsvc = env.virtual_cluster.api::<Service>("default");
    let hsvc = env.host.api::<Service>(&env.host_namespace);
    let created: Vec<Service> = futures::stream::iter(0..N)
        .map(|i| {
            let vsvc = vsvc.clone();
            async move {
                vsvc.create(
                    &PostParams::default(),
                    &object(json!({
                        "metadata": {"name": format!("svc-{i}")},
                        "spec": {"type": "NodePort", "selector": {"app": format!("a{i}")}, "ports": [{"port": 80}]},
                    })),
                )
                .await
                .expect("create")
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    for service in &created {
        let name = service.metadata.name.clone().expect("name");
        let spec = service.spec.clone().expect("spec");
        let ip = spec.cluster_ip.clone().expect("cluster IP");
        assert!(in_host_range(&ip), "{name}: {ip} is the host's");
        // The host service holds the same addresses.
        let host = hsvc
            .get(&env.host_name("default", &name))
            .await
            .expect("the host service exists before the create answered");
        assert_eq!(
            host.spec.as_ref().and_then(|s| s.cluster_ip.clone()),
            Some(ip)
        );
        assert_eq!(node_ports(&host), node_ports(service), "{name}");
        // A change reaching the host proves the syncer has looked at it.
        vsvc.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"seen": "yes"}}})),
        )
        .await
        .expect("label");
    }
    for service in &created {
        let name = service.metadata.name.clone().expect("name");
        let host_name = env.host_name("default", &name);
        eventually("the label on the host", || async {
            let s = hsvc.get(&host_name).await.ok()?;
            (s.metadata.labels?.get("seen").map(String::as_str) == Some("yes")).then_some(())
        })
        .await;
        let now = vsvc.get(&name).await.expect("still there");
        assert_eq!(
            now.metadata.uid, service.metadata.uid,
            "{name} never re-created"
        );
        assert_eq!(
            now.spec.and_then(|s| s.cluster_ip),
            service.spec.clone().and_then(|s| s.cluster_ip),
            "{name}"
        );
    }
}

async fn a_host_unreachable_at_create_falls_back_and_says_so(kind: HostKind) {
    let host = Host::start(kind).await;
    let host_namespace = "vcluster-svc-down";
    host.create_namespace(host_namespace).await;
    // The provider reaches the host through a proxy that fails every
    // request; the syncer goes straight to the host.
    let proxy = host.fault_proxy().await;
    proxy.set(Fault::Error500);
    let mut sync_config = config("svc-down", host_namespace);
    let provider = sync_config
        .host_service_addresses(proxy.client())
        .expect("provider");
    let virtual_cluster = Cluster::start_configured(|v| {
        v.extra_service_cidrs = vec![HOST_SERVICE_CIDR.to_owned()];
        v.service_addresses = Some(Arc::new(provider));
    })
    .await;
    let syncer = start_syncer_to(&virtual_cluster, host.client.clone(), sync_config);
    let vsvc = virtual_cluster.api::<Service>("default");
    let created = vsvc
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})),
        )
        .await
        .expect("the create succeeds without the host");
    let own_ip = created.spec.and_then(|s| s.cluster_ip).expect("an address");
    assert!(
        !in_host_range(&own_ip),
        "{own_ip} is the virtual cluster's own"
    );
    let events = virtual_cluster.api::<Event>("default");
    let event = eventually("an event saying so", || async {
        events
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("HostAddressesUnavailable"))
    })
    .await;
    assert_eq!(event.involved_object.name.as_deref(), Some("web"));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    // The syncer reaches the host and re-creates the service with the
    // host's address, as before there was a provider.
    eventually("the virtual service with the host's address", || async {
        let ip = vsvc.get("web").await.ok()?.spec?.cluster_ip?;
        in_host_range(&ip).then_some(())
    })
    .await;
    syncer.stop().await;
}

/// The report that started this: with the official Python client, create
/// a Service and read it back 20 ms later, 50 times.
async fn the_python_client_reads_back_what_it_created(host: HostKind) {
    const COUNT: usize = 50;
    let env = Environment::start_with(host, "svc-py", |_| {}).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/service_identity.py");
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(vcluster_testkit::python::interpreter())
            .arg(&script)
            .arg(&env.virtual_cluster.url)
            .arg("default")
            .arg(COUNT.to_string())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the script finishes in time")
    .expect("the script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.lines().last() == Some("DONE"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let same: Vec<&str> = stdout.lines().filter(|l| l.starts_with("SAME ")).collect();
    assert_eq!(same.len(), COUNT, "{stdout}");
    for line in same {
        let ip = line.split(' ').nth(2).unwrap_or_default();
        assert!(
            in_host_range(ip),
            "{line}: the host's address from the start"
        );
    }
}
