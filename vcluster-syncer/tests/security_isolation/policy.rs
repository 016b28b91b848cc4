//! The host's isolation policy: pods it forbids, and the resource limits
//! it keeps in the host namespace.

use super::*;

on_both_hosts!(
    pods_the_policy_forbids_are_not_synced_and_say_why,
    resource_limits_are_kept_in_the_host_namespace_and_removed_when_disabled,
);

async fn pods_the_policy_forbids_are_not_synced_and_say_why(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    let host_ns = "vcluster-vc";
    host.create_namespace(host_ns).await;
    let baseline = Tenant::start("vc", &host, host_ns, |c| {
        c.pod_policy.allow.host_path_prefixes = vec!["/var/log".into()]
    })
    .await;
    let pods = baseline.cluster.api::<Pod>("default");
    let hostile: [(&str, serde_json::Value, &str); 4] = [
        ("host-net", json!({"hostNetwork": true}), "spec.hostNetwork"),
        ("host-pid", json!({"hostPID": true}), "spec.hostPID"),
        (
            "root-fs",
            json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
            "hostPath",
        ),
        (
            "escape",
            json!({"volumes": [{"name": "up", "hostPath": {"path": "/var/log/../../etc"}}]}),
            "hostPath",
        ),
    ];
    for (name, extra, _) in &hostile {
        let mut spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        create(
            &pods,
            &common::object(json!({"metadata": {"name": name}, "spec": spec})),
        )
        .await;
    }
    let privileged: Pod = common::object(json!({
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "app", "image": "nginx", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}]},
    }));
    create(&pods, &privileged).await;
    create(&pods, &test_pod("fine", None, &[])).await;
    let logs: Pod = common::object(json!({
        "metadata": {"name": "logs"},
        "spec": {"volumes": [{"name": "l", "hostPath": {"path": "/var/log/pods"}}], "containers": [{"name": "app", "image": "nginx"}]},
    }));
    create(&pods, &logs).await;

    let hpods = host.api::<Pod>(host_ns);
    for name in ["fine", "logs"] {
        eventually(&format!("{name} on the host"), || async {
            hpods
                .get_opt(&format!("{name}-x-default-x-vc"))
                .await
                .ok()
                .flatten()
        })
        .await;
    }
    let events = baseline.cluster.api::<Event>("default");
    let blocked = hostile
        .iter()
        .map(|(name, _, field)| (*name, *field))
        .chain([("privileged", "securityContext.privileged")]);
    for (name, field) in blocked {
        let condition = eventually(&format!("{name} reported as blocked"), || async {
            let pod = pods.get(name).await.ok()?;
            pod_condition(&pod, "PodScheduled")
                .filter(|c| c.reason.as_deref() == Some(SYNC_BLOCKED))
        })
        .await;
        let message = condition.message.unwrap_or_default();
        assert!(
            message.contains(field) && message.contains("baseline"),
            "{name}: {message}"
        );
        let event = eventually(&format!("an event about {name}"), || async {
            let list = events.list(&ListParams::default()).await.ok()?.items;
            list.into_iter().find(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(SYNC_BLOCKED)
            })
        })
        .await;
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert!(hpods
            .get_opt(&format!("{name}-x-default-x-vc"))
            .await
            .expect("get")
            .is_none());
    }
    let privileged_message =
        pod_condition(&pods.get("privileged").await.expect("pod"), "PodScheduled")
            .and_then(|c| c.message)
            .unwrap_or_default();
    assert!(
        privileged_message.contains("SYS_ADMIN"),
        "{privileged_message}"
    );
    // One event per pod, not one per reconcile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let count = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("privileged"))
        .count();
    assert_eq!(count, 1);
    baseline.syncer.stop_within(Duration::from_secs(10)).await;

    // Restricted: a default pod is refused, a hardened one runs.
    let restricted_ns = "vcluster-strict";
    host.create_namespace(restricted_ns).await;
    let strict = Tenant::start("strict", &host, restricted_ns, |c| {
        c.pod_policy.level = PodSecurityLevel::Restricted
    })
    .await;
    let pods = strict.cluster.api::<Pod>("default");
    create(&pods, &test_pod("plain", None, &[])).await;
    let hardened: Pod = common::object(json!({
        "metadata": {"name": "hardened"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "nginx", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}
            }}],
        },
    }));
    create(&pods, &hardened).await;
    let hpods = host.api::<Pod>(restricted_ns);
    eventually("the hardened pod on the host", || async {
        hpods
            .get_opt("hardened-x-default-x-strict")
            .await
            .ok()
            .flatten()
    })
    .await;
    let condition = eventually("the plain pod reported as blocked", || async {
        let pod = pods.get("plain").await.ok()?;
        pod_condition(&pod, "PodScheduled").filter(|c| c.reason.as_deref() == Some(SYNC_BLOCKED))
    })
    .await;
    let message = condition.message.unwrap_or_default();
    for expected in [
        "restricted",
        "runAsNonRoot",
        "allowPrivilegeEscalation",
        "seccomp",
        "ALL",
    ] {
        assert!(message.contains(expected), "{expected} missing: {message}");
    }
    assert!(hpods
        .get_opt("plain-x-default-x-strict")
        .await
        .expect("get")
        .is_none());
    strict.syncer.stop_within(Duration::from_secs(10)).await;
}

async fn resource_limits_are_kept_in_the_host_namespace_and_removed_when_disabled(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    let host_ns = "vcluster-lim";
    host.create_namespace(host_ns).await;
    let quotas = host.api::<ResourceQuota>(host_ns);
    let ranges = host.api::<LimitRange>(host_ns);
    // An administrator's LimitRange already holds the name the syncer would use.
    let range_name = HostLimitsSyncer::object_name("lim", "limits");
    let foreign: LimitRange = common::object(json!({
        "metadata": {"name": range_name},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "8"}}]},
    }));
    let foreign = create(&ranges, &foreign).await;

    let quota_spec: ResourceQuotaSpec = common::object(
        json!({"hard": {"pods": "10", "requests.cpu": "4", "requests.memory": "8Gi"}}),
    );
    let range_spec: LimitRangeSpec = common::object(json!({
        "limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]
    }));
    let limits = HostLimits {
        quota: Some(quota_spec.clone()),
        limit_range: Some(range_spec.clone()),
    };
    let tenant = Tenant::start("lim", &host, host_ns, |c| c.host_limits = limits.clone()).await;
    let quota_name = HostLimitsSyncer::object_name("lim", "quota");
    let quota = eventually("the quota on the host", || async {
        quotas.get_opt(&quota_name).await.ok().flatten()
    })
    .await;
    assert_eq!(quota.spec.as_ref(), Some(&quota_spec));
    assert_eq!(
        quota.labels().get(MANAGED_BY_LABEL).map(String::as_str),
        Some("lim")
    );
    assert_eq!(
        quota.labels().get(HOST_LIMITS_LABEL).map(String::as_str),
        Some("true")
    );
    // The foreign LimitRange is refused, not overwritten.
    refused(&tenant, "hostlimits", 0, 1).await;
    let range_now = ranges.get(&range_name).await.expect("foreign range");
    assert_eq!(
        range_now.metadata.resource_version,
        foreign.metadata.resource_version
    );

    // Changed or deleted behind the syncer's back: put back.
    quotas
        .patch(
            &quota_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"pods": "1000"}}})),
        )
        .await
        .expect("tamper");
    eventually("the quota restored", || async {
        let quota = quotas.get_opt(&quota_name).await.ok().flatten()?;
        (quota.spec.as_ref() == Some(&quota_spec)).then_some(())
    })
    .await;
    quotas
        .delete(&quota_name, &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the quota re-created", || async {
        quotas.get_opt(&quota_name).await.ok().flatten()
    })
    .await;
    tenant.syncer.stop_within(Duration::from_secs(10)).await;

    // Once the administrator's range is gone, the syncer's takes its place.
    ranges
        .delete(&range_name, &DeleteParams::default())
        .await
        .expect("delete the foreign range");
    let tenant = Tenant::start_on(tenant.cluster, "lim", &host, host_ns, |c| {
        c.host_limits = limits.clone()
    });
    let range = eventually("the syncer's LimitRange", || async {
        ranges.get_opt(&range_name).await.ok().flatten()
    })
    .await;
    assert_eq!(range.spec.as_ref(), Some(&range_spec));
    tenant.syncer.stop_within(Duration::from_secs(10)).await;

    // Disabled: both removed; an unmarked quota elsewhere in the namespace stays.
    let unrelated = create(
        &quotas,
        &common::object(
            json!({"metadata": {"name": "admin-quota"}, "spec": {"hard": {"pods": "100"}}}),
        ),
    )
    .await;
    let tenant = Tenant::start_on(tenant.cluster, "lim", &host, host_ns, |_| {});
    eventually("the limits removed", || async {
        let quota = quotas.get_opt(&quota_name).await.ok()?;
        let range = ranges.get_opt(&range_name).await.ok()?;
        (quota.is_none() && range.is_none()).then_some(())
    })
    .await;
    let still = quotas
        .get("admin-quota")
        .await
        .expect("admin's quota stays");
    assert_eq!(still.metadata.uid, unrelated.metadata.uid);
    tenant.syncer.stop_within(Duration::from_secs(10)).await;
}
