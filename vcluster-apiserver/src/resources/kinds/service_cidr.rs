//! Service CIDRs (networking.k8s.io/v1): the ranges service cluster IPs
//! come from. The `kubernetes` one, holding this server's service range,
//! exists from the start (see `registry/bootstrap.rs`); others are
//! stored and validated as upstream does, but this server allocates from
//! its configured range only.

use std::net::IpAddr;

use k8s_openapi::api::networking;
use serde_json::Value;

use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The ServiceCIDR kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "networking.k8s.io",
    "servicecidrs",
    "ServiceCIDR",
    Typed::of::<networking::v1::ServiceCIDR>(),
    &ServiceCidrs,
)
.with_status();

/// The rules of ServiceCIDR objects.
#[derive(Debug)]
struct ServiceCidrs;

impl Strategy for ServiceCidrs {
    /// Upstream's status strategy keeps the stored metadata.
    fn status_writes_metadata(&self) -> bool {
        false
    }

    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let cidrs = crate::object::path(object, "spec.cidrs")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if cidrs.is_empty() {
            causes.push(FieldCause::required("spec.cidrs"));
        }
        if cidrs.len() > 2 {
            causes.push(FieldCause {
                reason: "FieldValueTooMany",
                field: "spec.cidrs".into(),
                message: format!("Too many: {}: must have at most 2 items", cidrs.len()),
            });
        }
        for (i, cidr) in cidrs.iter().enumerate() {
            let cidr = cidr.as_str().unwrap_or("");
            match canonical_cidr(cidr) {
                Some(canonical) if canonical == cidr => {}
                Some(_) => causes.push(FieldCause::invalid(
                    format!("spec.cidrs[{i}]"),
                    cidr,
                    "must not have bits set beyond the prefix length",
                )),
                None => causes.push(FieldCause::invalid(
                    format!("spec.cidrs[{i}]"),
                    cidr,
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                )),
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        let cidrs = |o: &Value| crate::object::path(o, "spec.cidrs").cloned();
        if cidrs(old) != cidrs(new) {
            causes.push(FieldCause::immutable("spec.cidrs"));
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::SERVICE_CIDR, platform::service_cidr))
    }
}

/// `cidr` with its host bits cleared and the address written canonically,
/// or `None` when it is not a CIDR.
fn canonical_cidr(cidr: &str) -> Option<String> {
    let (address, prefix) = cidr.split_once('/')?;
    let address: IpAddr = address.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    let network = match address {
        IpAddr::V4(v4) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
        _ => return None,
    };
    Some(format!("{network}/{prefix}"))
}

#[cfg(test)]
mod tests {
    use super::canonical_cidr;

    #[test]
    fn cidrs_are_written_canonically() {
        assert_eq!(canonical_cidr("10.96.0.0/12").as_deref(), Some("10.96.0.0/12"));
        assert_eq!(canonical_cidr("10.96.0.1/12").as_deref(), Some("10.96.0.0/12"));
        assert_eq!(canonical_cidr("0.0.0.0/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(canonical_cidr("fd00::1/64").as_deref(), Some("fd00::/64"));
        assert_eq!(canonical_cidr("10.0.0.0/33"), None);
        assert_eq!(canonical_cidr("nonsense"), None);
    }
}
