//! Printers for services and the objects that route to them: endpoints,
//! endpoint slices, ingresses and network policies.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{
    age, format_label_selector, format_labels, get, int_at, list_at, list_with_more,
    load_balancer_ingress, map_at, name, opt_int, opt_str, str_at, NONE,
};
use super::Row;

/// NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE + SELECTOR.
pub(crate) fn service(svc: &Value, now: Timestamp) -> Row {
    // kube defaults the type on write, so it is never shown empty.
    let kind = match str_at(svc, &["spec", "type"]) {
        "" => "ClusterIP",
        kind => kind,
    };
    let ports: Vec<String> = list_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let protocol = match str_at(p, &["protocol"]) {
                "" => "TCP",
                protocol => protocol,
            };
            match int_at(p, &["nodePort"]) {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        NONE.to_owned()
    } else {
        ports.join(",")
    };
    vec![
        name(svc).into(),
        kind.into(),
        cluster_ip(svc).into(),
        external_ip(svc, kind).into(),
        ports.into(),
        age(svc, now).into(),
        format_labels(map_at(svc, &["spec", "selector"])).into(),
    ]
    .into()
}

/// `spec.clusterIP` (authoritative in v1), else the first of
/// `spec.clusterIPs`, else `<none>`.
fn cluster_ip(svc: &Value) -> &str {
    match str_at(svc, &["spec", "clusterIP"]) {
        "" => list_at(svc, &["spec", "clusterIPs"])
            .first()
            .map_or(NONE, |ip| ip.as_str().unwrap_or("")),
        ip => ip,
    }
}

/// kube's `getServiceExternalIP` in wide mode.
fn external_ip(svc: &Value, kind: &str) -> String {
    let external: Vec<&str> = list_at(svc, &["spec", "externalIPs"])
        .iter()
        .map(|ip| ip.as_str().unwrap_or(""))
        .collect();
    match kind {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => NONE.to_owned(),
        "LoadBalancer" => {
            let balancer = load_balancer_ingress(svc);
            if !external.is_empty() {
                let mut all: Vec<&str> = Vec::new();
                if !balancer.is_empty() {
                    all.extend(balancer.split(','));
                }
                all.extend(external);
                all.join(",")
            } else if !balancer.is_empty() {
                balancer
            } else {
                "<pending>".to_owned()
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

/// NAME ENDPOINTS AGE: up to three `ip:port` pairs and a count of the rest.
pub(crate) fn endpoints(ep: &Value, now: Timestamp) -> Row {
    vec![
        name(ep).into(),
        format_endpoints(ep).into(),
        age(ep, now).into(),
    ]
    .into()
}

/// kube's `formatEndpoints` for all ports.
fn format_endpoints(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list_at(ep, &["subsets"]);
    if subsets.is_empty() {
        return NONE.to_owned();
    }
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = list_at(subset, &["addresses"]);
        let ports = list_at(subset, &["ports"]);
        // Headless services may publish addresses without ports.
        let port_numbers: Vec<Option<i64>> = if ports.is_empty() {
            vec![None]
        } else {
            ports.iter().map(|p| Some(int_at(p, &["port"]))).collect()
        };
        for port in port_numbers {
            count = count.saturating_add(addresses.len());
            for address in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                let ip = str_at(address, &["ip"]);
                shown.push(match port {
                    None => ip.to_owned(),
                    Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
                    Some(port) => format!("{ip}:{port}"),
                });
            }
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

/// NAME ADDRESSTYPE PORTS ENDPOINTS AGE.
pub(crate) fn endpoint_slice(slice: &Value, now: Timestamp) -> Row {
    let ports: Vec<String> = list_at(slice, &["ports"])
        .iter()
        .map(|p| match (opt_int(p, &["port"]), opt_str(p, &["name"])) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_owned(),
            // A port without number means all ports.
            (None, None) => "*".to_owned(),
        })
        .collect();
    let addresses: Vec<String> = list_at(slice, &["endpoints"])
        .iter()
        .flat_map(|e| list_at(e, &["addresses"]))
        .map(|a| a.as_str().unwrap_or("").to_owned())
        .collect();
    vec![
        name(slice).into(),
        str_at(slice, &["addressType"]).into(),
        list_with_more(&ports, 3).into(),
        list_with_more(&addresses, 3).into(),
        age(slice, now).into(),
    ]
    .into()
}

/// NAME CLASS HOSTS ADDRESS PORTS AGE.
pub(crate) fn ingress(ing: &Value, now: Timestamp) -> Row {
    let class = match get(ing, &["spec", "ingressClassName"]) {
        Some(class) => class.as_str().unwrap_or(""),
        None => NONE,
    };
    let ports = if list_at(ing, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(ing).into(),
        class.into(),
        ingress_hosts(ing).into(),
        load_balancer_ingress(ing).into(),
        ports.into(),
        age(ing, now).into(),
    ]
    .into()
}

/// kube's `formatHosts`: up to three rule hosts, `*` when none is set.
fn ingress_hosts(ing: &Value) -> String {
    const MAX: usize = 3;
    let rules = list_at(ing, &["spec", "rules"]);
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        // Any rule after the third shown host makes kube add a remainder,
        // which counts rules, not hosts.
        if hosts.len() == MAX {
            more = true;
            break;
        }
        let host = str_at(rule, &["host"]);
        if !host.is_empty() {
            hosts.push(host);
        }
    }
    if hosts.is_empty() {
        return "*".to_owned();
    }
    let shown = hosts.join(",");
    if more {
        format!("{shown} + {} more...", rules.len().saturating_sub(MAX))
    } else {
        shown
    }
}

/// NAME POD-SELECTOR AGE.
pub(crate) fn network_policy(np: &Value, now: Timestamp) -> Row {
    let selector = format_label_selector(get(np, &["spec", "podSelector"]));
    vec![name(np).into(), selector.into(), age(np, now).into()].into()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cells, headers};
    use serde_json::{json, Value};

    const CREATED: &str = "2024-06-01T11:00:00Z";

    fn svc(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "svc", "creationTimestamp": CREATED}, "spec": spec, "status": status})
    }

    #[test]
    fn cluster_ip_service() {
        assert_eq!(
            headers("", "Service"),
            [
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
                "SELECTOR"
            ]
        );
        let object = svc(
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"port": 9153}],
                   "selector": {"k8s-app": "kube-dns", "a": "b"}}),
            json!({}),
        );
        assert_eq!(
            cells("", "Service", object),
            [
                "svc",
                "ClusterIP",
                "10.96.0.10",
                "<none>",
                "53/UDP,9153/TCP",
                "60m",
                "a=b,k8s-app=kube-dns"
            ]
        );
    }

    #[test]
    fn node_port_and_headless_services() {
        let node_port = svc(
            json!({"type": "NodePort", "clusterIPs": ["10.96.1.1"], "externalIPs": ["1.2.3.4"],
                   "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
            json!({}),
        );
        assert_eq!(
            cells("", "Service", node_port)[1..5],
            ["NodePort", "10.96.1.1", "1.2.3.4", "80:30080/TCP"]
        );
        let headless = svc(json!({"clusterIP": "None"}), Value::Null);
        assert_eq!(
            cells("", "Service", headless)[1..],
            ["ClusterIP", "None", "<none>", "<none>", "60m", "<none>"]
        );
    }

    #[test]
    fn load_balancer_services_pending_or_with_ingress() {
        let pending = svc(
            json!({"type": "LoadBalancer", "clusterIP": "10.96.2.2",
                   "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
            json!({"loadBalancer": {}}),
        );
        assert_eq!(cells("", "Service", pending)[3], "<pending>");
        let long_host = "a1b2c3d4e5f6-1234567890.eu-west-1.elb.amazonaws.com";
        let ready = svc(
            json!({"type": "LoadBalancer", "clusterIP": "10.96.2.2"}),
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": long_host},
                                                 {"ip": "203.0.113.9"}]}}),
        );
        // Never clipped: the server renders wide.
        assert_eq!(
            cells("", "Service", ready)[3],
            format!("203.0.113.9,{long_host}")
        );
        let with_external = svc(
            json!({"type": "LoadBalancer", "externalIPs": ["198.51.100.1"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}),
        );
        assert_eq!(
            cells("", "Service", with_external)[2..4],
            ["<none>", "203.0.113.9,198.51.100.1"]
        );
    }

    #[test]
    fn external_name_and_unknown_types() {
        let external = svc(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        );
        assert_eq!(
            cells("", "Service", external)[1..5],
            ["ExternalName", "<none>", "db.example.com", "<none>"]
        );
        let odd = svc(json!({"type": "Weird"}), json!({}));
        assert_eq!(cells("", "Service", odd)[3], "<unknown>");
    }

    #[test]
    fn endpoints_list_three_addresses_and_count_the_rest() {
        let ep = json!({
            "metadata": {"name": "web", "creationTimestamp": CREATED},
            "subsets": [
                {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
                {"addresses": [{"ip": "fd00::5"}]}
            ]
        });
        assert_eq!(
            cells("", "Endpoints", ep),
            [
                "web",
                "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...",
                "60m"
            ]
        );
        let v6 = json!({"metadata": {"name": "v6"},
                        "subsets": [{"addresses": [{"ip": "fd00::5"}], "ports": [{"port": 8080}]}]});
        assert_eq!(cells("", "Endpoints", v6)[1], "[fd00::5]:8080");
        assert_eq!(
            cells("", "Endpoints", json!({"metadata": {"name": "e"}}))[1],
            "<none>"
        );
    }

    #[test]
    fn endpoint_slices_show_ports_and_addresses() {
        assert_eq!(
            headers("discovery.k8s.io", "EndpointSlice"),
            ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
        );
        let slice = json!({
            "metadata": {"name": "web-abc", "creationTimestamp": CREATED},
            "addressType": "IPv4",
            "ports": [{"port": 80}, {"name": "metrics"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]
        });
        assert_eq!(
            cells("discovery.k8s.io", "EndpointSlice", slice),
            [
                "web-abc",
                "IPv4",
                "80,metrics,*",
                "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
                "60m"
            ]
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv6"});
        assert_eq!(
            cells("discovery.k8s.io", "EndpointSlice", empty)[2..4],
            ["<unset>", "<unset>"]
        );
    }

    #[test]
    fn ingresses_show_class_hosts_address_and_ports() {
        assert_eq!(
            headers("networking.k8s.io", "Ingress"),
            ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
        );
        let ing = json!({
            "metadata": {"name": "web", "creationTimestamp": CREATED},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                     "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.net"}]}}
        });
        assert_eq!(
            cells("networking.k8s.io", "Ingress", ing),
            [
                "web",
                "nginx",
                "a.example.com,b.example.com",
                "lb.example.net",
                "80, 443",
                "60m"
            ]
        );
        let bare = json!({"metadata": {"name": "catch-all"}, "spec": {"rules": [{}]}});
        assert_eq!(
            cells("networking.k8s.io", "Ingress", bare)[1..5],
            ["<none>", "*", "", "80"]
        );
        let many = json!({"metadata": {"name": "m"}, "spec": {"rules": [
            {"host": "a"}, {"host": "b"}, {"host": "c"}, {"host": "d"}, {"host": "e"}]}});
        assert_eq!(
            cells("networking.k8s.io", "Ingress", many)[2],
            "a,b,c + 2 more..."
        );
    }

    #[test]
    fn network_policies_show_the_pod_selector() {
        let np = |selector: Value| json!({"metadata": {"name": "deny", "creationTimestamp": CREATED}, "spec": {"podSelector": selector}});
        assert_eq!(
            cells("networking.k8s.io", "NetworkPolicy", np(json!({}))),
            ["deny", "<none>", "60m"]
        );
        assert_eq!(
            cells(
                "networking.k8s.io",
                "NetworkPolicy",
                np(json!({"matchLabels": {"app": "db"}}))
            )[1],
            "app=db"
        );
    }
}
