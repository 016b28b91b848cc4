//! Names outside the cluster domain go to the upstream resolvers (by
//! default those of the host's `/etc/resolv.conf`, as a pod with
//! `dnsPolicy: Default` would use): the query is sent as it came, over UDP,
//! and again over TCP when the answer was truncated; each upstream is tried
//! in turn.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_server::proto::op::{Message, MessageType, OpCode, Query};
use hickory_server::proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest DNS message over UDP we accept from upstream (EDNS sizes).
const MAX_UDP: usize = 4096;

/// Why no upstream answered.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No upstream is configured.
    #[error("no upstream resolver is configured")]
    NoUpstream,
    /// Every upstream failed; the last failure.
    #[error("upstream resolver {server}: {message}")]
    Upstream {
        /// The upstream that failed last.
        server: SocketAddr,
        /// Why.
        message: String,
    },
}

/// The upstream resolvers.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl Upstream {
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration) -> Self {
        Self { servers, timeout }
    }

    /// Sends `query` (a whole DNS message) upstream and returns the answer.
    pub async fn exchange(&self, query: &[u8]) -> Result<Message, ForwardError> {
        let mut last = ForwardError::NoUpstream;
        for server in &self.servers {
            match tokio::time::timeout(self.timeout, exchange_with(*server, query)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(message)) => {
                    last = ForwardError::Upstream {
                        server: *server,
                        message,
                    }
                }
                Err(_) => {
                    last = ForwardError::Upstream {
                        server: *server,
                        message: format!("no answer within {:?}", self.timeout),
                    }
                }
            }
        }
        Err(last)
    }

    /// Asks upstream for the `qtype` records of `name` (following an
    /// ExternalName service's CNAME out of the cluster domain).
    pub async fn resolve(&self, name: &Name, qtype: RecordType) -> Result<Message, ForwardError> {
        let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(name.clone(), qtype));
        let bytes = message.to_vec().map_err(|e| ForwardError::Upstream {
            server: self
                .servers
                .first()
                .copied()
                .unwrap_or(([0, 0, 0, 0], 53).into()),
            message: format!("the query cannot be encoded: {e}"),
        })?;
        self.exchange(&bytes).await
    }
}

fn rand_id() -> u16 {
    // Uniqueness per in-flight query is all that is needed; the clock's
    // nanoseconds are spread enough for that.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u16)
        .unwrap_or(0)
}

async fn exchange_with(server: SocketAddr, query: &[u8]) -> Result<Message, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(server)
        .await
        .map_err(|e| format!("UDP: {e}"))?;
    socket.send(query).await.map_err(|e| format!("UDP: {e}"))?;
    let mut buffer = vec![0u8; MAX_UDP];
    let read = socket
        .recv(&mut buffer)
        .await
        .map_err(|e| format!("UDP: {e}"))?;
    let answer = Message::from_vec(&buffer[..read]).map_err(|e| format!("bad answer: {e}"))?;
    if !answer.metadata.truncation {
        return Ok(answer);
    }
    // Too large for UDP: the same query over TCP (2-byte length prefix).
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .map_err(|e| format!("TCP: {e}"))?;
    let length = u16::try_from(query.len()).map_err(|_| "query too large".to_owned())?;
    stream
        .write_all(&length.to_be_bytes())
        .await
        .map_err(|e| format!("TCP: {e}"))?;
    stream
        .write_all(query)
        .await
        .map_err(|e| format!("TCP: {e}"))?;
    let length = stream.read_u16().await.map_err(|e| format!("TCP: {e}"))?;
    let mut buffer = vec![0u8; usize::from(length)];
    stream
        .read_exact(&mut buffer)
        .await
        .map_err(|e| format!("TCP: {e}"))?;
    Message::from_vec(&buffer).map_err(|e| format!("bad answer: {e}"))
}

/// The `nameserver` lines of a resolv.conf file, on port 53.
pub fn resolv_conf_nameservers(path: &Path) -> std::io::Result<Vec<SocketAddr>> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse_resolv_conf(&text))
}

fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // An IPv6 link-local address may carry a zone (`%eth0`), which
            // a socket address without scope cannot use.
            let address = words.next()?.split('%').next()?;
            address
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_from_resolv_conf() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:5\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().expect("addr"),
                "[fe80::1]:53".parse().expect("addr")
            ]
        );
    }
}
