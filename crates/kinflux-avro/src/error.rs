//! The errors of this crate, one enum per stage: framing and decoding a record, compiling
//! a plan, and fetching a schema.

use kinflux_series::SeriesError;

/// Why one record's bytes could not become a point. The pipeline dead-letters the record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The Confluent framing starts with byte 0; this record started with another.
    #[error("wrong magic byte {found:#04x}: Confluent framing starts with 0x00")]
    WrongMagicByte {
        /// The first byte of the record.
        found: u8,
    },
    /// Single-object encoding starts with `C3 01`; this record did not.
    #[error("wrong single-object marker {found:02x?}: expected [c3, 01]")]
    WrongSingleObjectMarker {
        /// The first two bytes of the record (fewer when it was shorter).
        found: Vec<u8>,
    },
    /// The record ended before the value it was reading.
    #[error("record truncated at byte {offset}: needed {needed} more byte(s)")]
    Truncated {
        /// Where in the Avro body reading stopped.
        offset: usize,
        /// How many more bytes the value needed (at least).
        needed: usize,
    },
    /// A variable-length integer ran past 10 bytes or past 64 bits.
    #[error("varint at byte {offset} overflows 64 bits")]
    VarintOverflow {
        /// Where the integer started.
        offset: usize,
    },
    /// An `int` value did not fit in 32 bits.
    #[error("int at byte {offset} overflows 32 bits: {value}")]
    IntOverflow {
        /// Where the integer started.
        offset: usize,
        /// The value read.
        value: i64,
    },
    /// A length (string, bytes, block size) was negative where it may not be.
    #[error("negative length {length} at byte {offset}")]
    NegativeLength {
        /// Where the length started.
        offset: usize,
        /// The length read.
        length: i64,
    },
    /// A string was not UTF-8.
    #[error("string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string's bytes started.
        offset: usize,
    },
    /// A union branch index was outside the union.
    #[error("union branch {index} at byte {offset} does not exist (the union has {branches})")]
    BadUnionBranch {
        /// Where the index started.
        offset: usize,
        /// The index read.
        index: i64,
        /// How many branches the union has.
        branches: usize,
    },
    /// An enum symbol index was outside the enum.
    #[error("enum index {index} at byte {offset} does not exist (the enum has {symbols} symbols)")]
    BadEnumIndex {
        /// Where the index started.
        offset: usize,
        /// The index read.
        index: i64,
        /// How many symbols the enum has.
        symbols: usize,
    },
    /// Bytes were left after the record ended.
    #[error("{extra} byte(s) left after the record")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
    /// The `telegraf` preset could not make a metric of the record (Telegraf would drop
    /// it too).
    #[error("{0}")]
    Telegraf(String),
    /// The measurement is taken from a field, and that field held null.
    #[error("the measurement field is null")]
    NullMeasurement,
    /// A value of this type cannot go where the mapping puts it (for example a record or a
    /// union branch holding a record used as a tag).
    #[error("{path}: a {avro_type} value cannot be used as {role}")]
    Unmappable {
        /// The flattened name of the value.
        path: String,
        /// The Avro type met in the data.
        avro_type: &'static str,
        /// What the mapping wanted it for.
        role: &'static str,
    },
    /// The time field overflowed the nanosecond range of a timestamp.
    #[error("timestamp out of range: {0}")]
    Timestamp(SeriesError),
    /// The mapped values do not make a valid point (for example a float field is NaN, or
    /// no field was present).
    #[error("mapped record is not a valid point: {0}")]
    Point(#[from] SeriesError),
}

/// Why a (writer schema, mapping) pair cannot be compiled into a decode plan. A record
/// written with such a schema is dead-lettered with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The writer schema is not a record.
    #[error("writer schema is not a record")]
    NotARecord,
    /// The writer schema lacks a field the mapping requires.
    #[error("writer schema {schema} has no field {path:?}, which the mapping uses as {role}")]
    MissingField {
        /// The writer schema's full name.
        schema: String,
        /// The path from the mapping.
        path: String,
        /// What the mapping wanted it for.
        role: &'static str,
    },
    /// A mapped field has a type that cannot fill its role.
    #[error("field {path:?} of type {avro_type} cannot be used as {role}")]
    WrongType {
        /// The path from the mapping.
        path: String,
        /// The Avro type in the writer schema.
        avro_type: String,
        /// What the mapping wanted it for.
        role: &'static str,
    },
    /// The time field is a plain number and the mapping gave no unit for it.
    #[error("time field {path:?} has no timestamp logical type: set `unit` in the mapping")]
    NoTimeUnit {
        /// The path from the mapping.
        path: String,
    },
    /// A field would be written under the key `time`, which InfluxDB reserves.
    #[error(
        "field {path:?} would be written as \"time\", which InfluxDB reserves; map it as the timestamp or rename it"
    )]
    ReservedFieldKey {
        /// The path in the writer schema.
        path: String,
    },
    /// The schema refers to itself; such records have no flat shape.
    #[error("schema {name} is recursive, which the mapping cannot flatten")]
    RecursiveSchema {
        /// The named type that refers to itself.
        name: String,
    },
    /// A named type was referenced but not defined.
    #[error("schema refers to undefined type {name}")]
    UndefinedName {
        /// The missing name.
        name: String,
    },
    /// The mapping itself is inconsistent (independent of any schema).
    #[error("invalid mapping: {0}")]
    InvalidMapping(String),
}

/// Why a schema could not be found, fetched or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// No schema has this id.
    #[error("unknown schema id {0}")]
    UnknownId(u32),
    /// No configured schema has this single-object fingerprint.
    #[error("unknown schema fingerprint {0:#018x}")]
    UnknownFingerprint(u64),
    /// The schema text is not a valid Avro schema.
    #[error("schema {what} is not valid Avro: {message}")]
    Parse {
        /// Which schema (id, file or subject).
        what: String,
        /// The parser's message.
        message: String,
    },
    /// Reading a schema file failed.
    #[error("reading schema file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The schema registry refused or failed the request.
    #[error(transparent)]
    Registry(#[from] crate::source::RegistryError),
}

/// Anything that can stop one record on its way to a point: its framing or data, its
/// schema, or the plan for its schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record's bytes.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The record's schema could not be had.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The record's schema does not fit the mapping.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl Error {
    /// True when trying the same record again later may succeed: the schema registry
    /// was unreachable, slow, overloaded or failing, or a schema file could not be read.
    /// The pipeline retries these (pausing consumption) instead of dead-lettering the
    /// record; every other error is about the record or its schema and will not change.
    pub fn is_transient(&self) -> bool {
        use crate::RegistryError as R;
        matches!(
            self,
            Error::Schema(
                SchemaError::Io { .. }
                    | SchemaError::Registry(
                        R::Timeout(_) | R::Connection(_) | R::Server { .. } | R::RateLimited { .. }
                    )
            )
        )
    }

    /// A short, stable name of the error's kind, for dead-letter headers and metrics:
    /// `decode`, `schema` or `mapping`.
    pub fn class(&self) -> &'static str {
        match self {
            Error::Decode(_) => "decode",
            Error::Schema(_) => "schema",
            Error::Plan(_) => "mapping",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegistryError;

    #[test]
    fn only_registry_outages_are_transient() {
        let outage = Error::from(SchemaError::Registry(RegistryError::Connection(
            "refused".into(),
        )));
        assert!(outage.is_transient());
        assert_eq!(outage.class(), "schema");
        assert!(!Error::from(SchemaError::UnknownId(3)).is_transient());
        assert!(!Error::from(DecodeError::NullMeasurement).is_transient());
        assert_eq!(Error::from(PlanError::NotARecord).class(), "mapping");
    }
}
