//! Protobuf wire-format reader.
//!
//! Only what Kubernetes messages use: varints, 64/32-bit fixed values and
//! length-delimited payloads. Every read is bounds-checked against the input
//! slice, so a hostile body can neither panic the reader nor make it allocate:
//! payloads are borrowed sub-slices, never copies.

/// How a field's value is laid out on the wire (the low three bits of a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    /// Base-128 varint: int32, int64, bool.
    Varint,
    /// Eight little-endian bytes: double.
    Fixed64,
    /// Varint length followed by that many bytes: string, bytes, messages,
    /// map entries and packed repeated scalars.
    Len,
    /// Four little-endian bytes (no Kubernetes field uses it; skipped).
    Fixed32,
}

/// One field value as read from the wire, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl WireValue<'_> {
    /// The wire type this value was encoded with.
    pub(crate) fn wire_type(&self) -> WireType {
        match self {
            WireValue::Varint(_) => WireType::Varint,
            WireValue::Fixed64(_) => WireType::Fixed64,
            WireValue::Len(_) => WireType::Len,
            WireValue::Fixed32(_) => WireType::Fixed32,
        }
    }
}

/// Why bytes could not be read as protobuf; the decoder adds the location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("truncated varint")]
    TruncatedVarint,
    #[error("varint longer than 10 bytes")]
    VarintTooLong,
    #[error("declared length {len} exceeds the {left} bytes left")]
    LengthOutOfBounds { len: u64, left: usize },
    #[error("truncated {0}-byte fixed-width value")]
    TruncatedFixed(usize),
    #[error("field number {0} is out of range")]
    BadFieldNumber(u64),
    #[error("wire type {0} is not supported")]
    BadWireType(u64),
}

/// Largest field number protobuf allows (2^29 - 1).
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// Cursor over one message's bytes.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Whether every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Reads a base-128 varint. Like Go's decoder, it accepts at most ten
    /// bytes and lets bits beyond 64 fall off.
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(WireError::TruncatedVarint)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f).wrapping_shl(7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let end = self.pos.checked_add(N).filter(|end| *end <= self.buf.len());
        let end = end.ok_or(WireError::TruncatedFixed(N))?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..end]);
        self.pos = end;
        Ok(out)
    }

    /// Reads a length-delimited payload as a borrowed slice.
    pub(crate) fn len_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let left = self.remaining();
        let len_usize = usize::try_from(len).ok().filter(|l| *l <= left);
        let len_usize = len_usize.ok_or(WireError::LengthOutOfBounds { len, left })?;
        let start = self.pos;
        self.pos += len_usize;
        Ok(&self.buf[start..self.pos])
    }

    /// Reads the next field: its number and its value.
    pub(crate) fn field(&mut self) -> Result<(u32, WireValue<'a>), WireError> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(WireError::BadFieldNumber(number));
        }
        let value = match key & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            2 => WireValue::Len(self.len_delimited()?),
            5 => WireValue::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            // 3 and 4 are the deprecated groups, 6 and 7 are undefined.
            other => return Err(WireError::BadWireType(other)),
        };
        // `number` is at most 2^29 - 1, so it fits.
        Ok((number as u32, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_like_go() {
        assert_eq!(Reader::new(&[0x00]).varint(), Ok(0));
        assert_eq!(Reader::new(&[0x96, 0x01]).varint(), Ok(150));
        let minus_one = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&minus_one).varint(), Ok(u64::MAX));
        assert_eq!(
            Reader::new(&[0x80]).varint(),
            Err(WireError::TruncatedVarint)
        );
        assert_eq!(
            Reader::new(&[0xff; 11]).varint(),
            Err(WireError::VarintTooLong)
        );
    }

    #[test]
    fn lengths_are_bounded_by_the_buffer() {
        let mut r = Reader::new(&[0x03, b'a', b'b']);
        assert_eq!(
            r.len_delimited(),
            Err(WireError::LengthOutOfBounds { len: 3, left: 2 })
        );
        // A length near u64::MAX must not overflow anything.
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            Reader::new(&huge).len_delimited(),
            Err(WireError::LengthOutOfBounds { .. })
        ));
        let mut r = Reader::new(&[0x02, b'h', b'i', 0x00]);
        assert_eq!(r.len_delimited(), Ok(&b"hi"[..]));
        assert!(!r.is_empty());
    }

    #[test]
    fn fields_and_wire_types() {
        // field 1 varint 5, field 2 "x", field 3 fixed64, field 4 fixed32
        let bytes = [
            0x08, 0x05, 0x12, 0x01, b'x', 0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.field(), Ok((1, WireValue::Varint(5))));
        assert_eq!(r.field(), Ok((2, WireValue::Len(b"x"))));
        assert_eq!(r.field(), Ok((3, WireValue::Fixed64(1))));
        assert_eq!(r.field(), Ok((4, WireValue::Fixed32(2))));
        assert!(r.is_empty());
        assert_eq!(Reader::new(&[0x0b]).field(), Err(WireError::BadWireType(3)));
        assert_eq!(
            Reader::new(&[0x00, 0x00]).field(),
            Err(WireError::BadFieldNumber(0))
        );
        assert_eq!(
            Reader::new(&[0x09, 1, 2]).field(),
            Err(WireError::TruncatedFixed(8))
        );
    }
}
