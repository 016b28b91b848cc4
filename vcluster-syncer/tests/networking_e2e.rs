//! End to end: the optional networking syncers. Ingresses reach the host
//! pointing at host services and bring their TLS secrets along; network
//! policies select the host copies of the tenant's pods. Every wait has a
//! deadline.

mod common;

use common::{eventually, object, Environment, HostKind};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vcluster_core::markers::{MANAGED_BY_LABEL, NAMESPACE_LABEL};
use vcluster_testkit::eventually_gone;

on_both_hosts!(
    an_ingress_routes_to_host_services_with_its_tls_secret,
    a_network_policy_selects_only_the_tenants_pods,
);

async fn an_ingress_routes_to_host_services_with_its_tls_secret(host: HostKind) {
    let env = Environment::start_with(host, "ing1", |c| c.syncers.ingresses = true).await;
    let vsecrets = env.virtual_cluster.api::<Secret>("default");
    let hsecrets = env.host.api::<Secret>(&env.host_namespace);
    let vingresses = env.virtual_cluster.api::<Ingress>("default");
    let hingresses = env.host.api::<Ingress>(&env.host_namespace);

    vsecrets
        .create(
            &PostParams::default(),
            &object(
                json!({"metadata": {"name": "shop-tls"}, "type": "kubernetes.io/tls",
                "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}}),
            ),
        )
        .await
        .expect("secret");
    vingresses
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "shop"},
                "spec": {
                    "ingressClassName": "nginx",
                    "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                    "rules": [{"host": "shop.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend", "port": {"number": 80}}}},
                    ]}}],
                },
            })),
        )
        .await
        .expect("ingress");

    let host_name = env.host_name("default", "shop");
    let host = eventually("the host ingress", || async {
        hingresses.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    let spec = host.spec.expect("spec");
    let backend = spec.rules.expect("rules")[0]
        .http
        .as_ref()
        .expect("http")
        .paths[0]
        .backend
        .service
        .clone()
        .expect("service");
    assert_eq!(backend.name, env.host_name("default", "frontend"));
    let secret_name = env.host_name("default", "shop-tls");
    assert_eq!(
        spec.tls.expect("tls")[0].secret_name.as_deref(),
        Some(secret_name.as_str())
    );
    eventually("the TLS secret on the host", || async {
        hsecrets.get_opt(&secret_name).await.ok().flatten()
    })
    .await;

    // A backend change follows; the load balancer address comes back.
    vingresses
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}}}})),
        )
        .await
        .expect("default backend");
    eventually("the host default backend", || async {
        let i = hingresses.get(&host_name).await.ok()?;
        let name = i.spec?.default_backend?.service?.name;
        (name == env.host_name("default", "fallback")).then_some(())
    })
    .await;
    hingresses
        .patch_status(
            &host_name,
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.4"}]}}}),
            ),
        )
        .await
        .expect("host status");
    eventually("the virtual status", || async {
        let i = vingresses.get("shop").await.ok()?;
        let ip = i.status?.load_balancer?.ingress?.first()?.ip.clone();
        (ip.as_deref() == Some("198.51.100.4")).then_some(())
    })
    .await;

    vingresses
        .delete("shop", &DeleteParams::default())
        .await
        .expect("delete");
    eventually_gone("the host ingress gone", &hingresses, &host_name).await;
}

async fn a_network_policy_selects_only_the_tenants_pods(host: HostKind) {
    let env = Environment::start_with(host, "np1", |c| c.syncers.network_policies = true).await;
    let vpolicies = env.virtual_cluster.api::<NetworkPolicy>("shop");
    let hpolicies = env.host.api::<NetworkPolicy>(&env.host_namespace);
    env.virtual_cluster.create_namespace("shop").await;
    vpolicies
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "db"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "db"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [
                        {"podSelector": {"matchLabels": {"app": "api"}}},
                        {"namespaceSelector": {"matchLabels": {"team": "ops"}}},
                        {"ipBlock": {"cidr": "10.0.0.0/8"}},
                    ]}],
                },
            })),
        )
        .await
        .expect("policy");
    let host_name = env.host_name("shop", "db");
    let host = eventually("the host policy", || async {
        hpolicies.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    let spec = host.spec.expect("spec");
    let selector = spec
        .pod_selector
        .expect("selector")
        .match_labels
        .expect("labels");
    assert_eq!(selector["app"], "db");
    assert_eq!(selector[NAMESPACE_LABEL], "shop");
    assert_eq!(selector[MANAGED_BY_LABEL], "np1");
    let from = spec.ingress.expect("ingress")[0]
        .from
        .clone()
        .expect("from");
    assert_eq!(
        from[0]
            .pod_selector
            .as_ref()
            .expect("pods")
            .match_labels
            .as_ref()
            .expect("labels")[NAMESPACE_LABEL],
        "shop"
    );
    assert!(from[1].namespace_selector.is_none());
    assert!(from[1]
        .pod_selector
        .as_ref()
        .expect("pods")
        .match_labels
        .as_ref()
        .expect("labels")
        .keys()
        .any(|k| k.starts_with("vcluster.loft.sh/ns-label-np1-x-")));
    assert_eq!(from[2].ip_block.as_ref().expect("block").cidr, "10.0.0.0/8");

    // Removing the ingress rules removes them on the host.
    vpolicies
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"ingress": null}})),
        )
        .await
        .expect("patch");
    eventually("the host rules removed", || async {
        let p = hpolicies.get(&host_name).await.ok()?;
        p.spec?.ingress.is_none_or(|i| i.is_empty()).then_some(())
    })
    .await;
}
