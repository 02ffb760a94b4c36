//! The envelopes Avro records travel in on Kafka.
//!
//! - Confluent wire format: byte `0`, a 4-byte big-endian schema id, the Avro body.
//! - Single-object encoding (Avro specification): `C3 01`, the 8-byte little-endian
//!   CRC-64-AVRO (Rabin) fingerprint of the writer schema's canonical form, the body.
//! - Plain: the body alone, with a schema known from configuration.

use apache_avro::Schema;
use apache_avro::rabin::Rabin;

use crate::DecodeError;

/// The first byte of a record in the Confluent wire format.
pub const CONFLUENT_MAGIC: u8 = 0;

/// The first two bytes of a single-object encoded record.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];

/// Splits a Confluent-framed record into its schema id and Avro body.
pub fn split_confluent(record: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    match record {
        [CONFLUENT_MAGIC, a, b, c, d, body @ ..] => {
            Ok((u32::from_be_bytes([*a, *b, *c, *d]), body))
        }
        [CONFLUENT_MAGIC, ..] => Err(DecodeError::Truncated {
            offset: record.len(),
            needed: 5 - record.len(),
        }),
        [found, ..] => Err(DecodeError::WrongMagicByte { found: *found }),
        [] => Err(DecodeError::Truncated {
            offset: 0,
            needed: 5,
        }),
    }
}

/// Writes the Confluent header for `schema_id`; the Avro body follows it.
pub fn write_confluent_header(schema_id: u32, out: &mut Vec<u8>) {
    out.push(CONFLUENT_MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Splits a single-object encoded record into its schema fingerprint and Avro body.
pub fn split_single_object(record: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
    match record {
        [0xC3, 0x01, rest @ ..] => match rest.split_first_chunk::<8>() {
            Some((fingerprint, body)) => Ok((u64::from_le_bytes(*fingerprint), body)),
            None => Err(DecodeError::Truncated {
                offset: record.len(),
                needed: 10 - record.len(),
            }),
        },
        _ => Err(DecodeError::WrongSingleObjectMarker {
            found: record.iter().take(2).copied().collect(),
        }),
    }
}

/// The CRC-64-AVRO (Rabin) fingerprint of a schema's canonical form, as single-object
/// encoding carries it.
pub fn fingerprint(schema: &Schema) -> u64 {
    let bytes = schema.fingerprint::<Rabin>().bytes;
    let mut le = [0u8; 8];
    for (slot, byte) in le.iter_mut().zip(bytes) {
        *slot = byte;
    }
    u64::from_le_bytes(le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confluent_header_round_trips_and_checks_magic() {
        let mut record = Vec::new();
        write_confluent_header(0x0102_0304, &mut record);
        record.extend_from_slice(b"body");
        assert_eq!(record[..5], [0, 1, 2, 3, 4]);
        assert_eq!(split_confluent(&record), Ok((0x0102_0304, &b"body"[..])));
        assert_eq!(
            split_confluent(&[1, 0, 0, 0, 1]),
            Err(DecodeError::WrongMagicByte { found: 1 })
        );
        assert_eq!(
            split_confluent(&[0, 0, 1]),
            Err(DecodeError::Truncated {
                offset: 3,
                needed: 2
            })
        );
        assert!(split_confluent(&[]).is_err());
    }

    #[test]
    fn single_object_header_carries_the_rabin_fingerprint() {
        // The Avro specification's fingerprint of "int" is 0x7275d51a3f395c8f.
        let schema = Schema::Int;
        assert_eq!(fingerprint(&schema), 0x7275_d51a_3f39_5c8f);
        let mut record = SINGLE_OBJECT_MARKER.to_vec();
        record.extend_from_slice(&fingerprint(&schema).to_le_bytes());
        record.push(0x02);
        assert_eq!(
            split_single_object(&record),
            Ok((0x7275_d51a_3f39_5c8f, &[0x02][..]))
        );
        assert!(matches!(
            split_single_object(&record[..6]),
            Err(DecodeError::Truncated { needed: 4, .. })
        ));
        assert_eq!(
            split_single_object(&[0xC3]),
            Err(DecodeError::WrongSingleObjectMarker { found: vec![0xC3] })
        );
    }
}
