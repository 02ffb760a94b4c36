//! Avro record values: Confluent framing with a registry or a schema directory, single
//! object encoding, or plain bodies with one configured schema.

use std::sync::Arc;

use kinflux_avro::apache_avro::Schema;
use kinflux_avro::{
    ConfluentDecoder, DecodePlan, Error, Mapping, RegistryClient, SchemaDir, SchemaError,
    SchemaSource, SingleObjectDecoder, TelegrafOptions, decode_telegraf,
};

use super::{DecodeFailure, DecodeResult, Decoding, Emitter, Input, Unavailable};
use crate::pipeline::ErrorClass;

/// Where Confluent-framed records find their writer schemas.
// One per pipeline, built once: the registry client's size (its TLS connector) costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
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
    /// Telegraf's avro parser, mirrored: see [`kinflux_avro::telegraf`].
    Telegraf(Box<TelegrafAvro>),
}

/// The `telegraf` preset: where schemas come from, and Telegraf's options.
#[derive(Debug)]
pub struct TelegrafAvro {
    /// Confluent-framed records with a schema source, or bare bodies (single-object
    /// framed or not, as Telegraf takes them) with one schema.
    pub schemas: TelegrafSchemas,
    /// Telegraf's avro parser options.
    pub options: TelegrafOptions,
}

/// Where the `telegraf` preset finds schemas.
#[derive(Debug)]
#[non_exhaustive]
pub enum TelegrafSchemas {
    /// Confluent framing: by id.
    Confluent(Schemas),
    /// One schema, as Telegraf's `avro_schema`.
    Fixed(Schema),
}

impl AvroDecoder {
    /// Confluent-framed records with schemas from `schemas`.
    pub fn confluent(schemas: Schemas, mapping: Mapping) -> Self {
        AvroDecoder::Confluent(Box::new(ConfluentDecoder::new(schemas, mapping)))
    }

    async fn decode_confluent(
        decoder: &ConfluentDecoder<Schemas>,
        input: Input<'_>,
        out: &mut Emitter<'_>,
    ) -> DecodeResult {
        let result = match decoder.plan_for(input.value).await {
            Ok((plan, body)) => plan
                .decode(body, input.default_time)
                .map(|point| out.point(point))
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        settle(result)
    }
}

impl TelegrafAvro {
    async fn decode(&self, input: Input<'_>, out: &mut Emitter<'_>) -> DecodeResult {
        let fallback = input.default_time;
        let emit = |points: Vec<kinflux_series::Point>, out: &mut Emitter<'_>| {
            for p in &points {
                out.point(p.as_point_ref());
            }
        };
        let result = match &self.schemas {
            TelegrafSchemas::Confluent(schemas) => {
                match kinflux_avro::framing::split_confluent(input.value) {
                    Err(e) => Err(Error::from(e)),
                    Ok((id, body)) => match schemas.schema(id).await {
                        Err(e) => Err(Error::from(e)),
                        Ok(schema) => decode_telegraf(&schema, body, &self.options, fallback)
                            .map(|p| emit(p, out))
                            .map_err(Error::from),
                    },
                }
            }
            TelegrafSchemas::Fixed(schema) => {
                // Telegraf skips a single-object header without checking the fingerprint.
                let body = match input.value {
                    [0xc3, 0x01, rest @ ..] if rest.len() >= 8 => &rest[8..],
                    other => other,
                };
                decode_telegraf(schema, body, &self.options, fallback)
                    .map(|p| emit(p, out))
                    .map_err(Error::from)
            }
        };
        settle(result)
    }
}

/// What an Avro error means for the record: try again later (the schema source is
/// unavailable), a schema problem, or bad bytes.
fn settle(result: Result<(), Error>) -> DecodeResult {
    match result {
        Ok(()) => Ok(None),
        Err(e) if e.is_transient() => Err(Unavailable(e.to_string())),
        Err(e @ (Error::Schema(_) | Error::Plan(_))) => {
            Ok(Some(DecodeFailure::new(ErrorClass::Schema, e.to_string())))
        }
        Err(e) => Ok(Some(DecodeFailure::new(ErrorClass::Decode, e.to_string()))),
    }
}

impl super::Decode for AvroDecoder {
    fn decode_record<'a>(&'a self, input: Input<'a>, out: &'a mut Emitter<'_>) -> Decoding<'a> {
        let fallback = input.default_time;
        match self {
            // Only Confluent framing may wait (for a schema not yet seen); the others, and
            // records of a schema already compiled, decode at once. (A boxed future per
            // record, and the plan's `Arc` cloned for it, cost 4% of the CPU on Avro.)
            AvroDecoder::Confluent(d) => {
                let cached = d.with_cached_plan(input.value, |plan, body| {
                    plan.decode(body, fallback)
                        .map(|point| out.point(point))
                        .map_err(Error::from)
                });
                match cached {
                    Some(result) => Decoding::Done(settle(result.and_then(|decoded| decoded))),
                    None => Decoding::pending(Self::decode_confluent(d, input, out)),
                }
            }
            AvroDecoder::SingleObject(d) => Decoding::Done(settle(
                d.decode(input.value, fallback)
                    .map(|point| out.point(point)),
            )),
            AvroDecoder::Telegraf(t) => Decoding::pending(t.decode(input, out)),
            AvroDecoder::Plain(plan) => Decoding::Done(settle(
                plan.decode(input.value, fallback)
                    .map(|point| out.point(point))
                    .map_err(Error::from),
            )),
        }
    }
}
