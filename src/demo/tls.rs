//! Certificates of the demo: a CA, a serving certificate for loopback and
//! a client certificate for an admin user, generated once per data
//! directory and reused, so kubeconfigs written earlier keep working.

use std::fs;
use std::path::Path;

use vcluster_apiserver::state_files;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// PEM material of the demo's TLS.
#[derive(Clone, Debug)]
pub struct Certificates {
    /// The CA certificate clients trust.
    pub ca_cert: String,
    /// The CA's key: signs approved client certificate requests.
    pub ca_key: String,
    /// The server's certificate.
    pub server_cert: String,
    /// The server's private key.
    pub server_key: String,
    /// The admin user's client certificate (CN=admin, O=system:masters).
    pub admin_cert: String,
    /// The admin user's private key.
    pub admin_key: String,
}

/// Why certificates could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating failed.
    #[error("generating certificates failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Reading or writing the files failed.
    #[error("certificate file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

const FILES: [&str; 6] = [
    "ca.crt",
    "ca.key",
    "server.crt",
    "server.key",
    "admin.crt",
    "admin.key",
];

impl Certificates {
    /// Loads the certificates from `dir`, or makes and stores new ones.
    /// The serving certificate is valid for `localhost`, `127.0.0.1` and
    /// `extra_sans` (DNS names or IP addresses); when those changed since
    /// it was made, a new one is signed by the same CA, so kubeconfigs
    /// written earlier keep working.
    pub fn load_or_create(dir: &Path, extra_sans: &[String]) -> Result<Self, TlsError> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read_to_string(&path).map_err(|source| TlsError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        let write = |name: &str, content: &str| {
            let path = dir.join(name);
            // Keys and certificates alike: owner-only from the first byte.
            state_files::write_private_file(&path, content.as_bytes()).map_err(|source| {
                TlsError::Io {
                    path: path.display().to_string(),
                    source,
                }
            })
        };
        let wanted_sans = extra_sans.join("\n");
        // The CA and the admin's certificate are kept (another replica may
        // have written them here); the serving certificate is made again
        // when missing or for other names.
        if ["ca.crt", "ca.key", "admin.crt", "admin.key"]
            .iter()
            .all(|f| dir.join(f).is_file())
        {
            let mut certs = Self {
                ca_cert: read("ca.crt")?,
                ca_key: read("ca.key")?,
                server_cert: read("server.crt").unwrap_or_default(),
                server_key: read("server.key").unwrap_or_default(),
                admin_cert: read("admin.crt")?,
                admin_key: read("admin.key")?,
            };
            let recorded = read(SANS_FILE).unwrap_or_default();
            let missing = certs.server_cert.is_empty() || certs.server_key.is_empty();
            if missing || recorded.trim_end() != wanted_sans {
                let ca_key = KeyPair::from_pem(&certs.ca_key)?;
                let issuer = Issuer::from_ca_cert_pem(&certs.ca_cert, ca_key)?;
                (certs.server_cert, certs.server_key) = server_certificate(&issuer, extra_sans)?;
                write("server.crt", &certs.server_cert)?;
                write("server.key", &certs.server_key)?;
                write(SANS_FILE, &wanted_sans)?;
            }
            return Ok(certs);
        }
        let certs = Self::generate(extra_sans)?;
        let contents = [
            &certs.ca_cert,
            &certs.ca_key,
            &certs.server_cert,
            &certs.server_key,
            &certs.admin_cert,
            &certs.admin_key,
        ];
        for (name, content) in FILES.iter().zip(contents) {
            write(name, content)?;
        }
        write(SANS_FILE, &wanted_sans)?;
        Ok(certs)
    }

    /// Makes a fresh CA and the certificates it signs (the serving one
    /// also valid for `extra_sans`).
    pub fn generate(extra_sans: &[String]) -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        let mut ca_name = DistinguishedName::new();
        ca_name.push(DnType::CommonName, "vcluster-rs demo CA");
        ca_params.distinguished_name = ca_name;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let (server_cert, server_key) = server_certificate(&issuer, extra_sans)?;

        let admin_key = KeyPair::generate()?;
        let mut admin_params = CertificateParams::new(Vec::<String>::new())?;
        admin_params
            .distinguished_name
            .push(DnType::CommonName, "admin");
        admin_params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin_params.signed_by(&admin_key, &issuer)?;

        Ok(Self {
            ca_cert: ca_cert.pem(),
            ca_key: ca_key_pem,
            server_cert,
            server_key,
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
        })
    }
}

/// The file recording which extra names the serving certificate has.
const SANS_FILE: &str = "server.sans";

/// A serving certificate for `localhost`, `127.0.0.1` and `extra_sans`,
/// and its key (PEM).
fn server_certificate(
    issuer: &Issuer<'_, KeyPair>,
    extra_sans: &[String],
) -> Result<(String, String), TlsError> {
    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])?;
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    for san in extra_sans {
        let san = match san.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(san.clone().try_into()?),
        };
        if !server_params.subject_alt_names.contains(&san) {
            server_params.subject_alt_names.push(san);
        }
    }
    server_params
        .distinguished_name
        .push(DnType::CommonName, "vcluster-rs");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, issuer)?;
    Ok((server_cert.pem(), server_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_made_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Certificates::load_or_create(dir.path(), &[]).expect("create");
        let again = Certificates::load_or_create(dir.path(), &[]).expect("load");
        assert_eq!(first.ca_cert, again.ca_cert);
        assert_eq!(first.server_cert, again.server_cert);
        // New names: a new serving certificate from the same CA.
        let sans = ["vc.team-a.svc".to_owned(), "10.96.0.7".to_owned()];
        let renamed = Certificates::load_or_create(dir.path(), &sans).expect("re-issue");
        assert_eq!(renamed.ca_cert, first.ca_cert);
        assert_eq!(renamed.admin_cert, first.admin_cert);
        assert_ne!(renamed.server_cert, first.server_cert);
        // The names sit verbatim in the certificate's DER (IA5String and
        // the address's four octets).
        let body: String = renamed
            .server_cert
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64");
        let holds = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(holds(b"vc.team-a.svc"));
        assert!(
            holds(&[0x87, 4, 10, 96, 0, 7]),
            "the IP SAN (tag 7, 4 octets)"
        );
        assert!(first.server_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(first.admin_key.contains("PRIVATE KEY"));
        vcluster_apiserver::TlsConfig::from_pem(
            first.server_cert.as_bytes(),
            first.server_key.as_bytes(),
        )
        .expect("the server certificate is usable by the API server");
    }
}
