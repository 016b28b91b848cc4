//! The upgrade handshake: which transport (WebSocket or SPDY) and which
//! subprotocol a client gets, picked the way the kubelet and
//! kube-apiserver pick them (the client's first choice the server speaks),
//! and the `101 Switching Protocols` answer that says so.

use http::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::backend::StreamError;

/// The SPDY header naming the client's subprotocols (one or more headers,
/// each possibly a comma-separated list).
pub const STREAM_PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";

/// remotecommand over WebSocket with the stream-close signal.
pub const V5_CHANNEL: &str = "v5.channel.k8s.io";
/// remotecommand with a JSON `Status` on the error channel.
pub const V4_CHANNEL: &str = "v4.channel.k8s.io";
/// remotecommand with terminal resizing, errors as text.
pub const V3_CHANNEL: &str = "v3.channel.k8s.io";
/// remotecommand, errors as text.
pub const V2_CHANNEL: &str = "v2.channel.k8s.io";
/// The first remotecommand protocol.
pub const V1_CHANNEL: &str = "channel.k8s.io";
/// Port-forward over SPDY.
pub const PORT_FORWARD: &str = "portforward.k8s.io";
/// Port-forward's SPDY carried in WebSocket messages (kubectl 1.31+).
pub const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// What a stream request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// `pods/exec` or `pods/attach`.
    Process,
    /// `pods/portforward`.
    PortForward,
}

/// The transport a client upgraded to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket, with the `Sec-WebSocket-Accept` answer.
    WebSocket {
        /// The accept key derived from the client's key.
        accept: String,
    },
    /// SPDY/3.1.
    Spdy,
}

/// The outcome of a handshake: the transport and the chosen subprotocol
/// (`""` for a client that named none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// WebSocket or SPDY.
    pub transport: Transport,
    /// The subprotocol, one of the constants of this module or `""`.
    pub protocol: &'static str,
}

impl Negotiated {
    /// The `101 Switching Protocols` answer to send before the connection
    /// changes hands.
    pub fn response(&self) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        match &self.transport {
            Transport::WebSocket { accept } => {
                headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
                if let Ok(value) = HeaderValue::from_str(accept) {
                    headers.insert("Sec-WebSocket-Accept", value);
                }
                if !self.protocol.is_empty() {
                    headers.insert(
                        SEC_WEBSOCKET_PROTOCOL,
                        HeaderValue::from_static(self.protocol),
                    );
                }
            }
            Transport::Spdy => {
                headers.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
                headers.insert(
                    STREAM_PROTOCOL_HEADER,
                    HeaderValue::from_static(self.protocol),
                );
            }
        }
        response
    }

    /// Whether this is port-forward's SPDY tunnelled in WebSocket messages.
    pub fn is_tunnel(&self) -> bool {
        self.protocol == SPDY_TUNNEL
    }
}

/// Picks the transport and subprotocol for a request of `kind`, or says
/// why the request cannot be upgraded (a 400 for a plain request, as
/// kube-apiserver answers, a 403 for protocols the server does not speak).
pub fn negotiate(headers: &HeaderMap, kind: StreamKind) -> Result<Negotiated, StreamError> {
    let upgrade = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if upgrade.eq_ignore_ascii_case("websocket") {
        let key = headers
            .get(SEC_WEBSOCKET_KEY)
            .ok_or_else(|| StreamError::bad_request("websocket upgrade without a key"))?;
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let offered = listed(headers, SEC_WEBSOCKET_PROTOCOL.as_str());
        let supported: &[&'static str] = match kind {
            StreamKind::Process => &[V5_CHANNEL, V4_CHANNEL, V1_CHANNEL],
            StreamKind::PortForward => &[SPDY_TUNNEL, V4_CHANNEL, V1_CHANNEL],
        };
        let protocol = choose(&offered, supported)?;
        return Ok(Negotiated {
            transport: Transport::WebSocket { accept },
            protocol,
        });
    }
    if upgrade.to_ascii_lowercase().starts_with("spdy/3") {
        let offered = listed(headers, STREAM_PROTOCOL_HEADER);
        let supported: &[&'static str] = match kind {
            StreamKind::Process => &[V4_CHANNEL, V3_CHANNEL, V2_CHANNEL, V1_CHANNEL],
            StreamKind::PortForward => &[PORT_FORWARD],
        };
        let protocol = choose(&offered, supported)?;
        return Ok(Negotiated {
            transport: Transport::Spdy,
            protocol,
        });
    }
    Err(StreamError::bad_request("Upgrade request required"))
}

/// The values of a header that may repeat and hold comma-separated lists.
fn listed(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The client's first offer the server supports; a client that offers
/// nothing gets the original protocol (`""`).
fn choose(offered: &[String], supported: &[&'static str]) -> Result<&'static str, StreamError> {
    if offered.is_empty() {
        return Ok("");
    }
    offered
        .iter()
        .find_map(|o| supported.iter().find(|s| **s == o.as_str()).copied())
        .ok_or_else(|| StreamError {
            code: 403,
            reason: "Forbidden".into(),
            message: format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn websocket_takes_the_clients_first_supported_protocol() {
        let h = headers(&[
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            (
                "Sec-WebSocket-Protocol",
                "v6.channel.k8s.io, v5.channel.k8s.io, v4.channel.k8s.io",
            ),
        ]);
        let n = negotiate(&h, StreamKind::Process).unwrap();
        assert_eq!(n.protocol, V5_CHANNEL);
        // RFC 6455's worked example.
        assert_eq!(
            n.transport,
            Transport::WebSocket {
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            }
        );
        let response = n.response();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.headers()["Sec-WebSocket-Protocol"], V5_CHANNEL);
    }

    #[test]
    fn spdy_reads_repeated_headers_and_refuses_unknown_protocols() {
        let h = headers(&[
            ("Upgrade", "SPDY/3.1"),
            (STREAM_PROTOCOL_HEADER, "v9.channel.k8s.io"),
            (STREAM_PROTOCOL_HEADER, "v4.channel.k8s.io"),
        ]);
        assert_eq!(
            negotiate(&h, StreamKind::Process).unwrap().protocol,
            V4_CHANNEL
        );
        let err = negotiate(&h, StreamKind::PortForward).unwrap_err();
        assert_eq!(err.code, 403);
        assert!(err
            .message
            .starts_with("unable to upgrade: unable to negotiate protocol"));
    }

    #[test]
    fn a_plain_request_is_a_bad_request() {
        let err = negotiate(&HeaderMap::new(), StreamKind::Process).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "Upgrade request required")
        );
    }
}
