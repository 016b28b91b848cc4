//! `vcluster.yaml` as the command line uses it: the facade's
//! [`vcluster::config`] types give the control plane's host objects to
//! `create` and the options of `run`, so both read one file the same way
//! (and the demo too).

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::ResourceRequirements;
use vcluster::config::VClusterConfig;
use vcluster::demo::DemoOptions;
use vcluster_syncer::permissions::host_rules;

use crate::error::CliError;
use crate::manifests::{ControlPlane, Persistence, DATA_DIR};

/// The image `create` deploys when neither `--image` nor the config names
/// one: what `docker build -t vcluster-rs:<version> .` makes from the
/// repository's Dockerfile.
pub fn default_image() -> String {
    format!("vcluster-rs:{}", env!("CARGO_PKG_VERSION"))
}

/// The file at `path` (checked: unknown keys are errors naming them), and
/// its text (stored for the control plane as given); the defaults without
/// a file.
pub fn load(path: Option<&Path>) -> Result<(VClusterConfig, String), CliError> {
    let Some(path) = path else {
        return Ok((VClusterConfig::default(), String::new()));
    };
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    let config = VClusterConfig::from_yaml(&text)
        .map_err(|e| CliError::Config(format!("{}: {e}", path.display())))?;
    Ok((config, text))
}

/// The options `run` starts the control plane with, before its in-cluster
/// settings: the file's syncers, store, policies and networking.
pub fn options(
    config: &VClusterConfig,
    name: &str,
    namespace: &str,
    data_dir: &Path,
) -> Result<DemoOptions, CliError> {
    let mut options = DemoOptions::new(data_dir);
    config
        .apply_to_demo(&mut options)
        .map_err(|e| CliError::Config(e.to_string()))?;
    options.name = name.to_owned();
    options.host_namespace = Some(namespace.to_owned());
    // Several replicas: one leader runs the syncer, controllers and
    // garbage collector; each replica is named by its pod.
    let ha = &config.control_plane.stateful_set.high_availability;
    if ha.replicas > 1 {
        let mut election = vcluster::demo::LeaderElection {
            lease_duration: ha.lease_duration(),
            renew_deadline: ha.renew_deadline(),
            retry_period: ha.retry_period(),
            ..Default::default()
        };
        if let Ok(pod) = std::env::var("POD_NAME") {
            if !pod.is_empty() {
                election.identity = pod;
            }
        }
        options.leader_election = Some(election);
    }
    // What the syncer needs differs with an embedded host; the control
    // plane always has a real one (`run` sets the file's path).
    options.host_kubeconfig = Some(data_dir.join("host.kubeconfig"));
    Ok(options)
}

/// The control plane `create` deploys for `name` in `namespace`.
pub fn control_plane(
    name: &str,
    namespace: &str,
    config: Option<&Path>,
    image: Option<&str>,
) -> Result<ControlPlane, CliError> {
    let (config, config_yaml) = load(config)?;
    let options = options(&config, name, namespace, Path::new(DATA_DIR))?;
    let plane = &config.control_plane;
    let replicas = plane.stateful_set.high_availability.replicas;
    if replicas > 1 && !plane.backing_store.etcd.external.enabled {
        return Err(CliError::Config(format!(
            "controlPlane.statefulSet.highAvailability.replicas: {replicas} replicas need a store they share: set controlPlane.backingStore.etcd.external (the embedded database is one replica's)"
        )));
    }
    let claim = &plane.stateful_set.persistence.volume_claim;
    let persistence = plane.persistent_volume().then(|| Persistence {
        size: claim.size.0.clone(),
        storage_class: Some(claim.storage_class.clone()).filter(|c| !c.is_empty()),
    });
    let quantities = |map: &BTreeMap<String, vcluster::config::values::Quantity>| {
        Some(
            map.iter()
                .map(|(k, v)| (k.clone(), v.to_k8s()))
                .collect::<BTreeMap<_, _>>(),
        )
        .filter(|m| !m.is_empty())
    };
    let resources = &plane.stateful_set.resources;
    Ok(ControlPlane {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        image: image
            .map(str::to_owned)
            .unwrap_or_else(|| plane.stateful_set.image.reference()),
        replicas: i32::try_from(replicas).unwrap_or(i32::MAX),
        persistence,
        service_type: format!("{:?}", plane.service.spec.type_),
        config_yaml,
        host_rules: host_rules(&options.sync_config()),
        kubeconfig_secret: config.export_kube_config.secret_name(name),
        resources: Some(ResourceRequirements {
            limits: quantities(&resources.limits),
            requests: quantities(&resources.requests),
            ..Default::default()
        }),
    })
}

/// The kubeconfig Secret's name of the virtual cluster deployed as
/// `names` (its `exportKubeConfig.secret.name`, read from the config
/// Secret `create` stored; `vc-<name>` when that says nothing).
pub async fn deployed_kubeconfig_secret(
    client: &kube::Client,
    namespace: &str,
    names: &crate::manifests::Names,
) -> Result<String, CliError> {
    use k8s_openapi::api::core::v1::Secret;
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    let stored = secrets
        .get_opt(&names.config_secret)
        .await
        .map_err(|source| CliError::Api {
            what: format!("reading secret {namespace}/{}", names.config_secret),
            source,
        })?;
    let text = stored
        .and_then(|s| s.data)
        .and_then(|d| d.get(crate::manifests::CONFIG_KEY).cloned())
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .unwrap_or_default();
    let config = VClusterConfig::from_yaml(&text).map_err(|e| {
        CliError::Config(format!(
            "the stored configuration {namespace}/{}: {e}",
            names.config_secret
        ))
    })?;
    Ok(config.export_kube_config.secret_name(&names.workload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(yaml: &str) -> VClusterConfig {
        VClusterConfig::from_yaml(yaml).expect("a valid file")
    }

    #[test]
    fn several_replicas_elect_a_leader_with_the_files_timings() {
        let config = from(
            "controlPlane:\n  backingStore:\n    etcd:\n      external:\n        enabled: true\n        endpoint: http://etcd:2379\n  statefulSet:\n    highAvailability:\n      replicas: 3\n      leaseDuration: 30\n      renewDeadline: 20\n      retryPeriod: 5\n",
        );
        let options = options(&config, "vc", "ns", Path::new("/data")).expect("options");
        let election = options.leader_election.expect("leader election");
        assert_eq!(election.lease_duration, std::time::Duration::from_secs(30));
        assert_eq!(election.renew_deadline, std::time::Duration::from_secs(20));
        assert_eq!(election.retry_period, std::time::Duration::from_secs(5));
        let plane = {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("vcluster.yaml");
            std::fs::write(
                &path,
                "controlPlane:\n  backingStore:\n    etcd:\n      external:\n        enabled: true\n        endpoint: http://etcd:2379\n  statefulSet:\n    highAvailability:\n      replicas: 3\n",
            )
            .expect("write");
            control_plane("vc", "ns", Some(&path), None).expect("plane")
        };
        assert_eq!(plane.replicas, 3);
        // The store is etcd: no data claim unless asked for.
        assert!(plane.persistence.is_none());
    }

    #[test]
    fn one_replica_runs_everything_itself() {
        let options =
            options(&VClusterConfig::default(), "vc", "ns", Path::new("/data")).expect("options");
        assert!(options.leader_election.is_none());
        assert_eq!(options.host_namespace.as_deref(), Some("ns"));
    }
}
