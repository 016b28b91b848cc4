//! The records of the cluster domain, as the Kubernetes DNS specification
//! (schema 1.1.0) lays them out, read from the [`Index`]:
//!
//! | name | records |
//! | --- | --- |
//! | `<svc>.<ns>.svc.<zone>` | A/AAAA: the cluster IPs; headless: the ready endpoints' addresses; ExternalName: CNAME |
//! | `<hostname>.<svc>.<ns>.svc.<zone>` | A/AAAA of a headless service's endpoint (its `hostname`, or its address with dashes) |
//! | `_<port>._<proto>.<svc>.<ns>.svc.<zone>` | SRV per named port (headless: per ready endpoint) |
//! | `<a-b-c-d>.<ns>.pod.<zone>` | A/AAAA, when a pod of `<ns>` has that IP |
//! | `dns-version.<zone>` | TXT `1.1.0` |
//! | `<reversed-ip>.in-addr.arpa` / `.ip6.arpa` | PTR of a cluster IP (the service name) or of a headless endpoint (its name); other addresses go upstream |
//!
//! A name in the zone with no records is NXDOMAIN, a name with records of
//! other types is NOERROR without answers (NODATA); both carry the zone's
//! SOA in the authority section, so resolvers cache the negative answer
//! for the SOA's minimum TTL, as CoreDNS does.

use std::net::IpAddr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

use crate::index::{read, Index, NamedPort, ServiceRecord};

/// The version of the Kubernetes DNS schema these records follow.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// The cluster domain and the TTL of its records.
#[derive(Clone, Debug)]
pub(crate) struct Zone {
    /// The domain, lowercase, without the trailing dot.
    domain: String,
    /// The domain as a fully qualified name.
    origin: Name,
    ttl: u32,
    serial: u32,
    /// Addresses answered for `kubernetes.default.svc` instead of the
    /// virtual Service's (see `DnsOptions::kubernetes_addresses`).
    kubernetes: Vec<IpAddr>,
}

/// What to do with a query.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Not in the cluster domain: the upstream resolver answers.
    Forward,
    /// An authoritative answer from the cluster domain.
    Answer(Answer),
}

/// An authoritative answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// NOERROR or NXDOMAIN.
    pub code: ResponseCode,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section (the SOA of negative answers).
    pub authority: Vec<Record>,
    /// The additional section (addresses of SRV targets).
    pub additionals: Vec<Record>,
    /// An ExternalName service's target outside the zone, whose records of
    /// the asked type the upstream resolver adds (a stub resolver expects
    /// its server to follow the CNAME).
    pub chase: Option<Name>,
}

impl Zone {
    /// The zone of `domain` (e.g. `cluster.local`) with records of `ttl`.
    pub fn new(domain: &str, ttl: u32) -> Result<Self, String> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let origin = Name::from_ascii(format!("{domain}."))
            .map_err(|e| format!("the cluster domain {domain:?} is not a DNS name: {e}"))?;
        // The SOA serial only needs to be stable while the server runs.
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(Self {
            domain,
            origin,
            ttl,
            serial,
            kubernetes: Vec::new(),
        })
    }

    /// Answers `kubernetes.default.svc.<zone>` with `addresses` (empty:
    /// the virtual Service's cluster IP, like any service).
    pub fn with_kubernetes(mut self, addresses: Vec<IpAddr>) -> Self {
        self.kubernetes = addresses;
        self
    }

    fn name(&self, relative: &str) -> Name {
        // Labels come from validated Kubernetes names; a name that still
        // does not parse falls back to the zone itself.
        Name::from_ascii(format!("{relative}.{}.", self.domain))
            .unwrap_or_else(|_| self.origin.clone())
    }

    fn soa(&self) -> Record {
        let rdata = SOA::new(
            self.name("ns.dns"),
            self.name("hostmaster"),
            self.serial,
            7200,
            1800,
            86400,
            self.ttl,
        );
        Record::from_rdata(self.origin.clone(), self.ttl, RData::SOA(rdata))
    }

    fn address(&self, name: &Name, ip: IpAddr) -> Record {
        let rdata = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        Record::from_rdata(name.clone(), self.ttl, rdata)
    }

    fn negative(&self, code: ResponseCode) -> Outcome {
        Outcome::Answer(Answer {
            code,
            answers: Vec::new(),
            authority: vec![self.soa()],
            additionals: Vec::new(),
            chase: None,
        })
    }

    /// `name`'s A or AAAA answer (as `qtype` asks) from `ips`.
    fn addresses(
        &self,
        name: &Name,
        qtype: RecordType,
        ips: impl IntoIterator<Item = IpAddr>,
    ) -> Outcome {
        let answers = ips
            .into_iter()
            .filter(|ip| wanted(qtype, *ip))
            .map(|ip| self.address(name, ip))
            .collect();
        self.records(answers, Vec::new())
    }

    fn records(&self, answers: Vec<Record>, additionals: Vec<Record>) -> Outcome {
        if answers.is_empty() {
            return self.negative(ResponseCode::NoError);
        }
        Outcome::Answer(Answer {
            code: ResponseCode::NoError,
            answers,
            authority: Vec::new(),
            additionals,
            chase: None,
        })
    }

    /// Answers `qtype` for `name` from `index`.
    pub fn lookup(&self, index: &Index, name: &Name, qtype: RecordType) -> Outcome {
        let full = name.to_lowercase().to_ascii();
        let full = full.trim_end_matches('.');
        if qtype == RecordType::PTR {
            if let Some(ip) = reverse_address(full) {
                return self.reverse(index, name, ip);
            }
        }
        let relative = if full == self.domain {
            ""
        } else if let Some(prefix) = full.strip_suffix(&format!(".{}", self.domain)) {
            prefix
        } else {
            return Outcome::Forward;
        };
        let labels: Vec<&str> = if relative.is_empty() {
            Vec::new()
        } else {
            relative.split('.').collect()
        };
        let nxdomain = self.negative(ResponseCode::NXDomain);
        match labels.as_slice() {
            [] => match qtype {
                RecordType::SOA => self.records(vec![self.soa()], Vec::new()),
                _ => self.records(Vec::new(), Vec::new()),
            },
            ["dns-version"] => match qtype {
                RecordType::TXT => {
                    let txt = TXT::new(vec![SCHEMA_VERSION.to_owned()]);
                    self.records(
                        vec![Record::from_rdata(name.clone(), self.ttl, RData::TXT(txt))],
                        Vec::new(),
                    )
                }
                _ => self.records(Vec::new(), Vec::new()),
            },
            ["svc"] | ["pod"] => self.records(Vec::new(), Vec::new()),
            [namespace, "svc"] => {
                if read(&index.services).in_namespace(namespace) {
                    self.records(Vec::new(), Vec::new())
                } else {
                    nxdomain
                }
            }
            [service, namespace, "svc"] => self.service(index, name, namespace, service, qtype),
            [port, proto, service, namespace, "svc"]
                if port.starts_with('_') && proto.starts_with('_') =>
            {
                self.srv(
                    index,
                    name,
                    namespace,
                    service,
                    &port[1..],
                    &proto[1..],
                    qtype,
                )
            }
            [host, service, namespace, "svc"] => {
                self.endpoint(index, name, namespace, service, host, qtype)
            }
            [address, namespace, "pod"] => self.pod(index, name, namespace, address, qtype),
            _ => nxdomain,
        }
    }

    /// The PTR record of a service's cluster IP or of a headless
    /// service's endpoint (as CoreDNS answers them); other addresses go
    /// upstream (CoreDNS's `fallthrough in-addr.arpa ip6.arpa`).
    fn reverse(&self, index: &Index, name: &Name, ip: IpAddr) -> Outcome {
        let service = read(&index.services).with_ip(ip).cloned();
        let target = match service {
            Some((namespace, service)) => Some(format!("{service}.{namespace}.svc")),
            None => {
                let services = read(&index.services);
                let slices = read(&index.slices);
                let found = slices.with_address(ip).find_map(|(namespace, slice)| {
                    let headless = matches!(
                        services.get(namespace, &slice.service),
                        Some(ServiceRecord::Headless { .. })
                    );
                    let endpoint = slice
                        .endpoints
                        .iter()
                        .find(|e| e.addresses.contains(&ip))
                        .filter(|_| headless)?;
                    let host = endpoint.hostname.clone().unwrap_or_else(|| dashed(ip));
                    Some(format!("{host}.{}.{namespace}.svc", slice.service))
                });
                found
            }
        };
        let Some(target) = target else {
            return Outcome::Forward;
        };
        let ptr = Record::from_rdata(name.clone(), self.ttl, RData::PTR(PTR(self.name(&target))));
        Outcome::Answer(Answer {
            code: ResponseCode::NoError,
            answers: vec![ptr],
            authority: Vec::new(),
            additionals: Vec::new(),
            chase: None,
        })
    }

    fn service(
        &self,
        index: &Index,
        name: &Name,
        namespace: &str,
        service: &str,
        qtype: RecordType,
    ) -> Outcome {
        let mut record = read(&index.services).get(namespace, service).cloned();
        if namespace == "default" && service == "kubernetes" && !self.kubernetes.is_empty() {
            if let Some(ServiceRecord::ClusterIp { ips, .. }) = record.as_mut() {
                ips.clone_from(&self.kubernetes);
            }
        }
        match record {
            None => self.negative(ResponseCode::NXDomain),
            Some(ServiceRecord::ExternalName(target)) => self.external_name(name, &target, qtype),
            Some(ServiceRecord::ClusterIp { ips, .. }) => self.addresses(name, qtype, ips),
            Some(ServiceRecord::Headless { publish_not_ready }) => {
                let slices = read(&index.slices);
                let addresses: Vec<IpAddr> = slices
                    .of_service(namespace, service)
                    .flat_map(|s| s.endpoints.iter())
                    .filter(|e| e.ready || publish_not_ready)
                    .flat_map(|e| e.addresses.iter().copied())
                    .collect();
                // A headless service without ready endpoints has no name
                // (as CoreDNS answers it).
                if addresses.is_empty() {
                    return self.negative(ResponseCode::NXDomain);
                }
                self.addresses(name, qtype, addresses)
            }
        }
    }

    fn external_name(&self, name: &Name, target: &str, qtype: RecordType) -> Outcome {
        let Ok(target) = Name::from_ascii(format!("{}.", target.trim_end_matches('.'))) else {
            return self.negative(ResponseCode::ServFail);
        };
        let cname = Record::from_rdata(name.clone(), self.ttl, RData::CNAME(CNAME(target.clone())));
        let chase = (qtype != RecordType::CNAME).then_some(target);
        Outcome::Answer(Answer {
            code: ResponseCode::NoError,
            answers: vec![cname],
            authority: Vec::new(),
            additionals: Vec::new(),
            chase,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn srv(
        &self,
        index: &Index,
        name: &Name,
        namespace: &str,
        service: &str,
        port: &str,
        proto: &str,
        qtype: RecordType,
    ) -> Outcome {
        let record = read(&index.services).get(namespace, service).cloned();
        let matches = |p: &NamedPort| p.name == port && p.protocol == proto;
        let service_name = self.name(&format!("{service}.{namespace}.svc"));
        match record {
            Some(ServiceRecord::ClusterIp { ips, ports }) => {
                let Some(found) = ports.iter().find(|p| matches(p)) else {
                    return self.negative(ResponseCode::NXDomain);
                };
                if qtype != RecordType::SRV {
                    return self.records(Vec::new(), Vec::new());
                }
                let srv = SRV::new(0, 100, found.port, service_name.clone());
                let additionals = ips
                    .into_iter()
                    .map(|ip| self.address(&service_name, ip))
                    .collect();
                self.records(
                    vec![Record::from_rdata(name.clone(), self.ttl, RData::SRV(srv))],
                    additionals,
                )
            }
            Some(ServiceRecord::Headless { publish_not_ready }) => {
                let slices = read(&index.slices);
                let mut targets: Vec<(u16, Name, Vec<IpAddr>)> = Vec::new();
                for slice in slices.of_service(namespace, service) {
                    let Some(found) = slice.ports.iter().find(|p| matches(p)) else {
                        continue;
                    };
                    for endpoint in slice
                        .endpoints
                        .iter()
                        .filter(|e| e.ready || publish_not_ready)
                    {
                        let Some(first) = endpoint.addresses.first() else {
                            continue;
                        };
                        let host = endpoint.hostname.clone().unwrap_or_else(|| dashed(*first));
                        let target = self.name(&format!("{host}.{service}.{namespace}.svc"));
                        targets.push((found.port, target, endpoint.addresses.clone()));
                    }
                }
                if targets.is_empty() {
                    return self.negative(ResponseCode::NXDomain);
                }
                if qtype != RecordType::SRV {
                    return self.records(Vec::new(), Vec::new());
                }
                // Equal shares of 100, as CoreDNS weighs endpoints.
                let weight = (100 / targets.len()).max(1) as u16;
                let mut answers = Vec::new();
                let mut additionals = Vec::new();
                for (port, target, addresses) in targets {
                    let srv = SRV::new(0, weight, port, target.clone());
                    answers.push(Record::from_rdata(name.clone(), self.ttl, RData::SRV(srv)));
                    additionals.extend(addresses.into_iter().map(|ip| self.address(&target, ip)));
                }
                self.records(answers, additionals)
            }
            _ => self.negative(ResponseCode::NXDomain),
        }
    }

    fn endpoint(
        &self,
        index: &Index,
        name: &Name,
        namespace: &str,
        service: &str,
        host: &str,
        qtype: RecordType,
    ) -> Outcome {
        let record = read(&index.services).get(namespace, service).cloned();
        let Some(ServiceRecord::Headless { publish_not_ready }) = record else {
            return self.negative(ResponseCode::NXDomain);
        };
        let slices = read(&index.slices);
        let addresses: Vec<IpAddr> = slices
            .of_service(namespace, service)
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.ready || publish_not_ready)
            .filter(|e| match &e.hostname {
                Some(hostname) => hostname == host,
                None => e.addresses.first().is_some_and(|ip| dashed(*ip) == host),
            })
            .flat_map(|e| e.addresses.iter().copied())
            .collect();
        if addresses.is_empty() {
            return self.negative(ResponseCode::NXDomain);
        }
        self.addresses(name, qtype, addresses)
    }

    fn pod(
        &self,
        index: &Index,
        name: &Name,
        namespace: &str,
        address: &str,
        qtype: RecordType,
    ) -> Outcome {
        let Some(ip) = undashed(address) else {
            return self.negative(ResponseCode::NXDomain);
        };
        if !read(&index.pods).has(namespace, ip) {
            return self.negative(ResponseCode::NXDomain);
        }
        let answers = if wanted(qtype, ip) {
            vec![self.address(name, ip)]
        } else {
            Vec::new()
        };
        self.records(answers, Vec::new())
    }
}

/// Whether an address answers a query of `qtype`.
fn wanted(qtype: RecordType, ip: IpAddr) -> bool {
    matches!(
        (qtype, ip),
        (RecordType::A, IpAddr::V4(_)) | (RecordType::AAAA, IpAddr::V6(_))
    )
}

/// An address as one DNS label: `10.1.2.3` -> `10-1-2-3`,
/// `fd00::1` -> `fd00--1`.
pub(crate) fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// The address a reverse name stands for: `4.3.2.1.in-addr.arpa` ->
/// `1.2.3.4`; `ip6.arpa` names of 32 nibbles likewise.
fn reverse_address(name: &str) -> Option<IpAddr> {
    if let Some(labels) = name.strip_suffix(".in-addr.arpa") {
        let mut octets: Vec<u8> = labels
            .split('.')
            .map(|l| l.parse::<u8>().ok())
            .collect::<Option<_>>()?;
        octets.reverse();
        let octets: [u8; 4] = octets.try_into().ok()?;
        return Some(IpAddr::from(octets));
    }
    let labels = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = labels
        .split('.')
        .map(|l| u8::from_str_radix(l, 16).ok().filter(|_| l.len() == 1))
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, pair) in nibbles.rchunks(2).enumerate() {
        // Reversed: the last label is the highest nibble of byte 0.
        bytes[i] = (pair[1] << 4) | pair[0];
    }
    Some(IpAddr::from(bytes))
}

/// The address of a dashed label (see [`dashed`]).
fn undashed(label: &str) -> Option<IpAddr> {
    let v4 = label.replace('-', ".");
    if let Ok(ip) = v4.parse::<std::net::Ipv4Addr>() {
        return Some(IpAddr::V4(ip));
    }
    label
        .replace('-', ":")
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_give_their_address() {
        assert_eq!(
            reverse_address("4.3.2.10.in-addr.arpa"),
            Some("10.2.3.4".parse().expect("ip"))
        );
        assert_eq!(
            reverse_address(
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
            ),
            Some("2001:db8::1".parse().expect("ip"))
        );
        assert_eq!(reverse_address("3.2.1.in-addr.arpa"), None);
        assert_eq!(reverse_address("example.com"), None);
    }

    #[test]
    fn addresses_round_trip_through_labels() {
        for ip in ["10.1.2.3", "fd00::1", "2001:db8::a:1"] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(undashed(&dashed(ip)), Some(ip));
        }
        assert_eq!(undashed("not-an-ip"), None);
    }

    #[test]
    fn names_outside_the_zone_are_forwarded_and_unknown_ones_are_nxdomain() {
        let zone = Zone::new("cluster.local", 5).expect("zone");
        let index = Index::default();
        let name = |n: &str| Name::from_ascii(n).expect("name");
        assert!(matches!(
            zone.lookup(&index, &name("example.com."), RecordType::A),
            Outcome::Forward
        ));
        let Outcome::Answer(answer) =
            zone.lookup(&index, &name("web.team.svc.cluster.local."), RecordType::A)
        else {
            panic!("in the zone");
        };
        assert_eq!(answer.code, ResponseCode::NXDomain);
        assert_eq!(answer.authority[0].record_type(), RecordType::SOA);
        let Outcome::Answer(answer) =
            zone.lookup(&index, &name("dns-version.cluster.local."), RecordType::TXT)
        else {
            panic!("in the zone");
        };
        assert_eq!(answer.answers.len(), 1);
    }
}
