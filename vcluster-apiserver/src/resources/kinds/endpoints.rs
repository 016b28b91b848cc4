//! Endpoints (core/v1): the addresses behind a service, written by the
//! endpoints controller.

use k8s_openapi::api::core;

use std::net::IpAddr;

use serde_json::{json, Value};
use vcluster_core::validation;

use super::fields::{default_field, invalid_raw, required_because, untrack_generation};
use super::{BuiltinKind};
use crate::error::FieldCause;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};

/// The Endpoints kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "endpoints",
    "Endpoints",
    Typed::of::<core::v1::Endpoints>(),
    &EndpointsStrategy,
)
.short_names(&["ep"]);

/// The rules of Endpoints objects.
#[derive(Debug)]
struct EndpointsStrategy;

impl Strategy for EndpointsStrategy {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
        let subsets = object.get_mut("subsets").and_then(Value::as_array_mut);
        for subset in subsets.into_iter().flatten() {
            let ports = subset.get_mut("ports").and_then(Value::as_array_mut);
            for port in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                default_field(port, "protocol", json!("TCP"));
            }
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let subsets = object.get("subsets").and_then(Value::as_array);
        for (i, subset) in subsets.into_iter().flatten().enumerate() {
            let at = format!("subsets[{i}]");
            let list = |name: &str| {
                subset
                    .get(name)
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
            };
            if list("addresses").is_empty() && list("notReadyAddresses").is_empty() {
                causes.push(required_because(
                    at.clone(),
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            for name in ["addresses", "notReadyAddresses"] {
                for (j, address) in list(name).iter().enumerate() {
                    validate_address(address, &format!("{at}.{name}[{j}]"), causes);
                }
            }
            let ports = list("ports");
            for (j, port) in ports.iter().enumerate() {
                validate_port(port, ports.len() > 1, &format!("{at}.ports[{j}]"), causes);
            }
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::ENDPOINTS, network::endpoints))
    }
}

/// An address's IP is a usable unicast one; its hostname a DNS label.
fn validate_address(address: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    let field = format!("{at}.ip");
    let ip = address.get("ip").and_then(Value::as_str).unwrap_or("");
    let parsed = ip.parse::<IpAddr>().ok();
    if parsed.is_none() {
        causes.push(FieldCause::invalid(
            field.clone(),
            ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    if let Some(hostname) = address.get("hostname").and_then(Value::as_str) {
        if !hostname.is_empty() {
            for why in validation::dns1123_label_errors(hostname) {
                causes.push(FieldCause::invalid(format!("{at}.hostname"), hostname, why));
            }
        }
    }
    let Some(parsed) = parsed else {
        causes.push(FieldCause::invalid(field, ip, "must be a valid IP address"));
        return;
    };
    if parsed.is_unspecified() {
        causes.push(FieldCause::invalid(
            field.clone(),
            ip,
            format!("may not be unspecified ({ip})"),
        ));
    }
    if parsed.is_loopback() {
        causes.push(FieldCause::invalid(
            field.clone(),
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local = match parsed {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        causes.push(FieldCause::invalid(
            field.clone(),
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
}

/// A port is named when there are several, numbered 1-65535, with a known
/// protocol.
fn validate_port(port: &Value, require_name: bool, at: &str, causes: &mut Vec<FieldCause>) {
    let name = port.get("name").and_then(Value::as_str).unwrap_or("");
    if require_name && name.is_empty() {
        causes.push(FieldCause::required(format!("{at}.name")));
    } else if !name.is_empty() {
        for why in validation::dns1123_label_errors(name) {
            causes.push(FieldCause::invalid(format!("{at}.name"), name, why));
        }
    }
    let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
    if !(1..=65535).contains(&number) {
        causes.push(invalid_raw(
            format!("{at}.port"),
            &number.to_string(),
            "must be between 1 and 65535, inclusive",
        ));
    }
    match port.get("protocol").and_then(Value::as_str).unwrap_or("") {
        "" => causes.push(FieldCause::required(format!("{at}.protocol"))),
        "TCP" | "UDP" | "SCTP" => {}
        other => causes.push(FieldCause::not_supported(
            format!("{at}.protocol"),
            other,
            &["SCTP", "TCP", "UDP"],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::{defaulted, invalid_fields};

    #[test]
    fn endpoints_need_usable_ips_and_get_tcp_ports() {
        let endpoints = |ip: &str| {
            defaulted(
                &KIND,
                json!({"subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 80}]}]}),
            )
        };
        let good = endpoints("10.1.2.3");
        assert_eq!(good["subsets"][0]["ports"][0]["protocol"], "TCP");
        assert!(invalid_fields(&KIND, &good).is_empty());
        assert_eq!(
            invalid_fields(&KIND, &endpoints("not-an-ip")),
            ["subsets[0].addresses[0].ip", "subsets[0].addresses[0].ip"]
        );
        assert_eq!(
            invalid_fields(&KIND, &endpoints("127.0.0.1")),
            ["subsets[0].addresses[0].ip"]
        );
    }
}
