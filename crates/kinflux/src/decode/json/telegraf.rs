//! Telegraf's JSON output format: `{"name": .., "tags": {..}, "fields": {..},
//! "timestamp": ..}`, one metric per record, an array of them, or a batch
//! `{"metrics": [..]}` (Telegraf's `use_batch_format`).

use std::borrow::Cow;

use kinflux_series::{Point, PointRef, Precision, Timestamp};

use super::value::{Json, Object};
use super::{JsonError, Typing, kind, parse, rfc3339};

/// Decodes records in Telegraf's JSON output format. Field numbers follow [`Typing`]
/// (floats unless pinned: Telegraf writes the float `3.0` as `3`); tag values are strings
/// (numbers and booleans are written as text); `timestamp` is a number in `unit`
/// (Telegraf's `json_timestamp_units`, 1s by default) or an RFC 3339 string.
#[derive(Debug, Clone)]
pub struct TelegrafJsonDecoder {
    typing: Typing,
    unit: Precision,
}

impl TelegrafJsonDecoder {
    /// A decoder with timestamps in `unit` and fields typed by `typing`.
    pub fn new(unit: Precision, typing: Typing) -> Self {
        TelegrafJsonDecoder { typing, unit }
    }

    /// The points of one record; `fallback` is the time of a metric without one.
    pub fn decode(
        &self,
        bytes: &[u8],
        fallback: Option<Timestamp>,
    ) -> Result<Vec<Point>, JsonError> {
        let value = parse(bytes)?;
        let points = self.points(&value, fallback)?;
        Ok(points.into_iter().map(PointRef::into_owned).collect())
    }

    /// The points of a parsed record, borrowing from it and from the renames.
    fn points<'v>(
        &'v self,
        value: &'v Json<'v>,
        fallback: Option<Timestamp>,
    ) -> Result<Vec<PointRef<'v>>, JsonError> {
        let metrics: &[Json<'_>] = match value {
            Json::Object(o) => match o.get("metrics") {
                Some(Json::Array(items)) if !o.contains_key("name") => items,
                _ => std::slice::from_ref(value),
            },
            Json::Array(items) => items,
            other => return Err(JsonError::NotAnObject(kind(other))),
        };
        metrics
            .iter()
            .enumerate()
            .map(|(index, m)| {
                let point = match m {
                    Json::Object(o) => self.metric(o, fallback),
                    other => Err(JsonError::NotAnObject(kind(other))),
                };
                point.map_err(|e| match metrics.len() {
                    1 => e,
                    _ => JsonError::Element {
                        index,
                        error: Box::new(e),
                    },
                })
            })
            .collect()
    }

    fn metric<'v>(
        &'v self,
        m: &'v Object<'v>,
        fallback: Option<Timestamp>,
    ) -> Result<PointRef<'v>, JsonError> {
        let wrong = |path: &str, message: String| JsonError::Type {
            path: path.to_owned(),
            message,
        };
        let name = match m.get("name") {
            Some(Json::String(s)) => s.as_ref(),
            Some(other) => {
                return Err(wrong(
                    "name",
                    format!("must be a string, found {}", kind(other)),
                ));
            }
            None => return Err(JsonError::Missing("name".into())),
        };
        let mut tags = Vec::new();
        match m.get("tags") {
            None | Some(Json::Null) => {}
            Some(Json::Object(object)) => {
                for (k, v) in object.iter() {
                    let key = Cow::Borrowed(self.typing.key(k));
                    match v {
                        Json::String(s) => tags.push((key, Cow::Borrowed(s.as_ref()))),
                        Json::Null => {}
                        Json::Number(_) | Json::Bool(_) => {
                            tags.push((key, Cow::Owned(v.to_string())))
                        }
                        other => {
                            return Err(wrong(
                                &format!("tags.{k}"),
                                format!("a tag must be a string, found {}", kind(other)),
                            ));
                        }
                    }
                }
            }
            Some(other) => {
                return Err(wrong(
                    "tags",
                    format!("must be an object, found {}", kind(other)),
                ));
            }
        }
        let Some(Json::Object(object)) = m.get("fields") else {
            return Err(JsonError::Missing("fields".into()));
        };
        let mut fields = Vec::new();
        for (k, v) in object.iter() {
            let key = self.typing.key(k);
            match self.typing.field(key, v) {
                Ok(Some(value)) => fields.push((Cow::Borrowed(key), value)),
                Ok(None) => {}
                Err(message) => return Err(wrong(key, message)),
            }
        }
        let timestamp = match m.get("timestamp") {
            None | Some(Json::Null) => fallback,
            Some(Json::Number(n)) => {
                let raw = n
                    .as_i64()
                    .ok_or_else(|| wrong("timestamp", format!("{n} is not a whole number")))?;
                Some(
                    Timestamp::from_precision(raw, self.unit)
                        .map_err(|e| wrong("timestamp", e.to_string()))?,
                )
            }
            Some(Json::String(s)) => Some(rfc3339(s).map_err(|e| wrong("timestamp", e))?),
            Some(other) => {
                return Err(wrong(
                    "timestamp",
                    format!("must be a number or a string, found {}", kind(other)),
                ));
            }
        };
        Ok(PointRef::new(Cow::Borrowed(name), tags, fields, timestamp)?)
    }
}

impl crate::decode::Decode for TelegrafJsonDecoder {
    fn decode_record<'a>(
        &'a self,
        input: crate::decode::Input<'a>,
        out: &'a mut crate::decode::Emitter<'_>,
    ) -> crate::decode::Decoding<'a> {
        let points = parse(input.value).and_then(|value| {
            let points = self.points(&value, input.default_time)?;
            points.into_iter().for_each(|p| out.point(p));
            Ok(())
        });
        match points {
            Ok(()) => crate::decode::Decoding::ok(),
            Err(e) => crate::decode::Decoding::failed(crate::decode::DecodeFailure::new(
                crate::pipeline::ErrorClass::Decode,
                e.to_string(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinflux_series::{FieldValue, PointView};

    #[test]
    fn single_metrics_batches_and_arrays_decode() {
        let d = TelegrafJsonDecoder::new(Precision::Seconds, Typing::default());
        let one = br#"{"fields":{"usage":30,"ok":true,"s":"x"},"name":"cpu","tags":{"host":"raynor","n":3},"timestamp":1458229140}"#;
        let points = d.decode(one, None).unwrap();
        assert_eq!(points.len(), 1);
        let p = &points[0];
        assert_eq!(p.measurement().as_str(), "cpu");
        assert_eq!(
            PointView::tags(p).collect::<Vec<_>>(),
            [("host", "raynor"), ("n", "3")]
        );
        assert_eq!(p.fields().get("usage"), Some(&FieldValue::Float(30.0)));
        assert_eq!(
            p.timestamp(),
            Some(Timestamp::from_nanos(1_458_229_140_000_000_000))
        );
        let batch = br#"{"metrics":[{"name":"a","fields":{"v":1},"timestamp":1},{"name":"b","fields":{"v":2},"timestamp":2}]}"#;
        assert_eq!(d.decode(batch, None).unwrap().len(), 2);
        let array = br#"[{"name":"a","fields":{"v":1}},{"name":"b","fields":{"v":2}}]"#;
        let fallback = Some(Timestamp::from_nanos(9));
        assert_eq!(d.decode(array, fallback).unwrap()[1].timestamp(), fallback);
        let err = d
            .decode(br#"[{"name":"a","fields":{"v":1}},{"name":"b"}]"#, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "array element 1: mapped path \"fields\" is missing"
        );
    }

    #[test]
    fn pinned_types_and_renames_apply() {
        let typing: Typing =
            toml::from_str("types = { v = \"integer\" }\nrename = { host = \"source\" }").unwrap();
        let d = TelegrafJsonDecoder::new(Precision::Milliseconds, typing);
        let p = &d
            .decode(
                br#"{"name":"a","tags":{"host":"h"},"fields":{"v":2},"timestamp":5}"#,
                None,
            )
            .unwrap()[0];
        assert_eq!(p.fields().get("v"), Some(&FieldValue::Integer(2)));
        assert_eq!(PointView::tags(p).collect::<Vec<_>>(), [("source", "h")]);
        assert_eq!(p.timestamp(), Some(Timestamp::from_nanos(5_000_000)));
        let err = d
            .decode(br#"{"name":"a","fields":{"v":2.5}}"#, None)
            .unwrap_err();
        assert_eq!(err.to_string(), "\"v\": cannot convert 2.5 to integer");
    }
}
