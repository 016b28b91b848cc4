//! A stream request's query: the API server's names (`stdin`, `stdout`,
//! `stderr`, `tty`, `command`, `ports`) or the kubelet's (`input`,
//! `output`, `error`, `tty`, `command`), as kube-apiserver rewrites them
//! when it proxies to a node.

use crate::backend::{ProcessOptions, StreamError};

/// Whose parameter names a query uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryStyle {
    /// `PodExecOptions` as clients send them to the API server.
    ApiServer,
    /// The kubelet's streaming endpoints.
    Kubelet,
}

impl ProcessOptions {
    /// Reads an exec or attach query; `container` is the API server's
    /// `container` parameter, returned beside the options.
    pub fn from_query(
        query: Option<&str>,
        style: QueryStyle,
    ) -> Result<(Self, Option<String>), StreamError> {
        let (stdin, stdout, stderr) = match style {
            QueryStyle::ApiServer => ("stdin", "stdout", "stderr"),
            QueryStyle::Kubelet => ("input", "output", "error"),
        };
        let mut options = ProcessOptions::default();
        let mut container = None;
        for (key, value) in form_pairs(query) {
            let flag = || parse_bool(&key, &value);
            match key.as_str() {
                k if k == stdin => options.stdin = flag()?,
                k if k == stdout => options.stdout = flag()?,
                k if k == stderr => options.stderr = flag()?,
                "tty" => options.tty = flag()?,
                "command" => options.command.push(value),
                "container" => container = Some(value),
                _ => {}
            }
        }
        if !(options.stdin || options.stdout || options.stderr) {
            return Err(StreamError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        if options.tty {
            // A terminal merges stderr into stdout.
            options.stderr = false;
        }
        Ok((options, container))
    }
}

impl ProcessOptions {
    /// The `container` an API server query names, read on its own: the
    /// container is checked before anything else of the query.
    pub fn requested_container(query: Option<&str>) -> Option<String> {
        form_pairs(query)
            .into_iter()
            .find(|(k, _)| k == "container")
            .map(|(_, v)| v)
    }
}

/// The ports of a port-forward query (repeated or comma-separated):
/// `ports` as clients name them to the API server, `port` as
/// kube-apiserver names them to a kubelet.
pub fn parse_ports(query: Option<&str>) -> Result<Vec<u16>, StreamError> {
    let mut ports = Vec::new();
    for (key, value) in form_pairs(query) {
        if key != "ports" && key != "port" {
            continue;
        }
        for text in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match text.parse::<u16>() {
                Ok(port) if port > 0 => ports.push(port),
                _ => {
                    return Err(StreamError::bad_request(format!(
                        "invalid port {text:?}: must be between 1 and 65535, inclusive"
                    )))
                }
            }
        }
    }
    Ok(ports)
}

fn form_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding with `+` as a space, as Go's `url.ParseQuery` reads.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `strconv.ParseBool`, which query parameters are parsed with.
fn parse_bool(key: &str, value: &str) -> Result<bool, StreamError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" | "" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(StreamError::bad_request(format!(
            "invalid value {value:?} for {key}: strconv.ParseBool: parsing {value:?}: invalid syntax"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kubectls_exec_query() {
        let (options, container) = ProcessOptions::from_query(
            Some("command=sh&command=-c&command=echo+a%20b&container=app&stdin=true&stdout=true&tty=true&stderr=true"),
            QueryStyle::ApiServer,
        )
        .unwrap();
        assert_eq!(options.command, ["sh", "-c", "echo a b"]);
        assert_eq!(container.as_deref(), Some("app"));
        assert!(options.stdin && options.stdout && options.tty && !options.stderr);
    }

    #[test]
    fn reads_the_kubelets_names() {
        let (options, _) =
            ProcessOptions::from_query(Some("command=ls&output=1&error=1"), QueryStyle::Kubelet)
                .unwrap();
        assert!(options.stdout && options.stderr && !options.stdin);
    }

    #[test]
    fn refuses_a_stream_with_nothing_to_carry() {
        let err =
            ProcessOptions::from_query(Some("command=ls"), QueryStyle::ApiServer).unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn ports_repeat_or_list() {
        assert_eq!(
            parse_ports(Some("ports=80,443&ports=8080")).unwrap(),
            [80, 443, 8080]
        );
        assert!(parse_ports(Some("ports=0")).is_err());
        assert!(parse_ports(Some("ports=http")).is_err());
    }
}
