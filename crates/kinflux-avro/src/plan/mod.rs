//! Decode plans: a (writer schema, mapping) pair compiled once into a tree that walks the
//! Avro binary a single time and emits a point directly.

mod compile;
mod decode;
pub(crate) mod reader;

use kinflux_series::Precision;

/// A (writer schema, mapping) pair compiled for decoding: build it once per schema (the
/// [`ConfluentDecoder`](crate::ConfluentDecoder) caches one per schema id), then call
/// [`decode`](Self::decode) for every record. Unmapped fields are skipped in place; no
/// generic value tree is built.
#[derive(Debug, Clone)]
pub struct DecodePlan {
    /// The writer record's fields, in writer order.
    root: Vec<Node>,
    /// The constant or record-name measurement; `None` when a field supplies it.
    measurement: Option<String>,
    separator: String,
    /// The writer record's full name.
    writer_name: String,
    /// The tag keys, sorted: a tag sink holds its key's index here, so the tags of a
    /// record come out sorted without sorting them per record.
    tag_keys: Vec<String>,
    /// How many fields a record usually yields, to size the vector once.
    field_hint: usize,
}

/// Where a decoded value goes. Keys are the flattened name, or inside an expanded array or
/// map the name relative to the element (joined to the element's name at run time).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sink {
    Skip,
    /// The index of the tag's key in the plan's sorted `tag_keys`.
    Tag(usize),
    Field(String),
    Time(Precision),
    Measurement,
}

/// One step of the walk over the Avro binary, mirroring the writer schema.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Nothing in the binary, nothing emitted (null, zero-size fixed).
    Null,
    Boolean(Sink),
    /// `int` and the logical types on it (`date`, `time-millis`).
    Int(Sink),
    /// `long` and the logical types on it (`time-micros`, timestamps).
    Long(Sink),
    Float(Sink),
    Double(Sink),
    String(Sink),
    /// A `uuid` string; 16 raw bytes are formatted as text, as apache-avro does.
    Uuid(Sink),
    /// `bytes` (and `big-decimal`): base64 when the sink is not `Skip`.
    Bytes(Sink),
    /// `fixed` of this size (and `duration`): base64 when the sink is not `Skip`.
    Fixed(usize, Sink),
    Enum(Vec<String>, Sink),
    /// A `decimal` on `bytes` (`None`) or on a `fixed` of this size, as a float.
    Decimal {
        fixed: Option<usize>,
        scale: i32,
        sink: Sink,
    },
    Record(Vec<Node>),
    /// The branches, in writer order.
    Union(Vec<Node>),
    /// `key` is `Some` when the elements are expanded into fields named `key_0`, ...;
    /// `zero_width` when an element takes no bytes and emits nothing, so that a block
    /// count from the input never drives a loop that consumes nothing.
    Array {
        key: Option<String>,
        items: Box<Node>,
        zero_width: bool,
    },
    /// As `Array`, with fields named `key_<map key>`.
    Map {
        key: Option<String>,
        values: Box<Node>,
        zero_width: bool,
    },
    /// A union branch whose type cannot fill the mapped role: an error if the data takes it.
    Reject {
        path: String,
        avro_type: &'static str,
        role: &'static str,
    },
}

impl Node {
    /// True when the value takes no bytes and emits nothing.
    fn is_zero_width(&self) -> bool {
        match self {
            Node::Null => true,
            Node::Record(fields) => fields.iter().all(Node::is_zero_width),
            _ => false,
        }
    }
}

impl DecodePlan {
    /// The writer schema's full record name.
    pub fn writer_name(&self) -> &str {
        &self.writer_name
    }
}

#[cfg(test)]
mod tests;
