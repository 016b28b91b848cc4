//! SPDY/3.1 framing (the subset Kubernetes' streams use): control frames
//! open, answer and reset streams; data frames carry a stream's bytes.
//!
//! ```text
//! control: 1 | version:15 | type:16 | flags:8 | length:24 | payload
//! data:    0 | stream-id:31         | flags:8 | length:24 | payload
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The only version spoken.
const VERSION: u16 = 3;
/// The last frame of a stream in this direction.
pub(crate) const FLAG_FIN: u8 = 0x01;
/// The largest payload accepted (SPDY's 24-bit length; Kubernetes' peers
/// never come near it).
const MAX_PAYLOAD: usize = 0x00ff_ffff;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// A frame as read off the wire; header blocks are still compressed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A new stream from the peer.
    SynStream {
        stream: u32,
        flags: u8,
        headers: Bytes,
    },
    /// The peer's answer to a stream we opened.
    SynReply { stream: u32, headers: Bytes },
    /// The peer aborted a stream.
    RstStream { stream: u32 },
    /// More headers on a stream (read to keep the zlib state in step).
    Headers { stream: u32, headers: Bytes },
    /// A liveness probe to echo.
    Ping { id: u32 },
    /// The peer is going away.
    GoAway,
    /// Bytes of a stream.
    Data { stream: u32, flags: u8, data: Bytes },
    /// Settings, window updates and unknown control frames: ignored.
    Ignored,
}

/// Why a connection's frames could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("reading a SPDY frame: {0}")]
    Io(#[from] std::io::Error),
    #[error("SPDY frame: {0}")]
    Malformed(&'static str),
}

/// Reads one frame; `None` at a clean end of the connection.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Frame>, FrameError> {
    let mut head = [0u8; 8];
    match reader.read_exact(&mut head).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    let flags = head[4];
    let length = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if length > MAX_PAYLOAD {
        return Err(FrameError::Malformed("payload too long"));
    }
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload).await?;
    let payload = Bytes::from(payload);
    let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if first & 0x8000_0000 == 0 {
        return Ok(Some(Frame::Data {
            stream: first & 0x7fff_ffff,
            flags,
            data: payload,
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(FrameError::Malformed("unsupported SPDY version"));
    }
    let kind = (first & 0xffff) as u16;
    let stream_of = |p: &Bytes| -> Result<u32, FrameError> {
        p.get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
            .ok_or(FrameError::Malformed("control frame too short"))
    };
    Ok(Some(match kind {
        SYN_STREAM => {
            if payload.len() < 10 {
                return Err(FrameError::Malformed("SYN_STREAM too short"));
            }
            Frame::SynStream {
                stream: stream_of(&payload)?,
                flags,
                headers: payload.slice(10..),
            }
        }
        SYN_REPLY => Frame::SynReply {
            stream: stream_of(&payload)?,
            headers: payload.slice(4..),
        },
        HEADERS => Frame::Headers {
            stream: stream_of(&payload)?,
            headers: payload.slice(4..),
        },
        RST_STREAM => Frame::RstStream {
            stream: stream_of(&payload)?,
        },
        PING => Frame::Ping {
            id: stream_of(&payload)?,
        },
        GOAWAY => Frame::GoAway,
        SETTINGS | WINDOW_UPDATE => Frame::Ignored,
        _ => Frame::Ignored,
    }))
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + payload.len());
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32(((flags as u32) << 24) | payload.len() as u32);
    out.put_slice(payload);
    out.freeze()
}

/// A data frame; `fin` ends the stream in this direction.
pub(crate) fn data(stream: u32, fin: bool, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + payload.len());
    out.put_u32(stream & 0x7fff_ffff);
    let flags = if fin { FLAG_FIN } else { 0 };
    out.put_u32(((flags as u32) << 24) | payload.len() as u32);
    out.put_slice(payload);
    out.freeze()
}

/// The answer to a peer's SYN_STREAM, with a compressed header block.
pub(crate) fn syn_reply(stream: u32, headers: &[u8]) -> Bytes {
    let mut payload = BytesMut::with_capacity(4 + headers.len());
    payload.put_u32(stream & 0x7fff_ffff);
    payload.put_slice(headers);
    control(SYN_REPLY, 0, &payload)
}

/// An echo of the peer's PING.
pub(crate) fn ping(id: u32) -> Bytes {
    control(PING, 0, &id.to_be_bytes())
}

/// Aborts a stream (status 5: CANCEL).
pub(crate) fn rst_stream(stream: u32) -> Bytes {
    let mut payload = BytesMut::with_capacity(8);
    payload.put_u32(stream & 0x7fff_ffff);
    payload.put_u32(5);
    control(RST_STREAM, 0, &payload)
}

/// Says the connection is ending (status 0: OK).
pub(crate) fn goaway(last_stream: u32) -> Bytes {
    let mut payload = BytesMut::with_capacity(8);
    payload.put_u32(last_stream & 0x7fff_ffff);
    payload.put_u32(0);
    control(GOAWAY, 0, &payload)
}

/// A SYN_STREAM, for tests that play the client.
#[cfg(test)]
pub(crate) fn syn_stream(stream: u32, headers: &[u8]) -> Bytes {
    let mut payload = BytesMut::with_capacity(10 + headers.len());
    payload.put_u32(stream);
    payload.put_u32(0);
    payload.put_u16(0);
    payload.put_slice(headers);
    control(SYN_STREAM, 0, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&data(3, true, b"hello"));
        wire.extend_from_slice(&ping(7));
        wire.extend_from_slice(&syn_stream(5, b"hdrs"));
        let mut reader = &wire[..];
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some(Frame::Data {
                stream: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello")
            })
        );
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some(Frame::Ping { id: 7 })
        );
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some(Frame::SynStream {
                stream: 5,
                flags: 0,
                headers: Bytes::from_static(b"hdrs")
            })
        );
        assert_eq!(read_frame(&mut reader).await.unwrap(), None);
    }
}
