//! A throw-away PKI for a test cluster: a CA, a serving certificate for
//! loopback and the in-cluster names, an admin client certificate
//! (`O=system:masters`) and a service-account signing key; plus the
//! kubeconfig that uses them. [`TestCa`] is the same CA kept in memory, for
//! our own API server and its users.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// PEM files of a cluster's PKI, written into one folder.
#[derive(Clone, Debug)]
pub struct ClusterPki {
    /// The CA certificate clients and the API server trust.
    pub ca_cert: PathBuf,
    /// The API server's serving certificate.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// The admin's client certificate (CN=admin, O=system:masters).
    pub admin_cert: PathBuf,
    /// Its key.
    pub admin_key: PathBuf,
    /// The service-account token signing key (ECDSA P-256, PKCS#8).
    pub service_account_key: PathBuf,
    /// Its public half, which verifies the tokens.
    pub service_account_public_key: PathBuf,
}

impl ClusterPki {
    /// Makes a fresh PKI in `dir`; the serving certificate names loopback,
    /// `localhost`, the `kubernetes` service's DNS names and `service_ip`.
    pub fn generate(dir: &Path, service_ip: IpAddr) -> Result<Self, rcgen::Error> {
        let write = |name: &str, pem: String| -> PathBuf {
            let path = dir.join(name);
            // A fresh temporary folder: a failure here is the machine's.
            fs::write(&path, pem).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            path
        };

        let ca = TestCa::try_new()?;
        let (ca_pem, issuer) = (ca.ca_pem.clone(), &ca.issuer);

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            "kubernetes.default.svc.cluster.local".to_owned(),
        ])?;
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(service_ip));
        server_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, issuer)?;

        let (admin_cert, admin_key) = ca.try_client_cert("admin", &["system:masters"])?;

        let service_account_key = KeyPair::generate()?;

        Ok(Self {
            ca_cert: write("ca.crt", ca_pem),
            server_cert: write("server.crt", server_cert.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            admin_cert: write("admin.crt", admin_cert),
            admin_key: write("admin.key", admin_key),
            service_account_key: write("sa.key", service_account_key.serialize_pem()),
            service_account_public_key: write("sa.pub", service_account_key.public_key_pem()),
        })
    }

    /// A TLS connector that trusts this PKI's CA and presents the admin's
    /// client certificate (for raw clients and proxies).
    pub fn admin_tls_connector(&self) -> Result<tokio_rustls::TlsConnector, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let read_error =
            |path: &Path, e: rustls_pki_types::pem::Error| format!("{}: {e}", path.display());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca_cert)
            .map_err(|e| read_error(&self.ca_cert, e))?
        {
            roots
                .add(cert.map_err(|e| read_error(&self.ca_cert, e))?)
                .map_err(|e| e.to_string())?;
        }
        let chain = CertificateDer::pem_file_iter(&self.admin_cert)
            .map_err(|e| read_error(&self.admin_cert, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read_error(&self.admin_cert, e))?;
        let key = PrivateKeyDer::from_pem_file(&self.admin_key)
            .map_err(|e| read_error(&self.admin_key, e))?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| e.to_string())?;
        Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            config,
        )))
    }

    /// A kubeconfig for the admin at `server` (certificates embedded, so the
    /// file stands alone), written to `path`.
    pub fn write_admin_kubeconfig(&self, path: &Path, server: &str) -> std::io::Result<()> {
        let b64 = |file: &Path| -> std::io::Result<String> {
            Ok(base64::engine::general_purpose::STANDARD.encode(fs::read(file)?))
        };
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "real-host", "cluster": {
                "server": server,
                "certificate-authority-data": b64(&self.ca_cert)?,
            }}],
            "users": [{"name": "admin", "user": {
                "client-certificate-data": b64(&self.admin_cert)?,
                "client-key-data": b64(&self.admin_key)?,
            }}],
            "contexts": [{"name": "real-host", "context": {"cluster": "real-host", "user": "admin"}}],
            "current-context": "real-host",
        });
        // JSON is YAML: kubectl and kube-rs read it as a kubeconfig.
        fs::write(path, config.to_string())
    }
}

/// A CA in memory for our own secure API server (see
/// [`crate::cluster::Options::secure`]): its serving certificate and client
/// certificates for any user and groups, so RBAC tests can act as anyone.
pub struct TestCa {
    /// The CA certificate, PEM: clients trust it and the server verifies
    /// client certificates with it.
    pub ca_pem: String,
    /// The same, DER.
    pub ca_der: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    /// A fresh CA.
    pub fn new() -> Self {
        Self::try_new().expect("a test CA")
    }

    fn try_new() -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "vcluster-rs test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            ca_pem: cert.pem(),
            ca_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A serving certificate for 127.0.0.1 and localhost and its key (PEM).
    pub fn server_cert(&self) -> (String, String) {
        self.server_cert_for(&["localhost", "127.0.0.1"])
    }

    /// A serving certificate for `names` (DNS names or IP addresses) and
    /// its key (PEM): a webhook behind a service needs `<svc>.<ns>.svc`.
    pub fn server_cert_for(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "vcluster-rs test");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// A client certificate with CN `user` and an O per group, and its
    /// key (PEM).
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> (String, String) {
        self.try_client_cert(user, groups)
            .expect("a client certificate")
    }

    fn try_client_cert(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<(String, String), rcgen::Error> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, user);
        for (i, group) in groups.iter().enumerate() {
            // rcgen keeps one value per attribute type: further O's go in
            // as the same OID (2.5.4.10) spelled as a custom type.
            let ty = if i == 0 {
                rcgen::DnType::OrganizationName
            } else {
                rcgen::DnType::CustomDnType(vec![2, 5, 4, 10])
            };
            params.distinguished_name.push(ty, *group);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
