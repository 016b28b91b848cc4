//! The host copy of a virtual pod: every name it refers to translated,
//! and the settings that keep the pod inside its virtual cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, ObjectFieldSelector, PodDNSConfig, PodDNSConfigOption,
    PodSpec, Volume,
};
use vcluster_core::{markers, Translator, TranslatorExt, VirtualKey};

/// Where host pods find the virtual cluster's services.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodEnvironment {
    /// The virtual cluster's DNS server; host pods resolve names through
    /// it (`dnsPolicy: None`). `None` leaves DNS settings alone.
    pub dns_server: Option<String>,
    /// The cluster domain for search paths (default `cluster.local`).
    pub cluster_domain: String,
    /// Where pods reach the virtual API server (`KUBERNETES_SERVICE_HOST`
    /// and `_PORT`), instead of the host's.
    pub api_server: Option<(String, u16)>,
    /// Run host pods under the translated service account (the service
    /// account syncer must be on); otherwise under the host namespace's
    /// default account, without a token.
    pub translate_service_accounts: bool,
    /// Give host pods the service-account tokens of the *virtual* API
    /// server (vCluster's `useSecretsForSATokens`): each projected
    /// `serviceAccountToken` source reads its token from a host Secret the
    /// syncer fills through TokenRequests and refreshes (see
    /// [`super::tokens`]). The host's own token is never mounted.
    pub service_account_tokens: bool,
}

/// Builds the host copy of `virtual_pod`.
pub fn host_pod(
    translator: &dyn Translator,
    virtual_pod: &Pod,
    namespace_labels: Option<&BTreeMap<String, String>>,
    env: &PodEnvironment,
) -> vcluster_core::Result<Pod> {
    let namespace = virtual_pod.metadata.namespace.clone().unwrap_or_default();
    let mut host = translator.host_object_with(virtual_pod, &(), namespace_labels)?;
    host.status = None;
    let names = Names {
        translator,
        namespace: &namespace,
    };
    let host_name = host.metadata.name.clone().unwrap_or_default();
    if let Some(spec) = host.spec.as_mut() {
        names.rewrite_spec(spec)?;
        adapt_spec(spec, virtual_pod, &namespace, env, &names)?;
        translate_field_refs(spec);
        if env.service_account_tokens {
            super::tokens::use_token_secret(spec, &host_name);
            // The host's own token never reaches a tenant container.
            spec.automount_service_account_token = Some(false);
        }
    }
    Ok(host)
}

/// Translates the names of namespaced objects a pod refers to.
struct Names<'a> {
    translator: &'a dyn Translator,
    namespace: &'a str,
}

impl Names<'_> {
    fn host(&self, name: &str) -> vcluster_core::Result<String> {
        Ok(self
            .translator
            .host_key(&VirtualKey::namespaced(self.namespace, name))?
            .name()
            .to_owned())
    }

    fn rewrite(&self, name: &mut String) -> vcluster_core::Result<()> {
        if !name.is_empty() {
            *name = self.host(name)?;
        }
        Ok(())
    }

    fn rewrite_spec(&self, spec: &mut PodSpec) -> vcluster_core::Result<()> {
        for volume in spec.volumes.iter_mut().flatten() {
            self.rewrite_volume(volume)?;
        }
        for container in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            self.rewrite_container(container)?;
        }
        for ephemeral in spec.ephemeral_containers.iter_mut().flatten() {
            self.rewrite_env(ephemeral.env.as_mut(), ephemeral.env_from.as_mut())?;
        }
        for secret in spec.image_pull_secrets.iter_mut().flatten() {
            self.rewrite(&mut secret.name)?;
        }
        if let Some(subdomain) = spec.subdomain.as_mut() {
            self.rewrite(subdomain)?;
        }
        Ok(())
    }

    fn rewrite_volume(&self, volume: &mut Volume) -> vcluster_core::Result<()> {
        if let Some(cm) = volume.config_map.as_mut() {
            self.rewrite(&mut cm.name)?;
        }
        if let Some(name) = volume.secret.as_mut().and_then(|s| s.secret_name.as_mut()) {
            self.rewrite(name)?;
        }
        if let Some(claim) = volume.persistent_volume_claim.as_mut() {
            self.rewrite(&mut claim.claim_name)?;
        }
        if let Some(projected) = volume.projected.as_mut() {
            for source in projected.sources.iter_mut().flatten() {
                if let Some(cm) = source.config_map.as_mut() {
                    self.rewrite(&mut cm.name)?;
                }
                if let Some(secret) = source.secret.as_mut() {
                    self.rewrite(&mut secret.name)?;
                }
            }
        }
        // Volume plugins read their credentials from a secret of the
        // pod's namespace: on the host that is the host namespace, so an
        // untranslated name would be another tenant's secret.
        for secret in super::references::plugin_secret_refs_mut(volume) {
            self.rewrite(secret)?;
        }
        // An ephemeral volume's claim is created on the host from this
        // template: its data source must name this tenant's copy.
        if let Some(template) = volume
            .ephemeral
            .as_mut()
            .and_then(|e| e.volume_claim_template.as_mut())
        {
            crate::syncers::pvcs::rewrite_claim_spec(
                self.translator,
                self.namespace,
                &mut template.spec,
            )?;
        }
        Ok(())
    }

    fn rewrite_container(&self, container: &mut Container) -> vcluster_core::Result<()> {
        self.rewrite_env(container.env.as_mut(), container.env_from.as_mut())
    }

    fn rewrite_env(
        &self,
        env: Option<&mut Vec<EnvVar>>,
        env_from: Option<&mut Vec<EnvFromSource>>,
    ) -> vcluster_core::Result<()> {
        for var in env.into_iter().flatten() {
            if let Some(from) = var.value_from.as_mut() {
                if let Some(cm) = from.config_map_key_ref.as_mut() {
                    self.rewrite(&mut cm.name)?;
                }
                if let Some(secret) = from.secret_key_ref.as_mut() {
                    self.rewrite(&mut secret.name)?;
                }
            }
        }
        for source in env_from.into_iter().flatten() {
            if let Some(cm) = source.config_map_ref.as_mut() {
                self.rewrite(&mut cm.name)?;
            }
            if let Some(secret) = source.secret_ref.as_mut() {
                self.rewrite(&mut secret.name)?;
            }
        }
        Ok(())
    }
}

/// Points a pod that resolves through the cluster's DNS (`dnsPolicy`
/// `ClusterFirst`, the default, without host network, or
/// `ClusterFirstWithHostNet`) at the virtual cluster's DNS server, as
/// vCluster does: `dnsPolicy: None` with the server first, the searches of
/// the pod's virtual namespace, `ndots:5`, and the pod's own `dnsConfig`
/// (nameservers and searches after, options overriding, as the kubelet
/// merges them). `Default` and `None` pods keep their settings.
fn cluster_first_dns(spec: &mut PodSpec, server: &str, namespace: &str, cluster_domain: &str) {
    let cluster_first = match spec.dns_policy.as_deref() {
        None | Some("ClusterFirst") => !spec.host_network.unwrap_or(false),
        Some("ClusterFirstWithHostNet") => true,
        _ => false,
    };
    if !cluster_first {
        return;
    }
    let domain = if cluster_domain.is_empty() {
        "cluster.local"
    } else {
        cluster_domain
    };
    let own = spec.dns_config.take().unwrap_or_default();
    let mut nameservers = vec![server.to_owned()];
    let mut searches = vec![
        format!("{namespace}.svc.{domain}"),
        format!("svc.{domain}"),
        domain.to_owned(),
    ];
    for extra in own.nameservers.into_iter().flatten() {
        if !nameservers.contains(&extra) {
            nameservers.push(extra);
        }
    }
    for extra in own.searches.into_iter().flatten() {
        if !searches.contains(&extra) {
            searches.push(extra);
        }
    }
    let mut options = vec![PodDNSConfigOption {
        name: Some("ndots".to_owned()),
        value: Some("5".to_owned()),
    }];
    for option in own.options.into_iter().flatten() {
        options.retain(|o| o.name != option.name);
        options.push(option);
    }
    spec.dns_policy = Some("None".to_owned());
    spec.dns_config = Some(PodDNSConfig {
        nameservers: Some(nameservers),
        searches: Some(searches),
        options: Some(options),
    });
}

/// The variables the kubelet gives every container for the `kubernetes`
/// service, naming the virtual API server's address on the host instead.
fn api_server_env(host: &str, port: u16) -> Vec<EnvVar> {
    let url = format!("tcp://{host}:{port}");
    let tcp = format!("KUBERNETES_PORT_{port}_TCP");
    [
        ("KUBERNETES_SERVICE_HOST".to_owned(), host.to_owned()),
        ("KUBERNETES_SERVICE_PORT".to_owned(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".to_owned(), port.to_string()),
        ("KUBERNETES_PORT".to_owned(), url.clone()),
        (tcp.clone(), url),
        (format!("{tcp}_ADDR"), host.to_owned()),
        (format!("{tcp}_PORT"), port.to_string()),
        (format!("{tcp}_PROTO"), "tcp".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| EnvVar {
        name,
        value: Some(value),
        value_from: None,
    })
    .collect()
}

/// The downward API's `metadata.name`, `.namespace` and `.uid` of the
/// host pod are its host identity: they are pointed at the annotations
/// that carry the virtual pod's (as vCluster does), in `env` and in
/// `downwardAPI` volumes and projections.
fn translate_field_refs(spec: &mut PodSpec) {
    fn rewrite(selector: &mut ObjectFieldSelector) {
        let annotation = match selector.field_path.as_str() {
            "metadata.name" => markers::OBJECT_NAME_ANNOTATION,
            "metadata.namespace" => markers::OBJECT_NAMESPACE_ANNOTATION,
            "metadata.uid" => markers::OBJECT_UID_ANNOTATION,
            _ => return,
        };
        selector.field_path = format!("metadata.annotations['{annotation}']");
    }
    let env = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
        .flat_map(|c| c.env.iter_mut().flatten())
        .chain(
            spec.ephemeral_containers
                .iter_mut()
                .flatten()
                .flat_map(|c| c.env.iter_mut().flatten()),
        );
    for var in env {
        if let Some(selector) = var.value_from.as_mut().and_then(|f| f.field_ref.as_mut()) {
            rewrite(selector);
        }
    }
    for volume in spec.volumes.iter_mut().flatten() {
        let plain = volume
            .downward_api
            .iter_mut()
            .flat_map(|d| d.items.iter_mut().flatten());
        let projected = volume
            .projected
            .iter_mut()
            .flat_map(|p| p.sources.iter_mut().flatten())
            .flat_map(|s| s.downward_api.iter_mut())
            .flat_map(|d| d.items.iter_mut().flatten());
        for item in plain.chain(projected) {
            if let Some(selector) = item.field_ref.as_mut() {
                rewrite(selector);
            }
        }
    }
}

/// Settings that keep a host pod inside its virtual cluster.
fn adapt_spec(
    spec: &mut PodSpec,
    virtual_pod: &Pod,
    namespace: &str,
    env: &PodEnvironment,
    names: &Names<'_>,
) -> vcluster_core::Result<()> {
    // Host services must not leak into tenant pods as environment variables.
    spec.enable_service_links = Some(false);
    // The host schedules the copy; the virtual pod learns its node back.
    spec.node_name = None;
    // Priority classes are not synced; the host would refuse unknown ones.
    spec.priority_class_name = None;
    spec.priority = None;
    // The pod sees its virtual name as hostname, not the translated one.
    if spec.hostname.is_none() {
        let name = virtual_pod.metadata.name.clone().unwrap_or_default();
        if vcluster_core::validation::is_dns1123_label(&name) {
            spec.hostname = Some(name);
        }
    }
    if env.translate_service_accounts {
        let account = spec
            .service_account_name
            .clone()
            .or_else(|| spec.service_account.clone())
            .unwrap_or_else(|| "default".to_owned());
        let host_account = names.host(&account)?;
        spec.service_account_name = Some(host_account.clone());
        spec.service_account = Some(host_account);
    } else {
        spec.service_account_name = None;
        spec.service_account = None;
        spec.automount_service_account_token = Some(false);
    }
    if let Some(server) = &env.dns_server {
        cluster_first_dns(spec, server, namespace, &env.cluster_domain);
    }
    if let Some((host, port)) = &env.api_server {
        for container in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            let vars = container.env.get_or_insert_with(Vec::new);
            vars.retain(|v| {
                !v.name.starts_with("KUBERNETES_SERVICE_") && !v.name.starts_with("KUBERNETES_PORT")
            });
            vars.extend(api_server_env(host, *port));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcluster_core::SingleNamespaceTranslator;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "team", "labels": {"app": "web"}},
            "spec": {
                "nodeName": "virtual-node",
                "serviceAccountName": "builder",
                "priorityClassName": "high",
                "imagePullSecrets": [{"name": "pull"}],
                "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}, {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                "containers": [{
                    "name": "app", "image": "nginx",
                    "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw"}}}],
                    "envFrom": [{"configMapRef": {"name": "env"}}]
                }]
            }
        }))
        .expect("pod")
    }

    #[test]
    fn every_reference_is_translated_and_the_pod_is_contained() {
        let translator = SingleNamespaceTranslator::new("vc", "host").expect("translator");
        let env = PodEnvironment {
            dns_server: Some("10.96.0.10".into()),
            api_server: Some(("10.96.0.1".into(), 443)),
            ..PodEnvironment::default()
        };
        let host = host_pod(&translator, &pod(), None, &env).expect("host pod");
        assert_eq!(host.metadata.name.as_deref(), Some("web-x-team-x-vc"));
        let spec = host.spec.expect("spec");
        let volumes = spec.volumes.expect("volumes");
        assert_eq!(
            volumes[0].config_map.as_ref().map(|c| c.name.as_str()),
            Some("settings-x-team-x-vc")
        );
        assert_eq!(
            volumes[1]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("data-x-team-x-vc")
        );
        let container = &spec.containers[0];
        let env_vars = container.env.as_ref().expect("env");
        assert_eq!(
            env_vars[0]
                .value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
                .map(|s| s.name.as_str()),
            Some("creds-x-team-x-vc")
        );
        assert!(env_vars.iter().any(
            |v| v.name == "KUBERNETES_SERVICE_HOST" && v.value.as_deref() == Some("10.96.0.1")
        ));
        assert!(env_vars.iter().any(|v| v.name == "KUBERNETES_PORT_443_TCP"
            && v.value.as_deref() == Some("tcp://10.96.0.1:443")));
        assert_eq!(
            container
                .env_from
                .as_ref()
                .and_then(|e| e[0].config_map_ref.as_ref())
                .map(|c| c.name.as_str()),
            Some("env-x-team-x-vc")
        );
        assert_eq!(
            spec.image_pull_secrets.expect("secrets")[0].name,
            "pull-x-team-x-vc"
        );
        assert_eq!(spec.enable_service_links, Some(false));
        assert_eq!(spec.node_name, None);
        assert_eq!(spec.priority_class_name, None);
        assert_eq!(spec.hostname.as_deref(), Some("web"));
        assert_eq!(
            spec.service_account_name, None,
            "no account translation unless asked"
        );
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.dns_policy.as_deref(), Some("None"));
        let dns = spec.dns_config.expect("dns");
        assert_eq!(dns.nameservers, Some(vec!["10.96.0.10".to_string()]));
        assert_eq!(dns.searches.expect("searches")[0], "team.svc.cluster.local");
        assert!(host.status.is_none());
    }

    #[test]
    fn plugin_secrets_and_ephemeral_data_sources_name_this_tenants_copies() {
        let translator = SingleNamespaceTranslator::new("vc", "host").expect("translator");
        let virtual_pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {
                "volumes": [
                    {"name": "csi", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "creds"}}},
                    {"name": "cifs", "azureFile": {"secretName": "azure", "shareName": "s"}},
                    {"name": "flex", "flexVolume": {"driver": "f", "secretRef": {"name": "flex"}}},
                    {"name": "data", "ephemeral": {"volumeClaimTemplate": {"spec": {
                        "dataSource": {"kind": "PersistentVolumeClaim", "name": "db"},
                        "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "db"}
                    }}}}
                ],
                "containers": [{"name": "app", "image": "nginx"}]
            }
        }))
        .expect("pod");
        let refs = super::super::PodReferences::of(&virtual_pod);
        assert!(["creds", "azure", "flex"]
            .iter()
            .all(|s| refs.secrets.contains(*s)));
        let host = host_pod(&translator, &virtual_pod, None, &PodEnvironment::default())
            .expect("host pod");
        let volumes = host.spec.expect("spec").volumes.expect("volumes");
        let csi = volumes[0].csi.as_ref().expect("csi");
        assert_eq!(
            csi.node_publish_secret_ref
                .as_ref()
                .map(|r| r.name.as_str()),
            Some("creds-x-team-x-vc")
        );
        assert_eq!(
            volumes[1]
                .azure_file
                .as_ref()
                .map(|a| a.secret_name.as_str()),
            Some("azure-x-team-x-vc")
        );
        assert_eq!(
            volumes[2]
                .flex_volume
                .as_ref()
                .and_then(|f| f.secret_ref.as_ref())
                .map(|r| r.name.as_str()),
            Some("flex-x-team-x-vc")
        );
        let template = volumes[3]
            .ephemeral
            .as_ref()
            .and_then(|e| e.volume_claim_template.as_ref())
            .expect("template");
        assert_eq!(
            template.spec.data_source.as_ref().map(|d| d.name.as_str()),
            Some("db-x-team-x-vc")
        );
        assert_eq!(
            template
                .spec
                .data_source_ref
                .as_ref()
                .map(|d| d.name.as_str()),
            Some("db-x-team-x-vc")
        );
    }

    #[test]
    fn dns_follows_the_pods_policy_as_vcluster_does() {
        let translator = SingleNamespaceTranslator::new("vc", "host").expect("translator");
        let env = PodEnvironment {
            dns_server: Some("10.96.0.10".into()),
            cluster_domain: "corp.local".into(),
            ..PodEnvironment::default()
        };
        let with = |policy: Option<&str>, host_network: bool| {
            let mut virtual_pod = pod();
            let spec = virtual_pod.spec.as_mut().expect("spec");
            spec.dns_policy = policy.map(str::to_owned);
            spec.host_network = Some(host_network);
            spec.dns_config = Some(PodDNSConfig {
                nameservers: Some(vec!["1.1.1.1".into()]),
                searches: Some(vec!["example.com".into()]),
                options: Some(vec![PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                }]),
            });
            host_pod(&translator, &virtual_pod, None, &env)
                .expect("host pod")
                .spec
                .expect("spec")
        };
        let spec = with(Some("ClusterFirst"), false);
        assert_eq!(spec.dns_policy.as_deref(), Some("None"));
        let dns = spec.dns_config.expect("dns");
        assert_eq!(
            dns.nameservers,
            Some(vec!["10.96.0.10".to_string(), "1.1.1.1".to_string()])
        );
        assert_eq!(
            dns.searches,
            Some(vec![
                "team.svc.corp.local".to_string(),
                "svc.corp.local".to_string(),
                "corp.local".to_string(),
                "example.com".to_string()
            ])
        );
        assert_eq!(
            dns.options.expect("options")[0].value.as_deref(),
            Some("2"),
            "the pod's own options win"
        );
        assert_eq!(
            with(Some("ClusterFirstWithHostNet"), true)
                .dns_policy
                .as_deref(),
            Some("None")
        );
        for (policy, host_network) in [
            (Some("ClusterFirst"), true),
            (Some("Default"), false),
            (Some("None"), false),
        ] {
            let spec = with(policy, host_network);
            assert_eq!(spec.dns_policy.as_deref(), policy, "{policy:?} kept");
            assert_eq!(
                spec.dns_config.and_then(|c| c.nameservers),
                Some(vec!["1.1.1.1".to_string()])
            );
        }
    }

    #[test]
    fn the_downward_api_names_the_virtual_pod() {
        let translator = SingleNamespaceTranslator::new("vc", "host").expect("translator");
        let virtual_pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {
                "volumes": [{"name": "api", "projected": {"sources": [
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
                ]}}],
                "containers": [{"name": "app", "image": "nginx", "env": [
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
                ]}]
            }
        }))
        .expect("pod");
        let spec = host_pod(&translator, &virtual_pod, None, &PodEnvironment::default())
            .expect("host pod")
            .spec
            .expect("spec");
        let env = spec.containers[0].env.as_ref().expect("env");
        let path = |i: usize| {
            env[i]
                .value_from
                .as_ref()
                .and_then(|f| f.field_ref.as_ref())
                .map(|f| f.field_path.clone())
        };
        assert_eq!(
            path(0).as_deref(),
            Some("metadata.annotations['vcluster.loft.sh/object-name']")
        );
        assert_eq!(path(1).as_deref(), Some("spec.nodeName"));
        let volumes = spec.volumes.expect("volumes");
        let item = &volumes[0]
            .projected
            .as_ref()
            .expect("projected")
            .sources
            .as_ref()
            .expect("sources")[0]
            .downward_api
            .as_ref()
            .expect("downward")
            .items
            .as_ref()
            .expect("items")[0];
        assert_eq!(
            item.field_ref.as_ref().map(|f| f.field_path.as_str()),
            Some("metadata.annotations['vcluster.loft.sh/object-namespace']")
        );
    }

    #[test]
    fn service_accounts_are_translated_when_synced() {
        let translator = SingleNamespaceTranslator::new("vc", "host").expect("translator");
        let env = PodEnvironment {
            translate_service_accounts: true,
            ..PodEnvironment::default()
        };
        let spec = host_pod(&translator, &pod(), None, &env)
            .expect("host pod")
            .spec
            .expect("spec");
        assert_eq!(
            spec.service_account_name.as_deref(),
            Some("builder-x-team-x-vc")
        );
        assert_eq!(
            spec.dns_policy, None,
            "DNS untouched without a virtual DNS server"
        );
    }
}
