//! IP addresses (networking.k8s.io/v1): one object per allocated service
//! IP, named by the address in canonical form, naming its owner in
//! `parentRef`. Stored and validated as upstream does; the service
//! allocator writes one for each cluster IP it hands out (the record that
//! servers sharing a store decide by, see `registry::services`), and one a
//! client creates blocks its address.

use std::net::IpAddr;

use k8s_openapi::api::networking;
use serde_json::Value;

use super::fields::require_text;
use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The IPAddress kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "networking.k8s.io",
    "ipaddresses",
    "IPAddress",
    Typed::of::<networking::v1::IPAddress>(),
    &IpAddresses,
)
.short_names(&["ip"]);

/// The rules of IPAddress objects.
#[derive(Debug)]
struct IpAddresses;

impl Strategy for IpAddresses {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn name_errors(&self, name: &str) -> Vec<String> {
        match name.parse::<IpAddr>() {
            Ok(ip) if ip.to_string() == name => Vec::new(),
            Ok(ip) => vec![format!("must be in canonical form (\"{ip}\")")],
            Err(_) => vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into()],
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        if crate::object::path(object, "spec.parentRef").is_none_or(Value::is_null) {
            causes.push(FieldCause::required("spec.parentRef"));
            return;
        }
        require_text(object, "spec.parentRef.resource", causes);
        require_text(object, "spec.parentRef.name", causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        let parent = |o: &Value| crate::object::path(o, "spec.parentRef").cloned();
        if parent(old) != parent(new) {
            causes.push(FieldCause::immutable("spec.parentRef"));
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::IP_ADDRESS, platform::ip_address))
    }
}
