//! The records inside one batch: zigzag varint fields, key, value and headers as slices of
//! the batch's (decompressed) records section.

use bytes::Bytes;

use super::error::DecodeError;

/// A record read from a batch. Key, value and header values share the fetched (or
/// decompressed) buffer: nothing is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Offset of the record in its partition.
    pub offset: i64,
    /// Timestamp, milliseconds since the Unix epoch: the producer's, or the broker's append
    /// time when the topic uses `LogAppendTime`.
    pub timestamp_ms: i64,
    /// Key, if any.
    pub key: Option<Bytes>,
    /// Value, if any (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in the order the producer wrote them.
    pub headers: Vec<Header>,
}

/// A record header. Kafka allows repeated keys, so headers stay a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key (UTF-8 by Kafka's contract, not checked here).
    pub key: Bytes,
    /// Header value; `None` when the producer sent a null value.
    pub value: Option<Bytes>,
}

/// What a control record says (the key of a record in a control batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlType {
    /// The transaction of the batch's producer was aborted.
    Abort,
    /// The transaction of the batch's producer was committed.
    Commit,
    /// Another control record (KRaft's own types), ignored by consumers.
    Other,
}

impl ControlType {
    /// Reads a control record's key: `version: i16, type: i16`.
    pub(crate) fn parse(key: Option<&[u8]>) -> Result<Self, DecodeError> {
        let key = key.ok_or(DecodeError::Invalid("control record without a key"))?;
        let [v0, v1, t0, t1, ..] = *key else {
            return Err(DecodeError::Invalid(
                "control record key shorter than 4 bytes",
            ));
        };
        if i16::from_be_bytes([v0, v1]) < 0 {
            return Err(DecodeError::Invalid("negative control record version"));
        }
        Ok(match i16::from_be_bytes([t0, t1]) {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            _ => ControlType::Other,
        })
    }
}

/// A read position in a records section.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    /// An unsigned LEB128 value of at most `max_bytes` bytes.
    #[inline]
    fn uvarint(&mut self, max_bytes: u32, what: &'static str) -> Result<u64, DecodeError> {
        // Most fields (lengths of short values, deltas, counts) fit in one byte.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.uvarint_slow(max_bytes, what)
    }

    #[cold]
    fn uvarint_slow(&mut self, max_bytes: u32, what: &'static str) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte(what)?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Invalid("varint too long"))
    }

    /// A zigzag varint (`int32`).
    #[inline]
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let raw = self.uvarint(5, what)?;
        let raw = u32::try_from(raw).map_err(|_| DecodeError::Invalid("varint out of range"))?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zigzag varlong (`int64`).
    #[inline]
    pub(crate) fn varlong(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let raw = self.uvarint(10, what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// `n` bytes as a range of the buffer.
    fn take(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<std::ops::Range<usize>, DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Truncated(what))?;
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    /// A varint length and that many bytes; length -1 is null.
    #[inline]
    fn nullable(&mut self, base: &Bytes, what: &'static str) -> Result<Option<Bytes>, DecodeError> {
        let len = self.varint(what)?;
        if len < 0 {
            return if len == -1 {
                Ok(None)
            } else {
                Err(DecodeError::Invalid("negative length"))
            };
        }
        // A non-negative i32 always fits in usize on the targets we build for.
        let range = self.take(len as usize, what)?;
        Ok(Some(base.slice(range)))
    }
}

/// The batch fields every record of it needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordContext {
    pub(crate) base_offset: i64,
    pub(crate) base_timestamp: i64,
    /// `Some(max_timestamp)` when the batch uses LogAppendTime.
    pub(crate) log_append_time: Option<i64>,
}

/// Reads one record at the cursor. `base` is the buffer the cursor reads, so that fields
/// become slices of it.
pub(crate) fn read_record(
    cur: &mut Cursor<'_>,
    base: &Bytes,
    ctx: &RecordContext,
) -> Result<FetchedRecord, DecodeError> {
    let len = cur.varint("record length")?;
    let len = usize::try_from(len).map_err(|_| DecodeError::Invalid("negative record length"))?;
    let start = cur.pos;
    let end = start
        .checked_add(len)
        .filter(|&e| e <= cur.buf.len())
        .ok_or(DecodeError::Truncated("record"))?;
    // Read the record within its declared length only.
    let mut rec = Cursor {
        buf: &cur.buf[..end],
        pos: start,
    };
    let _attributes = rec.byte("record attributes")?;
    let timestamp_delta = rec.varlong("timestamp delta")?;
    let offset_delta = rec.varint("offset delta")?;
    let key = rec.nullable(base, "record key")?;
    let value = rec.nullable(base, "record value")?;
    let count = rec.varint("header count")?;
    let count =
        usize::try_from(count).map_err(|_| DecodeError::Invalid("negative header count"))?;
    // Each header takes at least two bytes: do not trust a count the bytes cannot hold.
    if count > rec.remaining() / 2 {
        return Err(DecodeError::Truncated("record headers"));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let key = rec
            .nullable(base, "header key")?
            .ok_or(DecodeError::Invalid("null header key"))?;
        let value = rec.nullable(base, "header value")?;
        headers.push(Header { key, value });
    }
    if rec.pos != end {
        return Err(DecodeError::Invalid(
            "record length does not match its fields",
        ));
    }
    cur.pos = end;
    Ok(FetchedRecord {
        offset: ctx.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp_ms: ctx
            .log_append_time
            .unwrap_or_else(|| ctx.base_timestamp.wrapping_add(timestamp_delta)),
        key,
        value,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zigzag(v: i64) -> u64 {
        ((v << 1) ^ (v >> 63)) as u64
    }

    fn put_varlong(out: &mut Vec<u8>, v: i64) {
        let mut z = zigzag(v);
        loop {
            let b = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    #[test]
    fn varints_round_trip_at_their_extremes() {
        for v in [
            0i64,
            -1,
            1,
            63,
            -64,
            64,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
        ] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(i64::from(Cursor::new(&buf).varint("v").unwrap()), v);
            assert_eq!(Cursor::new(&buf).varlong("v").unwrap(), v);
        }
        for v in [i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(Cursor::new(&buf).varlong("v").unwrap(), v);
            assert!(Cursor::new(&buf).varint("v").is_err());
        }
    }

    #[test]
    fn overlong_and_cut_varints_are_errors() {
        assert_eq!(
            Cursor::new(&[0x80; 11]).varlong("v"),
            Err(DecodeError::Invalid("varint too long"))
        );
        assert_eq!(
            Cursor::new(&[0x80, 0x80]).varint("v"),
            Err(DecodeError::Truncated("v"))
        );
    }

    #[test]
    fn control_keys() {
        assert_eq!(
            ControlType::parse(Some(&[0, 0, 0, 0])),
            Ok(ControlType::Abort)
        );
        assert_eq!(
            ControlType::parse(Some(&[0, 0, 0, 1])),
            Ok(ControlType::Commit)
        );
        assert_eq!(
            ControlType::parse(Some(&[0, 0, 0, 5])),
            Ok(ControlType::Other)
        );
        assert!(ControlType::parse(Some(&[0, 0, 0])).is_err());
        assert!(ControlType::parse(Some(&[0xff, 0, 0, 0])).is_err());
        assert!(ControlType::parse(None).is_err());
    }
}
