//! SPDY/3 header blocks: name/value pairs, compressed with zlib as one
//! stream per connection and direction, against the preset dictionary the
//! SPDY/3 draft defines (section 2.6.10.1).
//!
//! Reading must inflate with that dictionary, as peers compress with it.
//! Writing may use any valid zlib stream: this side writes stored
//! (uncompressed) deflate blocks, which every inflater reads with or
//! without the dictionary; the few headers a server sends gain nothing
//! from compression.

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Decompress, FlushDecompress, Status};

/// A header block could not be read.
#[derive(Debug, thiserror::Error)]
#[error("SPDY header block: {0}")]
pub(crate) struct HeaderError(&'static str);

/// The SPDY/3 dictionary's leading words, each written with a four-byte
/// big-endian length.
const WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail, written as it is.
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,",
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The preset dictionary.
pub(crate) fn dictionary() -> Vec<u8> {
    let mut out = Vec::with_capacity(1423);
    for word in WORDS {
        out.extend_from_slice(&(word.len() as u32).to_be_bytes());
        out.extend_from_slice(word.as_bytes());
    }
    out.extend_from_slice(TAIL.as_bytes());
    out
}

/// The largest decompressed header block accepted.
const MAX_BLOCK: usize = 1 << 20;

/// Reads the peer's header blocks (one zlib stream per connection).
pub(crate) struct HeaderReader {
    inflate: Decompress,
    dictionary: Vec<u8>,
}

impl Default for HeaderReader {
    fn default() -> Self {
        Self {
            inflate: Decompress::new(true),
            dictionary: dictionary(),
        }
    }
}

impl HeaderReader {
    /// Decompresses and parses one block.
    pub(crate) fn read(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, HeaderError> {
        let plain = self.inflate(block)?;
        parse(&plain)
    }

    fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, HeaderError> {
        let mut out = Vec::with_capacity(256);
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_BLOCK {
                    return Err(HeaderError("too large"));
                }
                out.reserve(out.len().max(256));
            }
            let before_in = self.inflate.total_in();
            let before_out = self.inflate.total_out();
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.inflate.total_in() - before_in) as usize;
            let produced = self.inflate.total_out() - before_out;
            input = &input[used..];
            match result {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => {
                    if input.is_empty() && out.len() < out.capacity() {
                        return Ok(out);
                    }
                    if used == 0 && produced == 0 && out.len() < out.capacity() {
                        return Err(HeaderError("stalled"));
                    }
                }
                Err(err) if err.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&self.dictionary)
                        .map_err(|_| HeaderError("dictionary refused"))?;
                }
                Err(_) => return Err(HeaderError("corrupt compressed data")),
            }
        }
    }
}

/// Parses an uncompressed block: a count, then length-prefixed names and
/// values (a value may hold several, separated by NUL).
fn parse(mut plain: &[u8]) -> Result<Vec<(String, String)>, HeaderError> {
    let mut take = |len: usize| -> Result<&[u8], HeaderError> {
        if plain.len() < len {
            return Err(HeaderError("truncated"));
        }
        let (head, rest) = plain.split_at(len);
        plain = rest;
        Ok(head)
    };
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let count = be(take(4)?);
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let name_len = be(take(4)?);
        let name = String::from_utf8_lossy(take(name_len)?).to_ascii_lowercase();
        let value_len = be(take(4)?);
        let value = String::from_utf8_lossy(take(value_len)?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

/// Writes this side's header blocks as one zlib stream of stored blocks.
#[derive(Default)]
pub(crate) struct HeaderWriter {
    started: bool,
}

impl HeaderWriter {
    /// The next block on the wire for `headers`.
    pub(crate) fn write(&mut self, headers: &[(&str, &str)]) -> Bytes {
        let mut plain = BytesMut::new();
        plain.put_u32(headers.len() as u32);
        for (name, value) in headers {
            plain.put_u32(name.len() as u32);
            plain.put_slice(name.as_bytes());
            plain.put_u32(value.len() as u32);
            plain.put_slice(value.as_bytes());
        }
        let mut out = BytesMut::with_capacity(plain.len() + 8);
        if !self.started {
            // zlib header: deflate, 32 KiB window, no dictionary; the
            // check bits make 0x7801 a multiple of 31.
            out.put_slice(&[0x78, 0x01]);
            self.started = true;
        }
        for chunk in plain.chunks(u16::MAX as usize) {
            let len = chunk.len() as u16;
            // A non-final stored block: header bits 000, padded to a byte.
            out.put_u8(0);
            out.put_u16_le(len);
            out.put_u16_le(!len);
            out.put_slice(chunk);
        }
        // An empty stored block ends the block as zlib's sync flush does;
        // Go's inflater only hands data over at such a boundary, and
        // otherwise reads on into the next frame.
        out.put_slice(&[0, 0, 0, 0xff, 0xff]);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    #[test]
    fn the_dictionary_is_the_drafts() {
        let dict = dictionary();
        assert_eq!(dict.len(), 1423);
        // Adler-32 of the SPDY/3 dictionary, the id its zlib streams name.
        let mut compress = Compress::new(Compression::best(), true);
        assert_eq!(compress.set_dictionary(&dict).unwrap(), 0xe3c6_a7c2);
    }

    #[test]
    fn reads_blocks_compressed_with_the_dictionary_as_go_writes_them() {
        let mut compress = Compress::new(Compression::best(), true);
        compress.set_dictionary(&dictionary()).unwrap();
        let mut reader = HeaderReader::default();
        for (name, value) in [("streamtype", "stdout"), ("port", "8080")] {
            let mut plain = BytesMut::new();
            plain.put_u32(1);
            plain.put_u32(name.len() as u32);
            plain.put_slice(name.as_bytes());
            plain.put_u32(value.len() as u32);
            plain.put_slice(value.as_bytes());
            let mut block = Vec::with_capacity(256);
            compress
                .compress_vec(&plain, &mut block, FlushCompress::Sync)
                .unwrap();
            assert_eq!(
                reader.read(&block).unwrap(),
                vec![(name.to_owned(), value.to_owned())]
            );
        }
    }

    #[test]
    fn written_blocks_inflate_in_sequence() {
        let mut writer = HeaderWriter::default();
        let mut reader = HeaderReader::default();
        assert!(reader.read(&writer.write(&[])).unwrap().is_empty());
        assert_eq!(
            reader.read(&writer.write(&[("a", "b")])).unwrap(),
            vec![("a".to_owned(), "b".to_owned())]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut reader = HeaderReader::default();
        assert!(reader.read(b"\x78\x01\xff\xff\xff").is_err());
        let mut reader = HeaderReader::default();
        // A block cut short parses as truncated.
        assert!(reader
            .read(&HeaderWriter::default().write(&[]).slice(..5))
            .is_err());
    }
}
