//! `vcluster.yaml`: defaults, each mapping onto the demo and the syncer,
//! and the errors users see (unknown keys, unsupported keys, conflicts,
//! bad values), plus the committed schema and the docs kept in step with
//! the types.

use std::collections::BTreeSet;
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use vcluster_apiserver::storage::StorageConfig;
use vcluster_syncer::runner::{EnabledSyncers, Selection};
use vcluster_syncer::syncers::nodes::{NodeMode, NodeSelection};
use vcluster_syncer::PodSecurityLevel;

use super::*;

fn load(yaml: &str) -> VClusterConfig {
    VClusterConfig::from_yaml(yaml).unwrap_or_else(|e| panic!("{yaml}\n=> {e}"))
}

fn error(yaml: &str) -> ConfigError {
    match VClusterConfig::from_yaml(yaml) {
        Ok(config) => panic!("{yaml}\nshould not load, got {config:?}"),
        Err(e) => e,
    }
}

fn manifest_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

#[test]
fn an_empty_file_is_the_defaults_and_changes_nothing_in_the_demo() {
    // A key without a value (all its children commented out) is its
    // defaults, as in vCluster's Helm values.
    for empty in [
        "",
        "# nothing\n",
        "---\n",
        "{}",
        "sync:\n",
        "sync:\n  toHost:\n    services:\n",
    ] {
        assert_eq!(load(empty), VClusterConfig::default(), "{empty:?}");
    }
    let before = DemoOptions::new("/tmp/x");
    let mut after = before.clone();
    VClusterConfig::default()
        .apply_to_demo(&mut after)
        .expect("apply");
    assert_eq!(format!("{before:?}"), format!("{after:?}"));
}

#[test]
fn defaults_are_vclusters_where_vcluster_rs_behaves_alike() {
    let config = VClusterConfig::default();
    let syncers = config.sync.enabled_syncers();
    let expected = EnabledSyncers::default();
    assert_eq!(format!("{syncers:?}"), format!("{expected:?}"));
    assert_eq!(config.sync.node_mode(), NodeMode::Real);
    assert_eq!(config.sync.node_selection(), None);
    let ha = &config.control_plane.stateful_set.high_availability;
    assert_eq!(
        (
            ha.replicas,
            ha.lease_duration,
            ha.renew_deadline,
            ha.retry_period
        ),
        (1, 60, 40, 15)
    );
    assert_eq!(
        config.control_plane.backing_store.storage().expect("store"),
        None
    );
    assert!(config.control_plane.persistent_volume());
    assert_eq!(
        config
            .control_plane
            .stateful_set
            .persistence
            .volume_claim
            .size,
        Quantity::from("5Gi")
    );
    assert_eq!(config.policies.host_limits(), Default::default());
    assert_eq!(
        config.policies.pod_policy().level,
        PodSecurityLevel::Baseline
    );
    assert_eq!(config.networking.advanced.cluster_domain, "cluster.local");
    assert_eq!(config.networking.pod_cidr, "10.244.0.0/16");
    assert_eq!(config.export_kube_config.secret_name("team"), "vc-team");
}

#[test]
fn sync_keys_map_onto_the_syncers() {
    let config = load(
        "
sync:
  toHost:
    pods: {enabled: true}
    services: {enabled: false}
    endpoints: {enabled: false}
    persistentVolumeClaims: {enabled: false}
    configMaps: {all: true}
    secrets: {enabled: false, all: true}
    ingresses: {enabled: true}
    serviceAccounts: {enabled: true}
    networkPolicies: {enabled: true}
    podDisruptionBudgets: {enabled: true}
    priorityClasses: {enabled: false}
    customResources:
      widgets.example.com: {enabled: false, scope: Namespaced}
  fromHost:
    events: {enabled: false}
    nodes: {enabled: false, selector: {all: true}}
    storageClasses: {enabled: true}
    ingressClasses: {enabled: true}
    priorityClasses: {enabled: true}
",
    );
    let s = config.sync.enabled_syncers();
    assert!(s.pods && !s.services && !s.endpoints && !s.endpoint_slices);
    assert!(!s.persistent_volume_claims && !s.events && s.nodes);
    assert_eq!(s.config_maps, Selection::All);
    assert_eq!(s.secrets, Selection::Off);
    assert!(s.ingresses && s.service_accounts && s.network_policies && s.pod_disruption_budgets);
    assert!(s.storage_classes && s.ingress_classes && s.priority_classes);
    assert_eq!(config.sync.node_mode(), NodeMode::fake());
    assert_eq!(config.sync.node_selection(), Some(NodeSelection::All));
    // `auto` storage classes follow the (absent) virtual scheduler: off.
    let auto = load("sync: {fromHost: {storageClasses: {enabled: auto}}}");
    assert!(!auto.sync.enabled_syncers().storage_classes);
    let used = load("sync: {fromHost: {nodes: {selector: {all: false}}}}");
    assert_eq!(used.sync.node_selection(), Some(NodeSelection::Used));
}

#[test]
fn the_backing_store_maps_onto_storage_configs() {
    let sqlite = load("controlPlane: {backingStore: {database: {embedded: {enabled: true}}}}");
    assert_eq!(
        sqlite.control_plane.backing_store.storage().expect("store"),
        None
    );
    let etcd = load(
        "
controlPlane:
  backingStore:
    etcd:
      external:
        enabled: true
        endpoint: etcd-0:2379,https://etcd-1
        tls: {caFile: /pki/ca.pem, certFile: /pki/c.pem, keyFile: /pki/k.pem}
",
    );
    let store = etcd.control_plane.backing_store.storage().expect("store");
    let Some(StorageConfig::Etcd { endpoints, tls, .. }) = store else {
        panic!("{store:?}")
    };
    assert_eq!(endpoints, ["https://etcd-0:2379", "https://etcd-1:2379"]);
    let tls = tls.expect("tls");
    assert_eq!(tls.ca, PathBuf::from("/pki/ca.pem"));
    assert_eq!(
        tls.client,
        Some((PathBuf::from("/pki/c.pem"), PathBuf::from("/pki/k.pem")))
    );
    // No persistent volume is needed when the store is elsewhere.
    assert!(!etcd.control_plane.persistent_volume());
    let plain = load("controlPlane: {backingStore: {etcd: {external: {enabled: true, endpoint: 127.0.0.1:2379}}}}");
    assert_eq!(
        plain.control_plane.backing_store.storage().expect("store"),
        Some(StorageConfig::Etcd {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: String::new(),
            tls: None
        })
    );
    let mut options = DemoOptions::new("/tmp/x");
    plain.apply_to_demo(&mut options).expect("apply");
    assert!(matches!(options.store, Some(StorageConfig::Etcd { .. })));
}

#[test]
fn conflicting_or_incomplete_stores_are_errors() {
    let both = error(
        "
controlPlane:
  backingStore:
    database: {embedded: {enabled: true}}
    etcd: {external: {enabled: true, endpoint: 'etcd:2379'}}
",
    );
    assert!(matches!(both, ConfigError::Conflict { .. }), "{both}");
    assert!(
        both.to_string()
            .contains("database.embedded and etcd.external"),
        "{both}"
    );
    let no_endpoint = error("controlPlane: {backingStore: {etcd: {external: {enabled: true}}}}");
    assert!(
        no_endpoint
            .to_string()
            .starts_with("controlPlane.backingStore.etcd.external.endpoint:"),
        "{no_endpoint}"
    );
    let key_without_cert = error(
        "controlPlane: {backingStore: {etcd: {external: {enabled: true, endpoint: e, tls: {caFile: ca, keyFile: k}}}}}",
    );
    assert!(
        key_without_cert.to_string().contains("tls.certFile"),
        "{key_without_cert}"
    );
    let https_without_ca = error(
        "controlPlane: {backingStore: {etcd: {external: {enabled: true, endpoint: 'https://e:2379'}}}}",
    );
    assert!(
        https_without_ca.to_string().contains("tls.caFile"),
        "{https_without_ca}"
    );
    // vCluster's other stores are not implemented.
    let deployed = error("controlPlane: {backingStore: {etcd: {deploy: {enabled: true}}}}");
    assert_eq!(
        deployed.to_string(),
        "controlPlane.backingStore.etcd.deploy.enabled: part of vCluster's config but not supported by vcluster-rs (use controlPlane.backingStore.etcd.external) (line 1, column 37)"
    );
}

#[test]
fn stateful_set_and_service_settings_are_typed() {
    let config = load(
        "
controlPlane:
  statefulSet:
    highAvailability: {replicas: 3, leaseDuration: 30, renewDeadline: 20, retryPeriod: 5}
    image: {registry: registry.example.com, repository: team/vcluster-rs, tag: v1}
    resources:
      limits: {memory: 1Gi, ephemeral-storage: null}
      requests: {cpu: 1}
    persistence:
      volumeClaim: {enabled: true, size: 20Gi, storageClass: fast}
  service:
    spec: {type: LoadBalancer}
",
    );
    let set = &config.control_plane.stateful_set;
    assert_eq!(set.high_availability.replicas, 3);
    assert_eq!(
        set.high_availability.lease_duration(),
        std::time::Duration::from_secs(30)
    );
    assert_eq!(set.high_availability.renew_deadline().as_secs(), 20);
    assert_eq!(set.high_availability.retry_period().as_secs(), 5);
    assert_eq!(
        set.image.reference(),
        "registry.example.com/team/vcluster-rs:v1"
    );
    // Maps merge over vCluster's defaults; null removes one.
    assert_eq!(
        set.resources.limits,
        values::quantities(&[("memory", "1Gi")])
    );
    assert_eq!(
        set.resources.requests,
        values::quantities(&[
            ("cpu", "1"),
            ("ephemeral-storage", "400Mi"),
            ("memory", "256Mi")
        ])
    );
    let claim = &set.persistence.volume_claim;
    assert_eq!(
        (claim.size.0.as_str(), claim.storage_class.as_str()),
        ("20Gi", "fast")
    );
    assert_eq!(
        config.control_plane.service.spec.type_,
        control_plane::ServiceType::LoadBalancer
    );
    let bad = error("controlPlane: {statefulSet: {highAvailability: {renewDeadline: 90}}}");
    assert!(
        bad.to_string()
            .starts_with("controlPlane.statefulSet.highAvailability.leaseDuration: must be longer"),
        "{bad}"
    );
    let bad_type = error("controlPlane:\n  service:\n    spec:\n      type: Ingress\n");
    let ConfigError::Invalid { path, location, .. } = &bad_type else {
        panic!("{bad_type}")
    };
    assert_eq!(path, "controlPlane.service.spec.type");
    assert_eq!(location.map(|l| l.line), Some(4), "{bad_type}");
}

#[test]
fn policies_map_onto_host_limits_and_the_pod_policy() {
    let config = load(
        "
policies:
  podSecurityStandard: restricted
  resourceQuota:
    enabled: true
    quota: {count/pods: 5, requests.storage: null}
    scopes: [NotTerminating]
  limitRange:
    max: {cpu: '4'}
",
    );
    assert_eq!(
        config.policies.pod_policy().level,
        PodSecurityLevel::Restricted
    );
    let limits = config.policies.host_limits();
    let quota = limits.quota.expect("quota");
    let hard = quota.hard.expect("hard");
    assert_eq!(hard.get("count/pods"), Some(&K8sQuantity("5".into())));
    assert_eq!(hard.get("requests.cpu"), Some(&K8sQuantity("10".into())));
    assert!(!hard.contains_key("requests.storage"));
    assert_eq!(quota.scopes, Some(vec!["NotTerminating".to_owned()]));
    // `auto` follows the other object when that one is `true`.
    let range = limits.limit_range.expect("limit range follows the quota");
    let item = &range.limits[0];
    assert_eq!(item.type_, "Container");
    assert_eq!(
        item.max.as_ref().and_then(|m| m.get("cpu")),
        Some(&K8sQuantity("4".into()))
    );
    assert_eq!(
        item.default.as_ref().and_then(|m| m.get("memory")),
        Some(&K8sQuantity("512Mi".into()))
    );
    let only_quota =
        load("policies: {resourceQuota: {enabled: true}, limitRange: {enabled: false}}");
    let limits = only_quota.policies.host_limits();
    assert!(limits.quota.is_some() && limits.limit_range.is_none());
    let both_auto = load("policies: {resourceQuota: {enabled: auto}}");
    assert!(!both_auto.policies.host_limits().enabled());
    let privileged = load("policies: {podSecurityStandard: privileged}");
    let mut options = DemoOptions::new("/tmp/x");
    privileged.apply_to_demo(&mut options).expect("apply");
    assert_eq!(options.pod_policy.level, PodSecurityLevel::Privileged);
    let bad = error("policies: {resourceQuota: {quota: {requests.cpu: lots}}}");
    assert!(
        bad.to_string()
            .starts_with("policies.resourceQuota.quota.requests.cpu: invalid value"),
        "{bad}"
    );
    let bad = error("policies: {podSecurityStandard: strict}");
    assert!(
        bad.to_string()
            .starts_with("policies.podSecurityStandard: unknown variant `strict`"),
        "{bad}"
    );
}

#[test]
fn networking_maps_onto_the_demo() {
    let config = load(
        "
networking:
  serviceCIDR: 10.100.0.0/16
  podCIDR: 10.200.0.0/16
  advanced: {clusterDomain: corp.internal}
",
    );
    let mut options = DemoOptions::new("/tmp/x");
    config.apply_to_demo(&mut options).expect("apply");
    assert_eq!(options.host_service_cidr, "10.100.0.0/16");
    assert_eq!(options.node.pod_cidr, "10.200.0.0/16");
    assert_eq!(options.cluster_domain, "corp.internal");
    let bad = error("networking: {serviceCIDR: 10.100.0.0}");
    assert!(
        bad.to_string().starts_with("networking.serviceCIDR:"),
        "{bad}"
    );
    let bad = error("networking: {advanced: {clusterDomain: Corp.Internal}}");
    assert!(
        bad.to_string()
            .starts_with("networking.advanced.clusterDomain:"),
        "{bad}"
    );
    let replicate = error(
        "networking:\n  replicateServices:\n    toHost: []\n    fromHost: [{from: a, to: b}]\n",
    );
    assert!(
        replicate.to_string().starts_with(
            "networking.replicateServices.fromHost: part of vCluster's config but not supported by vcluster-rs"
        ),
        "{replicate}"
    );
}

#[test]
fn export_kubeconfig_is_typed() {
    let config = load(
        "
exportKubeConfig:
  context: team
  server: https://team.example.com
  insecure: true
  serviceAccount: {name: ci, namespace: tools, clusterRole: view}
  secret: {name: team-kubeconfig, namespace: ops}
",
    );
    let export = &config.export_kube_config;
    assert_eq!((export.context.as_str(), export.insecure), ("team", true));
    assert_eq!(export.server, "https://team.example.com");
    assert_eq!(export.service_account.cluster_role, "view");
    assert_eq!(export.service_account_namespace(), "tools");
    assert_eq!(export.secret_name("team"), "team-kubeconfig");
    assert_eq!(export.secret_namespace("vcluster-team"), "ops");
    assert_eq!(config.not_used_by_demo(), ["exportKubeConfig"]);
    assert!(VClusterConfig::default().not_used_by_demo().is_empty());
    assert_eq!(ExportKubeConfig::default().secret_namespace("h"), "h");
}

#[test]
fn unknown_keys_are_errors_naming_their_path_and_the_known_keys() {
    let err = error("sync:\n  toHost:\n    foo: {enabled: true}\n");
    let ConfigError::UnknownKey {
        path,
        known,
        location,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(path, "sync.toHost.foo");
    assert!(known.iter().any(|k| k == "pods") && known.iter().any(|k| k == "configMaps"));
    assert_eq!(location.map(|l| (l.line, l.column)), Some((3, 5)));
    assert!(
        err.to_string()
            .starts_with("sync.toHost.foo: unknown key (known keys here: pods, services,"),
        "{err}"
    );
    let top = error("snyc: {}");
    assert!(
        top.to_string()
            .starts_with("snyc: unknown key (known keys here: sync,"),
        "{top}"
    );
    let deep = error("sync: {fromHost: {nodes: {selector: {everything: true}}}}");
    assert!(
        deep.to_string().starts_with(
            "sync.fromHost.nodes.selector.everything: unknown key (known keys here: all, labels)"
        ),
        "{deep}"
    );
    let in_map = error(
        "sync: {toHost: {customResources: {a.example.com: {enabled: false, sope: Cluster}}}}",
    );
    assert!(
        in_map
            .to_string()
            .starts_with("sync.toHost.customResources.a.example.com.sope: unknown key"),
        "{in_map}"
    );
}

#[test]
fn unsupported_keys_load_only_when_they_ask_for_nothing() {
    // vCluster's own "off" values load: they ask for what vcluster-rs does.
    load(
        "
sync:
  toHost:
    volumeSnapshots: {enabled: false}
    priorityClasses: {enabled: false}
    pods: {translateImage: {}, enforceTolerations: [], rewriteHosts: {enabled: false}}
  fromHost:
    csiDrivers: {enabled: auto}
networking:
  replicateServices: {toHost: [], fromHost: []}
policies:
  networkPolicy: {enabled: false, fallbackDns: 8.8.8.8}
telemetry: {enabled: false}
experimental: {}
",
    );
    let cases = [
        (
            "networking: {replicateServices: {toHost: [{from: a, to: b}]}}",
            "networking.replicateServices.toHost: part of vCluster's config but not supported by vcluster-rs",
        ),
        (
            "sync: {toHost: {volumeSnapshots: {enabled: true}}}",
            "sync.toHost.volumeSnapshots.enabled: part of vCluster's config but not supported by vcluster-rs",
        ),
        (
            "sync: {toHost: {priorityClasses: {enabled: true}}}",
            "sync.toHost.priorityClasses.enabled: part of vCluster's config but not supported by vcluster-rs (tenants' priority classes are not copied",
        ),
        (
            "sync: {toHost: {services: {patches: [{path: spec.type}]}}}",
            "sync.toHost.services.patches: part of vCluster's config",
        ),
        (
            "telemetry: {enabled: true}",
            "telemetry.enabled: part of vCluster's config but not supported by vcluster-rs (vcluster-rs sends no telemetry)",
        ),
        ("serviceCIDR: 10.96.0.0/12", "serviceCIDR: part of vCluster's config but not supported by vcluster-rs (use networking.serviceCIDR)"),
        (
            "controlPlane: {distro: {k8s: {enabled: true}}}",
            "controlPlane.distro.k8s.enabled: part of vCluster's config",
        ),
    ];
    for (yaml, expected) in cases {
        let err = error(yaml);
        assert!(
            matches!(err, ConfigError::Unsupported { .. }),
            "{yaml}: {err}"
        );
        assert!(
            err.to_string().starts_with(expected),
            "{yaml}:\n{err}\nexpected {expected}"
        );
    }
}

#[test]
fn enabling_a_custom_resource_says_no_generic_syncer_exists() {
    let err = error("sync: {toHost: {customResources: {widgets.example.com: {enabled: true}}}}");
    assert!(
        err.to_string().starts_with(
            "sync.toHost.customResources.widgets.example.com.enabled: part of vCluster's config but not supported by vcluster-rs (vcluster-rs has no generic custom resource syncer"
        ),
        "{err}"
    );
}

#[test]
fn syntax_and_type_errors_say_where() {
    let syntax = error("sync:\n  toHost: [\n");
    let ConfigError::Syntax { location, .. } = &syntax else {
        panic!("{syntax}")
    };
    assert!(location.is_some(), "{syntax}");
    assert!(
        syntax.to_string().starts_with("not valid YAML (line"),
        "{syntax}"
    );
    let wrong = error("sync:\n  toHost:\n    pods:\n      enabled: yes please\n");
    assert!(
        wrong.to_string().starts_with("sync.toHost.pods.enabled: invalid type: string \"yes please\", expected a boolean (line 4"),
        "{wrong}"
    );
    let list = error("- a\n- b\n");
    assert!(
        list.to_string()
            .starts_with("(top level): invalid type: sequence"),
        "{list}"
    );
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vcluster.yaml");
    std::fs::write(&path, "sync: {toHost: {foo: 1}}").expect("write");
    let err = VClusterConfig::load(&path).expect_err("unknown key");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: sync.toHost.foo:", path.display())),
        "{err}"
    );
    assert!(matches!(err.inner(), ConfigError::UnknownKey { .. }));
    let missing = VClusterConfig::load(dir.path().join("nope.yaml")).expect_err("missing");
    assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
}

/// The schema committed in `deploy/` is the one the types generate.
/// Regenerate it with `UPDATE_SCHEMA=1 cargo test -p vcluster --lib config::tests::the_committed_schema`.
#[test]
fn the_committed_schema_is_the_generated_one() {
    let path = manifest_path("deploy/vcluster.schema.json");
    let generated = json_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write the schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} differs from the schema the config types generate; regenerate it with \
         UPDATE_SCHEMA=1 cargo test -p vcluster --lib config::tests::the_committed_schema",
        path.display()
    );
}

/// Every key path of a schema object, following `$ref`s into `$defs`.
fn key_paths(schema: &serde_json::Value) -> BTreeSet<String> {
    fn resolve<'a>(
        root: &'a serde_json::Value,
        node: &'a serde_json::Value,
    ) -> &'a serde_json::Value {
        match node.get("$ref").and_then(|r| r.as_str()) {
            Some(reference) => reference
                .strip_prefix("#/$defs/")
                .and_then(|name| root.get("$defs").and_then(|defs| defs.get(name)))
                .map(|target| resolve(root, target))
                .unwrap_or(node),
            None => node,
        }
    }
    fn walk(
        root: &serde_json::Value,
        node: &serde_json::Value,
        prefix: &str,
        out: &mut BTreeSet<String>,
    ) {
        let node = resolve(root, node);
        if let Some(properties) = node.get("properties").and_then(|p| p.as_object()) {
            for (key, child) in properties {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                walk(root, child, &path, out);
            }
        }
        if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            walk(root, values, &format!("{prefix}.<name>"), out);
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, schema, "", &mut out);
    out
}

#[test]
fn the_schema_rejects_unknown_keys_everywhere() {
    let schema = json_schema();
    fn check(node: &serde_json::Value, at: &str) {
        if let Some(object) = node.as_object() {
            if object.contains_key("properties") {
                assert_eq!(
                    object.get("additionalProperties"),
                    Some(&serde_json::Value::Bool(false)),
                    "{at} accepts unknown keys"
                );
            }
            for (key, child) in object {
                check(child, &format!("{at}/{key}"));
            }
        }
    }
    check(&schema, "#");
    assert!(key_paths(&schema).contains("sync.toHost.configMaps.all"));
}

#[test]
fn every_key_of_the_schema_is_documented() {
    let docs = std::fs::read_to_string(manifest_path("docs/config.md")).expect("docs/config.md");
    let missing: Vec<String> = key_paths(&json_schema())
        .into_iter()
        .filter(|path| !docs.contains(&format!("`{path}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/config.md does not document: {missing:#?}"
    );
}

#[test]
fn the_example_in_the_docs_loads() {
    let docs = std::fs::read_to_string(manifest_path("docs/config.md")).expect("docs/config.md");
    let start = docs
        .find("```yaml\n# vcluster.yaml")
        .expect("docs/config.md has an example starting with ```yaml and # vcluster.yaml");
    let body = &docs[start + "```yaml\n".len()..];
    let example = &body[..body.find("```").expect("the example's end")];
    let config = load(example);
    assert_ne!(config, VClusterConfig::default());
}

/// What `vcluster run` and the demo start from, and what the host RBAC
/// check reads: the file's settings reach the syncer's configuration.
#[test]
fn the_demo_options_give_the_syncer_the_files_settings() {
    let config = load(
        "
sync: {toHost: {ingresses: {enabled: true}}, fromHost: {nodes: {enabled: false}}}
policies: {podSecurityStandard: restricted, limitRange: {enabled: true}}
networking: {advanced: {clusterDomain: corp.internal}}
",
    );
    let mut options = DemoOptions::new("/tmp/x");
    config.apply_to_demo(&mut options).expect("apply");
    let sync = options.sync_config();
    assert!(sync.syncers.ingresses);
    assert_eq!(sync.node_mode, NodeMode::fake());
    assert_eq!(sync.pod_policy.level, PodSecurityLevel::Restricted);
    // limitRange: true, and the quota's `auto` follows it, as in vCluster.
    assert!(sync.host_limits.limit_range.is_some() && sync.host_limits.quota.is_some());
    assert_eq!(sync.pod_environment.cluster_domain, "corp.internal");
}
