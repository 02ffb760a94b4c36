//! Writes v2 record batches the way producers do: for tests, benchmarks and fuzzing of the
//! decoder, and for anyone who needs Kafka's bytes without a broker.

use bytes::{BufMut, Bytes, BytesMut};

use super::{batch::HEADER_LEN, codec::Compression, error::DecodeError};

/// Builds one record batch.
///
/// ```
/// use kinflux_kafka::fetch::{Compression, build::BatchBuilder, decode_partition, DecodeOptions};
///
/// let mut batch = BatchBuilder::new(100);
/// batch.compression(Compression::Gzip);
/// batch.record(Some(b"k"), Some(b"v1"), &[(b"h", Some(b"x"))]);
/// batch.record(None, Some(b"v2"), &[]);
/// let bytes = batch.build().expect("gzip is a default feature");
/// let decoded = decode_partition(bytes, 100, &[], &DecodeOptions::default());
/// assert_eq!(decoded.records.len(), 2);
/// assert_eq!(decoded.next_offset, 102);
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_offset: i64,
    base_timestamp: i64,
    max_timestamp: i64,
    compression: Compression,
    xerial: bool,
    log_append_time: bool,
    transactional: bool,
    control: bool,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    partition_leader_epoch: i32,
    count: i32,
    last_offset_delta: i32,
    records: Vec<u8>,
}

/// A control record's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The producer's transaction was aborted.
    Abort,
    /// The producer's transaction was committed.
    Commit,
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, i64::try_from(b.len()).unwrap_or(i64::MAX));
            out.extend_from_slice(b);
        }
    }
}

impl BatchBuilder {
    /// An empty, uncompressed, non-transactional batch starting at `base_offset`, with
    /// timestamps from 1,700,000,000,000 ms on.
    pub fn new(base_offset: i64) -> Self {
        Self {
            base_offset,
            base_timestamp: 1_700_000_000_000,
            max_timestamp: 1_700_000_000_000,
            compression: Compression::None,
            xerial: true,
            log_append_time: false,
            transactional: false,
            control: false,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            partition_leader_epoch: 0,
            count: 0,
            last_offset_delta: -1,
            records: Vec::new(),
        }
    }

    /// Compresses the records with `codec`.
    pub fn compression(&mut self, codec: Compression) -> &mut Self {
        self.compression = codec;
        self
    }

    /// For snappy: write a raw block as librdkafka does (`false`) or snappy-java's framing
    /// as Java's producer does (`true`, the default).
    pub fn xerial_snappy(&mut self, xerial: bool) -> &mut Self {
        self.xerial = xerial;
        self
    }

    /// Marks the batch as written with the broker's append time: every record then reads
    /// `timestamp_ms` as the batch's max timestamp.
    pub fn log_append_time(&mut self, timestamp_ms: i64) -> &mut Self {
        self.log_append_time = true;
        self.max_timestamp = timestamp_ms;
        self
    }

    /// Makes the batch part of a transaction of `producer_id`.
    pub fn transactional(&mut self, producer_id: i64, producer_epoch: i16) -> &mut Self {
        self.transactional = true;
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = 0;
        self
    }

    /// Gives the batch an idempotent producer id without a transaction.
    pub fn producer(&mut self, producer_id: i64, producer_epoch: i16) -> &mut Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = 0;
        self
    }

    /// Adds a record at the next offset, its timestamp one millisecond after the previous.
    pub fn record(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> &mut Self {
        let delta = self.last_offset_delta + 1;
        self.record_at(delta, i64::from(delta), key, value, headers)
    }

    /// Adds a record with the given offset delta (gaps stand for compacted records) and
    /// timestamp delta.
    pub fn record_at(
        &mut self,
        offset_delta: i32,
        timestamp_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> &mut Self {
        let mut body = vec![0u8]; // attributes
        put_varlong(&mut body, timestamp_delta);
        put_varlong(&mut body, i64::from(offset_delta));
        put_bytes(&mut body, key);
        put_bytes(&mut body, value);
        put_varlong(&mut body, i64::try_from(headers.len()).unwrap_or(i64::MAX));
        for (k, v) in headers {
            put_bytes(&mut body, Some(k));
            put_bytes(&mut body, *v);
        }
        put_varlong(
            &mut self.records,
            i64::try_from(body.len()).unwrap_or(i64::MAX),
        );
        self.records.extend_from_slice(&body);
        self.count += 1;
        self.last_offset_delta = self.last_offset_delta.max(offset_delta);
        self.max_timestamp = self
            .max_timestamp
            .max(self.base_timestamp.saturating_add(timestamp_delta));
        self
    }

    /// Sets the header's last offset delta, as the log cleaner leaves it when it removed
    /// the batch's last records.
    pub fn last_offset_delta(&mut self, delta: i32) -> &mut Self {
        self.last_offset_delta = delta;
        self
    }

    /// Makes this a control batch holding one transaction marker of `producer_id`.
    pub fn marker(&mut self, producer_id: i64, producer_epoch: i16, marker: Marker) -> &mut Self {
        self.transactional(producer_id, producer_epoch);
        self.control = true;
        let kind: i16 = match marker {
            Marker::Abort => 0,
            Marker::Commit => 1,
        };
        let mut key = 0i16.to_be_bytes().to_vec();
        key.extend_from_slice(&kind.to_be_bytes());
        // Value: version 0, coordinator epoch 0.
        self.record(Some(&key), Some(&[0, 0, 0, 0, 0, 0]), &[])
    }

    /// The batch's bytes, CRC included.
    pub fn build(&self) -> Result<Bytes, DecodeError> {
        let records = compress(self.compression, self.xerial, &self.records)?;
        let mut attributes = self.compression.id();
        if self.log_append_time {
            attributes |= 1 << 3;
        }
        if self.transactional {
            attributes |= 1 << 4;
        }
        if self.control {
            attributes |= 1 << 5;
        }
        let mut out = BytesMut::with_capacity(HEADER_LEN + records.len());
        out.put_i64(self.base_offset);
        let length = HEADER_LEN - 12 + records.len();
        out.put_i32(i32::try_from(length).map_err(|_| DecodeError::Invalid("batch too large"))?);
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(2);
        out.put_u32(0); // CRC, below
        out.put_i16(attributes);
        out.put_i32(self.last_offset_delta.max(0));
        out.put_i64(self.base_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.count);
        out.put_slice(&records);
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out.freeze())
    }
}

fn compress(codec: Compression, xerial: bool, data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let _ = xerial;
    match codec {
        Compression::None => Ok(data.to_vec()),
        #[cfg(feature = "gzip")]
        Compression::Gzip => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).map_err(|e| invalid_io(codec, e))?;
            enc.finish().map_err(|e| invalid_io(codec, e))
        }
        #[cfg(feature = "snappy")]
        Compression::Snappy => {
            let mut enc = snap::raw::Encoder::new();
            if !xerial {
                return enc.compress_vec(data).map_err(|e| invalid_io(codec, e));
            }
            // snappy-java's SnappyOutputStream: header, then 32 KiB blocks with lengths.
            let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
            for chunk in data.chunks(32 * 1024) {
                let block = enc.compress_vec(chunk).map_err(|e| invalid_io(codec, e))?;
                let len = i32::try_from(block.len())
                    .map_err(|_| DecodeError::Invalid("snappy block too large"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        #[cfg(feature = "lz4")]
        Compression::Lz4 => {
            use std::io::Write;
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(data).map_err(|e| invalid_io(codec, e))?;
            enc.finish().map_err(|e| invalid_io(codec, e))
        }
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd::stream::encode_all(data, 3).map_err(|e| invalid_io(codec, e)),
        #[allow(unreachable_patterns)] // reachable when a codec feature is off
        other => Err(DecodeError::CodecDisabled(other)),
    }
}

#[cfg(any(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]
fn invalid_io(codec: Compression, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Corrupt {
        codec,
        message: e.to_string(),
    }
}
