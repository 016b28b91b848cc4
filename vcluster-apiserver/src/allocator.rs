//! Cluster IPs and node ports for services, handed out as kube-apiserver
//! does: unique within the server, a requested one honoured when free,
//! released when the service goes.
//!
//! These allocators live in memory and are rebuilt from the stored
//! services at start-up, so they survive restarts of a persistent store.
//! An API server also records each allocation in its store
//! (`registry::services`), which is what decides between several servers
//! sharing one etcd; for them these allocators only suggest candidates.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

/// The default service network, as kubeadm clusters use.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The default node port range, as kube-apiserver uses.
pub const DEFAULT_NODE_PORTS: RangeInclusive<u16> = 30000..=32767;

/// Why an address or port could not be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// The CIDR string does not parse or is too small.
    #[error("invalid service CIDR {cidr:?}: {why}")]
    InvalidCidr {
        /// What was given.
        cidr: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A requested IP or port is outside the range.
    #[error("{value} is not in the range {range}")]
    OutOfRange {
        /// The requested value.
        value: String,
        /// The configured range.
        range: String,
    },
    /// A requested IP or port is taken.
    #[error("provided {what} {value} is already allocated")]
    Taken {
        /// `IP` or `port`.
        what: &'static str,
        /// The requested value.
        value: String,
    },
    /// Every address or port of the range is in use.
    #[error("range {range} is full")]
    Full {
        /// The configured range.
        range: String,
    },
}

/// Hands out IPv4 addresses from a CIDR, skipping network and broadcast.
#[derive(Debug, Clone)]
pub struct ClusterIpAllocator {
    cidr: String,
    base: u32,
    size: u32,
    used: BTreeSet<u32>,
    next: u32,
}

impl ClusterIpAllocator {
    /// An allocator over `cidr` (e.g. `10.96.0.0/12`).
    pub fn new(cidr: &str) -> Result<Self, AllocationError> {
        let invalid = |why| AllocationError::InvalidCidr {
            cidr: cidr.to_owned(),
            why,
        };
        let (addr, bits) = cidr.split_once('/').ok_or(invalid("missing /prefix"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid("not an IPv4 address"))?;
        let bits: u32 = bits
            .parse()
            .map_err(|_| invalid("prefix is not a number"))?;
        if !(1..=30).contains(&bits) {
            return Err(invalid("prefix must be between /1 and /30"));
        }
        let size = 1u32 << (32 - bits);
        let base = u32::from(addr) & !(size - 1);
        Ok(Self {
            cidr: cidr.to_owned(),
            base,
            size,
            used: BTreeSet::new(),
            next: 1,
        })
    }

    /// The first usable address: kube gives it to the `kubernetes` service.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// The range in canonical form (host bits cleared), as the
    /// `kubernetes` ServiceCIDR publishes it.
    pub fn canonical_cidr(&self) -> String {
        format!(
            "{}/{}",
            Ipv4Addr::from(self.base),
            32 - self.size.trailing_zeros()
        )
    }

    fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        let value = u32::from(ip);
        let offset = value.checked_sub(self.base)?;
        (offset >= 1 && offset < self.size - 1).then_some(offset)
    }

    /// Takes a specific address (a service that asks for one, or one read
    /// back from storage at start-up).
    pub fn allocate(&mut self, ip: Ipv4Addr) -> Result<(), AllocationError> {
        let offset = self.offset(ip).ok_or_else(|| AllocationError::OutOfRange {
            value: ip.to_string(),
            range: self.cidr.clone(),
        })?;
        if !self.used.insert(offset) {
            return Err(AllocationError::Taken {
                what: "IP",
                value: ip.to_string(),
            });
        }
        Ok(())
    }

    /// Takes the next free address, round-robin so a released address is
    /// not reused at once.
    pub fn allocate_next(&mut self) -> Result<Ipv4Addr, AllocationError> {
        let usable = self.size - 2;
        for i in 0..usable {
            let offset = 1 + (self.next - 1 + i) % usable;
            if self.used.insert(offset) {
                self.next = offset % usable + 1;
                return Ok(Ipv4Addr::from(self.base + offset));
            }
        }
        Err(AllocationError::Full {
            range: self.cidr.clone(),
        })
    }

    /// Gives an address back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        if let Some(offset) = self.offset(ip) {
            self.used.remove(&offset);
        }
    }

    /// Forgets every allocation and takes those of `ips` in this range.
    fn replace_used(&mut self, ips: &[Ipv4Addr]) {
        self.used = ips.iter().filter_map(|ip| self.offset(*ip)).collect();
    }
}

/// The service IP ranges of a server: a primary range that automatic
/// allocations come from, and extra ranges from which only explicitly
/// requested addresses are accepted.
///
/// A virtual cluster's API server lists the host's service range as extra:
/// the syncer can then give a virtual service the address the host
/// assigned, which never collides with a virtual allocation because the
/// two ranges are disjoint.
#[derive(Debug, Clone)]
pub struct ServiceIpRanges {
    primary: ClusterIpAllocator,
    extra: Vec<ClusterIpAllocator>,
}

impl ServiceIpRanges {
    /// Ranges from a primary CIDR and extra CIDRs.
    pub fn new(primary: &str, extra: &[String]) -> Result<Self, AllocationError> {
        Ok(Self {
            primary: ClusterIpAllocator::new(primary)?,
            extra: extra
                .iter()
                .map(|cidr| ClusterIpAllocator::new(cidr))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The first address of the primary range (the `kubernetes` service).
    pub fn first(&self) -> Ipv4Addr {
        self.primary.first()
    }

    /// The primary range, canonical.
    pub fn primary_cidr(&self) -> String {
        self.primary.canonical_cidr()
    }

    fn range_of(&mut self, ip: Ipv4Addr) -> Option<&mut ClusterIpAllocator> {
        if self.primary.offset(ip).is_some() {
            return Some(&mut self.primary);
        }
        self.extra.iter_mut().find(|r| r.offset(ip).is_some())
    }

    /// Takes a requested address from whichever range holds it.
    pub fn allocate(&mut self, ip: Ipv4Addr) -> Result<(), AllocationError> {
        let cidr = self.primary.cidr.clone();
        match self.range_of(ip) {
            Some(range) => range.allocate(ip),
            None => Err(AllocationError::OutOfRange {
                value: ip.to_string(),
                range: cidr,
            }),
        }
    }

    /// Takes the next free address of the primary range.
    pub fn allocate_next(&mut self) -> Result<Ipv4Addr, AllocationError> {
        self.primary.allocate_next()
    }

    /// Gives an address back to its range.
    pub fn release(&mut self, ip: Ipv4Addr) {
        if let Some(range) = self.range_of(ip) {
            range.release(ip);
        }
    }

    /// Replaces what is taken by exactly `ips` (the store's records).
    pub fn replace_used(&mut self, ips: impl IntoIterator<Item = Ipv4Addr>) {
        let ips: Vec<Ipv4Addr> = ips.into_iter().collect();
        self.primary.replace_used(&ips);
        for range in &mut self.extra {
            range.replace_used(&ips);
        }
    }
}

/// Hands out node ports from a range.
#[derive(Debug, Clone)]
pub struct NodePortAllocator {
    range: RangeInclusive<u16>,
    used: BTreeSet<u16>,
    next: u16,
}

impl NodePortAllocator {
    /// An allocator over `range` (e.g. 30000..=32767).
    pub fn new(range: RangeInclusive<u16>) -> Self {
        let next = *range.start();
        Self {
            range,
            used: BTreeSet::new(),
            next,
        }
    }

    fn range_text(&self) -> String {
        format!("{}-{}", self.range.start(), self.range.end())
    }

    /// Takes a specific port.
    pub fn allocate(&mut self, port: u16) -> Result<(), AllocationError> {
        if !self.range.contains(&port) {
            return Err(AllocationError::OutOfRange {
                value: port.to_string(),
                range: self.range_text(),
            });
        }
        if !self.used.insert(port) {
            return Err(AllocationError::Taken {
                what: "port",
                value: port.to_string(),
            });
        }
        Ok(())
    }

    /// Takes the next free port.
    pub fn allocate_next(&mut self) -> Result<u16, AllocationError> {
        let (start, end) = (*self.range.start(), *self.range.end());
        let span = u32::from(end - start) + 1;
        for i in 0..span {
            let offset = (u32::from(self.next - start) + i) % span;
            let port = start + offset as u16;
            if self.used.insert(port) {
                self.next = if port == end { start } else { port + 1 };
                return Ok(port);
            }
        }
        Err(AllocationError::Full {
            range: self.range_text(),
        })
    }

    /// Gives a port back.
    pub fn release(&mut self, port: u16) {
        self.used.remove(&port);
    }

    /// Replaces what is taken by exactly `ports` (the store's records).
    pub fn replace_used(&mut self, ports: impl IntoIterator<Item = u16>) {
        self.used = ports
            .into_iter()
            .filter(|p| self.range.contains(p))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ips_are_unique_and_reusable_after_release() {
        let mut ips = ClusterIpAllocator::new("10.0.0.0/29").expect("cidr");
        assert_eq!(ips.first(), Ipv4Addr::new(10, 0, 0, 1));
        ips.allocate(ips.first()).expect("first");
        let mut got = BTreeSet::new();
        for _ in 0..5 {
            got.insert(ips.allocate_next().expect("free address"));
        }
        assert_eq!(got.len(), 5);
        assert!(!got.contains(&Ipv4Addr::new(10, 0, 0, 1)));
        assert!(matches!(
            ips.allocate_next(),
            Err(AllocationError::Full { .. })
        ));
        ips.release(Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(
            ips.allocate_next().expect("released"),
            Ipv4Addr::new(10, 0, 0, 3)
        );
        assert!(matches!(
            ips.allocate(Ipv4Addr::new(10, 0, 0, 7)),
            Err(AllocationError::OutOfRange { .. })
        ));
        assert!(matches!(
            ips.allocate(Ipv4Addr::new(10, 0, 0, 2)),
            Err(AllocationError::Taken { .. })
        ));
    }

    #[test]
    fn extra_ranges_take_requests_but_never_hand_out() {
        let mut ranges =
            ServiceIpRanges::new("10.0.0.0/29", &["10.96.0.0/12".to_owned()]).expect("ranges");
        let host_ip = Ipv4Addr::new(10, 96, 3, 4);
        ranges
            .allocate(host_ip)
            .expect("requested from the extra range");
        assert!(matches!(
            ranges.allocate(host_ip),
            Err(AllocationError::Taken { .. })
        ));
        for _ in 0..6 {
            let ip = ranges.allocate_next().expect("primary");
            assert_eq!(
                u32::from(ip) >> 8,
                u32::from(Ipv4Addr::new(10, 0, 0, 0)) >> 8
            );
        }
        ranges.release(host_ip);
        ranges.allocate(host_ip).expect("released");
        assert!(ranges.allocate(Ipv4Addr::new(192, 168, 0, 1)).is_err());
    }

    #[test]
    fn bad_cidrs_are_rejected() {
        for bad in ["10.0.0.0", "10.0.0.0/31", "x/12", "10.0.0.0/x"] {
            assert!(ClusterIpAllocator::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_ports_cover_the_range_once() {
        let mut ports = NodePortAllocator::new(30000..=30002);
        ports.allocate(30001).expect("explicit");
        let a = ports.allocate_next().expect("a");
        let b = ports.allocate_next().expect("b");
        assert_eq!(BTreeSet::from([a, b]), BTreeSet::from([30000, 30002]));
        assert!(ports.allocate_next().is_err());
        assert!(ports.allocate(29999).is_err());
        ports.release(30001);
        assert_eq!(ports.allocate_next().expect("released"), 30001);
    }
}
