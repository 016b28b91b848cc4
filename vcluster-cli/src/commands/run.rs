//! `vcluster run`: what the control plane pod executes. The virtual API
//! server, its store, the syncer and the controllers (the facade's
//! [`vcluster::demo::start`]), with the host reached through the pod's
//! in-cluster environment; then it publishes the kubeconfig Secret
//! `vc-<name>` that `vcluster connect` reads.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::ByteString;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use vcluster::config::ExportKubeConfig;
use vcluster::demo::{self, Advertise, DemoOptions};
use vcluster_syncer::permissions::{check_host_access, host_rules};

use crate::error::CliError;
use crate::host::{create_if_absent, FIELD_MANAGER};
use crate::manifests::{labels, Names, API_PORT, DNS_PORT, SERVICE_PORT};

/// Where Kubernetes mounts a pod's service account.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The server the exported kubeconfig names by default: where `vcluster
/// connect`'s port-forward listens (vCluster's default too).
pub const DEFAULT_EXPORT_SERVER: &str = "https://localhost:8443";

/// `vcluster run` flags.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The virtual cluster's name
    #[arg(long, env = "VCLUSTER_NAME")]
    pub name: String,
    /// Its vcluster.yaml
    #[arg(long, short = 'f', env = "VCLUSTER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Where the store and certificates live (the StatefulSet's volume)
    #[arg(long, default_value = crate::manifests::DATA_DIR)]
    pub data_dir: PathBuf,
    /// Where the virtual API server listens
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], API_PORT)))]
    pub listen: SocketAddr,
    /// Where the virtual cluster's DNS server listens (UDP and TCP)
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], DNS_PORT)))]
    pub dns_listen: SocketAddr,
    /// The pod's service account files (token, ca.crt, namespace)
    #[arg(long, env = "VCLUSTER_SERVICE_ACCOUNT_DIR", default_value = SERVICE_ACCOUNT_DIR)]
    pub service_account_dir: PathBuf,
    /// The host's service range [default: asked from the host]
    #[arg(long)]
    pub host_service_cidr: Option<String>,
    /// Further names and addresses the serving certificate is valid for
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_sans: Vec<String>,
}

/// The pod's view of its host: where the API server is, and who it is.
#[derive(Clone, Debug)]
pub struct InCluster {
    /// `https://host:port` of the host API server.
    pub server: String,
    /// The service account token file (re-read as Kubernetes rotates it).
    pub token_file: PathBuf,
    /// The host's CA.
    pub ca_file: PathBuf,
    /// The pod's namespace: the host namespace.
    pub namespace: String,
}

impl InCluster {
    /// Reads the in-cluster environment: `KUBERNETES_SERVICE_HOST` and
    /// `_PORT`, and the service account files in `dir`.
    pub fn from_env(dir: &Path) -> Result<Self, CliError> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| CliError::InCluster(format!("{name} is not set")))
        };
        let host = var("KUBERNETES_SERVICE_HOST")?;
        let port = var("KUBERNETES_SERVICE_PORT")?;
        let host = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => host,
        };
        let file = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(CliError::InCluster(format!(
                    "{} is missing",
                    path.display()
                )))
            }
        };
        let namespace_file = file("namespace")?;
        let namespace = std::fs::read_to_string(&namespace_file)
            .map_err(|source| CliError::Io {
                what: format!("reading {}", namespace_file.display()),
                source,
            })?
            .trim()
            .to_owned();
        Ok(Self {
            server: format!("https://{host}:{port}"),
            token_file: file("token")?,
            ca_file: file("ca.crt")?,
            namespace,
        })
    }

    /// A kubeconfig naming the token and CA files (not their contents, so
    /// a rotated token is picked up), as the syncer's host kubeconfig.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), CliError> {
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "host", "cluster": {
                "server": self.server,
                "certificate-authority": self.ca_file,
            }}],
            "users": [{"name": "control-plane", "user": {"tokenFile": self.token_file}}],
            "contexts": [{"name": "host", "context": {
                "cluster": "host", "user": "control-plane", "namespace": self.namespace,
            }}],
            "current-context": "host",
        });
        let yaml = serde_yaml::to_string(&config).map_err(|e| CliError::Io {
            what: "writing the host kubeconfig".into(),
            source: std::io::Error::other(e),
        })?;
        vcluster_apiserver::state_files::write_private_file(path, yaml.as_bytes()).map_err(
            |source| CliError::Io {
                what: format!("writing {}", path.display()),
                source,
            },
        )
    }
}

/// Runs the control plane until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let in_cluster = InCluster::from_env(&args.service_account_dir)?;
    let names = Names::new(&args.name, &in_cluster.namespace);
    vcluster_apiserver::state_files::create_private_dir(&args.data_dir).map_err(|source| {
        CliError::Io {
            what: format!("creating {}", args.data_dir.display()),
            source,
        }
    })?;
    let host_kubeconfig = args.data_dir.join("host.kubeconfig");
    in_cluster.write_kubeconfig(&host_kubeconfig)?;
    let host = host_client(&host_kubeconfig).await?;

    let (config, _) = crate::config::load(args.config.as_deref())?;
    let export = &config.export_kube_config;
    if export.secret_namespace(&in_cluster.namespace) != in_cluster.namespace {
        return Err(CliError::Config(format!(
            "exportKubeConfig.secret.namespace: {} is not the host namespace {}; the control plane's Role grants only its own namespace",
            export.secret.namespace, in_cluster.namespace
        )));
    }
    let mut options = crate::config::options(
        &config,
        &args.name,
        &in_cluster.namespace,
        &args.data_dir.join("control-plane"),
    )?;
    options.host_kubeconfig = Some(host_kubeconfig);
    // Before anything else: a control plane without its Role stops here,
    // naming every permission it lacks.
    let rules = host_rules(&options.sync_config());
    check_host_access(&host, &in_cluster.namespace, &rules)
        .await
        .map_err(|e| CliError::ControlPlane(e.to_string()))?;

    // Tenant pods reach the control plane through its Service.
    let services: Api<Service> = Api::namespaced(host.clone(), &in_cluster.namespace);
    let service = services
        .get(&names.workload)
        .await
        .map_err(|source| CliError::Api {
            what: format!(
                "reading the control plane's Service {}/{} (made by `vcluster create`)",
                in_cluster.namespace, names.workload
            ),
            source,
        })?;
    let cluster_ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .ok_or_else(|| {
            CliError::ControlPlane(format!(
                "the Service {}/{} has no cluster IP",
                in_cluster.namespace, names.workload
            ))
        })?;
    // The flag, else the file's networking.serviceCIDR, else the host's.
    let host_service_cidr = match (&args.host_service_cidr, &config.networking.service_cidr) {
        (Some(cidr), _) | (None, Some(cidr)) => cidr.clone(),
        (None, None) => detect_service_cidr(&services).await?,
    };

    options.listen = args.listen;
    options.dns_listen = args.dns_listen;
    options.host_service_cidr = host_service_cidr;
    options.create_host_namespace = false;
    options.advertise = Some(Advertise {
        api_server: SocketAddr::new(cluster_ip, SERVICE_PORT),
        dns_server: cluster_ip,
    });
    let ns = &in_cluster.namespace;
    let service_name = &names.workload;
    options.tls_sans = [
        service_name.clone(),
        format!("{service_name}.{ns}"),
        format!("{service_name}.{ns}.svc"),
        format!("{service_name}.{ns}.svc.{}", options.cluster_domain),
        cluster_ip.to_string(),
    ]
    .into_iter()
    .chain(args.tls_sans.iter().cloned())
    .collect();

    share_credentials(&host, &in_cluster.namespace, &names, &options).await?;
    let running = demo::start(options)
        .await
        .map_err(|e| CliError::ControlPlane(e.to_string()))?;
    tracing::info!(
        name = %args.name,
        namespace = %in_cluster.namespace,
        listen = %running.virtual_addr,
        "control plane is serving"
    );
    let secret_name = export.secret_name(&args.name);
    let exported = exported_kubeconfig(export, &args.name, &running.kubeconfig).await?;
    publish_kubeconfig(&host, &in_cluster.namespace, &names, &secret_name, exported).await?;
    eprintln!(
        "virtual cluster {} serves on {}; kubeconfig in secret {}/{secret_name}",
        args.name, running.virtual_addr, in_cluster.namespace
    );
    tokio::select! {
        _ = wait_for_signal() => {
            running.shutdown().await;
            Ok(())
        }
        _ = running.leadership_lost() => {
            // As kube-controller-manager: a replica that lost the lease
            // must not act on what it believed; the pod restarts it as a
            // candidate.
            running.shutdown().await;
            Err(CliError::ControlPlane(
                "leader election lost (another replica holds the lease); exiting".into(),
            ))
        }
    }
}

/// Makes every replica use the same CA and keys: the first control plane
/// to start publishes its [`demo::SHARED_FILES`] in the Secret
/// `<name>-certs` (create-only, so of two racing replicas one wins); the
/// others, and this one after a restart on an empty volume, take them
/// from there.
async fn share_credentials(
    host: &kube::Client,
    namespace: &str,
    names: &Names,
    options: &DemoOptions,
) -> Result<(), CliError> {
    let secrets: Api<Secret> = Api::namespaced(host.clone(), namespace);
    let api_error = |what: &str, source| CliError::Api {
        what: format!(
            "{what} the shared credentials {namespace}/{}",
            names.certs_secret
        ),
        source,
    };
    let io_error = |path: &Path, source| CliError::Io {
        what: format!("{}", path.display()),
        source,
    };
    let published = match secrets.get_opt(&names.certs_secret).await {
        Ok(found) => found,
        Err(source) => return Err(api_error("reading", source)),
    };
    let published = match published {
        Some(secret) => secret,
        None => {
            demo::prepare_credentials(options)
                .map_err(|e| CliError::ControlPlane(e.to_string()))?;
            let mut data = BTreeMap::new();
            for file in demo::SHARED_FILES {
                let path = options.data_dir.join(file);
                let content = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
                data.insert((*file).to_owned(), ByteString(content));
            }
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(names.certs_secret.clone()),
                    namespace: Some(namespace.to_owned()),
                    labels: Some(labels(&names.workload)),
                    ..Default::default()
                },
                data: Some(data),
                type_: Some("Opaque".into()),
                ..Default::default()
            };
            match secrets.create(&PostParams::default(), &secret).await {
                // Ours are the shared ones.
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => secrets
                    .get(&names.certs_secret)
                    .await
                    .map_err(|source| api_error("reading", source))?,
                Err(source) => return Err(api_error("publishing", source)),
            }
        }
    };
    let files = published
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(name, content)| (name, content.0))
        .collect();
    demo::adopt_shared_files(&options.data_dir, &files).map_err(|e| {
        CliError::ControlPlane(format!(
            "{e} (from the Secret {namespace}/{}; delete it to have new credentials made, and clients then need a new kubeconfig)",
            names.certs_secret
        ))
    })
}

async fn host_client(kubeconfig: &Path) -> Result<kube::Client, CliError> {
    let error = |message: String| CliError::Kubeconfig {
        source_name: kubeconfig.display().to_string(),
        message,
    };
    let file = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| error(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .map_err(|e| error(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| error(e.to_string()))
}

/// The host's service range, as vCluster finds it: a dry-run Service with
/// an address no cluster uses is refused with a message naming the range.
pub async fn detect_service_cidr(services: &Api<Service>) -> Result<String, CliError> {
    let probe = Service {
        metadata: ObjectMeta {
            generate_name: Some("vcluster-cidr-probe-".into()),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
            cluster_ip: Some("4.4.4.4".into()),
            ports: Some(vec![k8s_openapi::api::core::v1::ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let message = match services.create(&params, &probe).await {
        Ok(_) => String::new(),
        Err(kube::Error::Api(status)) => status.message,
        Err(source) => {
            return Err(CliError::Api {
                what: "asking the host for its service range".into(),
                source,
            })
        }
    };
    parse_service_cidr(&message).ok_or_else(|| {
        CliError::ControlPlane(format!(
            "cannot tell the host's service range from its answer {message:?}; set it with --host-service-cidr or networking.serviceCIDR"
        ))
    })
}

/// The range in kube-apiserver's refusal (`The range of valid IPs is
/// 10.96.0.0/12`; newer servers may name several ranges, comma-separated:
/// the first is the primary).
pub fn parse_service_cidr(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("The range of valid IPs is ")?;
    let first = rest
        .split(|c: char| c == ',' || c.is_whitespace())
        .find(|part| !part.is_empty())?;
    let first = first.trim_end_matches('.');
    first.contains('/').then(|| first.to_owned())
}

/// The kubeconfig to publish, as `exportKubeConfig` asks: the control
/// plane's admin kubeconfig (`local`) with the server
/// ([`DEFAULT_EXPORT_SERVER`] unless `server` is set), context name and
/// TLS verification set, or a token of a virtual service account instead
/// of the admin certificate.
async fn exported_kubeconfig(
    export: &ExportKubeConfig,
    name: &str,
    local: &Path,
) -> Result<serde_json::Value, CliError> {
    let text = std::fs::read_to_string(local).map_err(|source| CliError::Io {
        what: format!("reading {}", local.display()),
        source,
    })?;
    let mut config: serde_json::Value = serde_yaml::from_str(&text).map_err(|e| CliError::Io {
        what: format!("reading {}", local.display()),
        source: std::io::Error::other(e),
    })?;
    if !export.service_account.name.is_empty() {
        let token = service_account_token(export, local).await?;
        config["users"][0]["user"] = serde_json::json!({ "token": token });
    }
    let server = if export.server.is_empty() {
        DEFAULT_EXPORT_SERVER
    } else {
        &export.server
    };
    let cluster = &mut config["clusters"][0]["cluster"];
    cluster["server"] = server.into();
    if export.insecure {
        if let Some(fields) = cluster.as_object_mut() {
            fields.remove("certificate-authority-data");
        }
        cluster["insecure-skip-tls-verify"] = true.into();
    }
    let context = if export.context.is_empty() {
        name
    } else {
        &export.context
    };
    for list in ["clusters", "users", "contexts"] {
        if let Some(entry) = config[list].get_mut(0) {
            entry["name"] = context.into();
        }
    }
    config["contexts"][0]["context"]["cluster"] = context.into();
    config["contexts"][0]["context"]["user"] = context.into();
    config["current-context"] = context.into();
    Ok(config)
}

/// A long-lived token of `exportKubeConfig.serviceAccount` in the virtual
/// cluster (made, with its ClusterRoleBinding, when missing).
async fn service_account_token(
    export: &ExportKubeConfig,
    local: &Path,
) -> Result<String, CliError> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};

    let client = host_client(local).await?;
    let account = &export.service_account;
    let namespace = export.service_account_namespace();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let mut object = ServiceAccount::default();
    object.metadata.name = Some(account.name.clone());
    let what = format!("the exported service account {namespace}/{}", account.name);
    create_if_absent(&accounts, &object, &what).await?;
    if !account.cluster_role.is_empty() {
        let what = format!(
            "the binding of ClusterRole {} to the exported service account",
            account.cluster_role
        );
        let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
        let binding = ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(format!("vcluster-export-{namespace}-{}", account.name)),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: account.cluster_role.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: account.name.clone(),
                namespace: Some(namespace.to_owned()),
                ..Default::default()
            }]),
        };
        create_if_absent(&bindings, &binding, &what).await?;
    }
    // A year, as a kubeconfig token is expected to last; the control plane
    // publishes a fresh one at every start.
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(365 * 24 * 3600),
            ..Default::default()
        },
        ..Default::default()
    };
    accounts
        .create_token_request(&account.name, &PostParams::default(), &request)
        .await
        .map_err(|source| CliError::Api {
            what: format!("requesting a token of {what}"),
            source,
        })?
        .status
        .map(|s| s.token)
        .ok_or_else(|| CliError::ControlPlane("the token request came back without a token".into()))
}

/// Writes the kubeconfig Secret (vCluster's layout: the kubeconfig under
/// `config`, and its credentials as PEM).
async fn publish_kubeconfig(
    host: &kube::Client,
    namespace: &str,
    names: &Names,
    secret_name: &str,
    config: serde_json::Value,
) -> Result<(), CliError> {
    let decode = |value: &serde_json::Value| {
        value
            .as_str()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .unwrap_or_default()
    };
    let mut data = BTreeMap::from([(
        "config".to_owned(),
        ByteString(
            serde_yaml::to_string(&config)
                .unwrap_or_default()
                .into_bytes(),
        ),
    )]);
    for (key, field) in [
        (
            "certificate-authority",
            &config["clusters"][0]["cluster"]["certificate-authority-data"],
        ),
        (
            "client-certificate",
            &config["users"][0]["user"]["client-certificate-data"],
        ),
        ("client-key", &config["users"][0]["user"]["client-key-data"]),
    ] {
        let pem = decode(field);
        if !pem.is_empty() {
            data.insert(key.to_owned(), ByteString(pem));
        }
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels(&names.workload)),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    let secrets: Api<Secret> = Api::namespaced(host.clone(), namespace);
    let mut value = serde_json::to_value(&secret).unwrap_or_default();
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    // Several replicas publish the same kubeconfig; a conflict is retried.
    let mut attempts = 0;
    loop {
        match secrets
            .patch(
                secret_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&value),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 && attempts < 5 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(source) => {
                return Err(CliError::Api {
                    what: format!("writing the kubeconfig secret {namespace}/{secret_name}"),
                    source,
                })
            }
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ranges_are_read_from_kube_apiservers_refusal() {
        let message = "Service \"x\" is invalid: spec.clusterIPs: Invalid value: [\"4.4.4.4\"]: failed to allocate IP 4.4.4.4: the provided IP (4.4.4.4) is not in the valid range. The range of valid IPs is 10.96.0.0/12";
        assert_eq!(parse_service_cidr(message).as_deref(), Some("10.96.0.0/12"));
        let several = "... The range of valid IPs is 10.0.0.0/24, fd00::/108";
        assert_eq!(parse_service_cidr(several).as_deref(), Some("10.0.0.0/24"));
        assert_eq!(parse_service_cidr("forbidden"), None);
    }

    #[test]
    fn in_cluster_needs_its_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Whether or not this runs in a pod, an empty directory is no
        // service account.
        let err = InCluster::from_env(dir.path()).expect_err("no env, no files");
        assert!(err.to_string().contains("not running in a pod"), "{err}");
    }
}
