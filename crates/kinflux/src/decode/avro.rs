//! Avro record values: Confluent framing with a registry or a schema directory, single
//! object encoding, or plain bodies with one configured schema.

use std::sync::Arc;

use kinflux_avro::apache_avro::Schema;
use kinflux_avro::{
    ConfluentDecoder, DecodePlan, Error, Mapping, RegistryClient, SchemaDir, SchemaError,
    SchemaSource, SingleObjectDecoder,
};
use kinflux_series::{PointRef, Timestamp};

use super::{DecodeFailure, Unavailable};
use crate::metrics::ErrorClass;

/// Where Confluent-framed records find their writer schemas.
#[derive(Debug)]
pub enum Schemas {
    /// A Confluent Schema Registry.
    Registry(RegistryClient),
    /// A directory of `<id>.avsc` files.
    Dir(SchemaDir),
}

impl SchemaSource for Schemas {
    async fn schema(&self, id: u32) -> Result<Arc<Schema>, SchemaError> {
        match self {
            Schemas::Registry(r) => r.schema(id).await,
            Schemas::Dir(d) => d.schema(id).await,
        }
    }
}

/// Decodes Avro record values with a mapping.
#[derive(Debug)]
#[non_exhaustive]
pub enum AvroDecoder {
    /// Magic byte 0, schema id, body.
    Confluent(Box<ConfluentDecoder<Schemas>>),
    /// `C3 01`, fingerprint, body.
    SingleObject(SingleObjectDecoder),
    /// A bare body written with one known schema.
    Plain(DecodePlan),
}

impl AvroDecoder {
    /// Confluent-framed records with schemas from `schemas`.
    pub fn confluent(schemas: Schemas, mapping: Mapping) -> Self {
        AvroDecoder::Confluent(Box::new(ConfluentDecoder::new(schemas, mapping)))
    }

    pub(super) async fn decode(
        &self,
        value: &[u8],
        fallback: Option<Timestamp>,
        emit: &mut (dyn for<'p> FnMut(PointRef<'p>) + Send),
    ) -> Result<Option<DecodeFailure>, Unavailable> {
        let result = match self {
            AvroDecoder::Confluent(d) => match d.plan_for(value).await {
                Ok((plan, body)) => plan
                    .decode(body, fallback)
                    .map(&mut *emit)
                    .map_err(Error::from),
                Err(e) => Err(e),
            },
            AvroDecoder::SingleObject(d) => d.decode(value, fallback).map(&mut *emit),
            AvroDecoder::Plain(plan) => plan
                .decode(value, fallback)
                .map(&mut *emit)
                .map_err(Error::from),
        };
        match result {
            Ok(()) => Ok(None),
            Err(e) if e.is_transient() => Err(Unavailable(e.to_string())),
            Err(e @ (Error::Schema(_) | Error::Plan(_))) => Ok(Some(DecodeFailure {
                class: ErrorClass::Schema,
                message: e.to_string(),
                bad_part: None,
            })),
            Err(e) => Ok(Some(DecodeFailure {
                class: ErrorClass::Decode,
                message: e.to_string(),
                bad_part: None,
            })),
        }
    }
}
