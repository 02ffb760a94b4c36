//! Framed records to points: find the writer schema, compile (or reuse) its plan, run it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::Schema;
use kinflux_series::{Point, PointRef, Timestamp};

use crate::framing::{fingerprint, split_confluent, split_single_object};
use crate::{DecodePlan, Error, Mapping, PlanError, SchemaError, SchemaSource};

/// Decodes records in the Confluent wire format: the schema id in each record's header
/// is looked up in a [`SchemaSource`] once, and its plan compiled once and cached.
///
/// A plan error (the writer schema does not fit the mapping) is cached too: every record
/// of that schema gets the same error without asking the source again. A failed lookup
/// is not cached, so a registry outage heals by itself.
#[derive(Debug)]
pub struct ConfluentDecoder<S> {
    source: S,
    mapping: Mapping,
    plans: RwLock<HashMap<u32, Result<Arc<DecodePlan>, PlanError>>>,
}

impl<S: SchemaSource> ConfluentDecoder<S> {
    /// A decoder that finds writer schemas in `source` and maps records with `mapping`.
    pub fn new(source: S, mapping: Mapping) -> Self {
        ConfluentDecoder {
            source,
            mapping,
            plans: RwLock::new(HashMap::new()),
        }
    }

    /// The schema source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Runs `decode` on the plan for `record`'s writer schema and the record's Avro body
    /// when that plan is cached, without waiting; `None` when the schema has not been
    /// looked up yet (then [`plan_for`](Self::plan_for) fetches it). A record without
    /// Confluent framing, or of a schema that does not fit the mapping, is an error here
    /// as there.
    ///
    /// For callers that decode record after record: no future, no `Arc` clone per
    /// record. The cache's read lock is held while `decode` runs.
    pub fn with_cached_plan<T>(
        &self,
        record: &[u8],
        decode: impl FnOnce(&DecodePlan, &[u8]) -> T,
    ) -> Option<Result<T, Error>> {
        let (id, body) = match split_confluent(record) {
            Ok(split) => split,
            Err(e) => return Some(Err(e.into())),
        };
        let decoded = self.with_plan(id, |plan| decode(plan, body))?;
        Some(decoded.map_err(Error::from))
    }

    /// The plan for `record`'s writer schema, and the record's Avro body. Decode with
    /// `plan.decode(body, fallback)` to get a point borrowing from both.
    pub async fn plan_for<'r>(
        &self,
        record: &'r [u8],
    ) -> Result<(Arc<DecodePlan>, &'r [u8]), Error> {
        let (id, body) = split_confluent(record)?;
        if let Some(cached) = self.with_plan(id, Arc::clone) {
            return Ok((cached?, body));
        }
        let schema = self.source.schema(id).await?;
        let plan = DecodePlan::compile(&schema, &self.mapping).map(Arc::new);
        if let Err(e) = &plan {
            tracing::warn!(schema_id = id, error = %e, "writer schema does not fit the mapping");
        }
        self.plans
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, plan.clone());
        Ok((plan?, body))
    }

    /// Runs `f` on schema `id`'s cached plan, under the cache's read lock; the cached
    /// plan error when the schema does not fit; `None` when the schema is not cached.
    fn with_plan<T>(
        &self,
        id: u32,
        f: impl FnOnce(&Arc<DecodePlan>) -> T,
    ) -> Option<Result<T, PlanError>> {
        let plans = self
            .plans
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(match plans.get(&id)? {
            Ok(plan) => Ok(f(plan)),
            Err(e) => Err(e.clone()),
        })
    }

    /// Decodes one framed record into an owned point.
    pub async fn decode_owned(
        &self,
        record: &[u8],
        fallback: Option<Timestamp>,
    ) -> Result<Point, Error> {
        let (plan, body) = self.plan_for(record).await?;
        Ok(plan.decode_owned(body, fallback)?)
    }
}

/// Decodes single-object encoded records (`C3 01`, fingerprint, body) written with one
/// of a known set of schemas.
#[derive(Debug)]
pub struct SingleObjectDecoder {
    plans: HashMap<u64, Result<DecodePlan, PlanError>>,
}

impl SingleObjectDecoder {
    /// A decoder for records written with any of `schemas`, mapped by `mapping`. A
    /// schema that does not fit the mapping makes its records fail with the plan error.
    pub fn new<'s>(schemas: impl IntoIterator<Item = &'s Schema>, mapping: &Mapping) -> Self {
        SingleObjectDecoder {
            plans: schemas
                .into_iter()
                .map(|schema| (fingerprint(schema), DecodePlan::compile(schema, mapping)))
                .collect(),
        }
    }

    /// Decodes one record into a point borrowing from it and from this decoder.
    pub fn decode<'a>(
        &'a self,
        record: &'a [u8],
        fallback: Option<Timestamp>,
    ) -> Result<PointRef<'a>, Error> {
        let (fp, body) = split_single_object(record)?;
        let plan = self
            .plans
            .get(&fp)
            .ok_or(SchemaError::UnknownFingerprint(fp))?
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(plan.decode(body, fallback)?)
    }
}
