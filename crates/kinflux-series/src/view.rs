//! The borrowed point, and the trait that lets encoders read owned and borrowed points
//! alike without converting them.

use std::borrow::Cow;

use crate::field::{Field, FieldValueRef, check_field};
use crate::name::{FieldKey, Measurement, TagKey, TagValue, check_measurement};
use crate::name::{check_tag_key, check_tag_value};
use crate::tag::Tag;
use crate::{FieldSet, Point, SeriesError, TagSet, Timestamp};

/// Read access to a point, whoever owns its strings.
pub trait PointView {
    /// The measurement name, unescaped.
    fn measurement(&self) -> &str;
    /// The tags as (key, value), sorted by key, each key once.
    fn tags(&self) -> impl ExactSizeIterator<Item = (&str, &str)>;
    /// The fields as (key, value), each key once, never empty.
    fn fields(&self) -> impl ExactSizeIterator<Item = (&str, FieldValueRef<'_>)>;
    /// The timestamp, if any.
    fn timestamp(&self) -> Option<Timestamp>;
}

/// A validated point whose strings borrow from the input they were decoded from (or own
/// the few that needed unescaping). Zero-copy parsers produce this; turn it into a
/// [`Point`] with [`into_owned`](Self::into_owned) when it must outlive the input.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRef<'a> {
    measurement: Cow<'a, str>,
    tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    fields: Vec<(Cow<'a, str>, FieldValueRef<'a>)>,
    timestamp: Option<Timestamp>,
}

/// Up to this many fields, duplicates are found by comparing every pair: cheaper than
/// hashing for the handful of fields a real point has.
const SMALL_FIELD_COUNT: usize = 16;

impl<'a> PointRef<'a> {
    /// Validates the parts and assembles a point: sorts the tags by key, refuses a
    /// repeated tag key, and keeps the last value of a repeated field key (at the
    /// position of its first occurrence).
    pub fn new(
        measurement: Cow<'a, str>,
        mut tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        mut fields: Vec<(Cow<'a, str>, FieldValueRef<'a>)>,
        timestamp: Option<Timestamp>,
    ) -> Result<Self, SeriesError> {
        check_measurement(&measurement)?;
        for (k, v) in &tags {
            check_tag_key(k)?;
            check_tag_value(Some(k), v)?;
        }
        // Writers usually send tags sorted already; only sort when they did not.
        if !tags.is_sorted_by(|a, b| a.0 <= b.0) {
            tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        if let Some(pair) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(SeriesError::DuplicateTag {
                key: pair[0].0.to_string(),
            });
        }
        if fields.is_empty() {
            return Err(SeriesError::NoFields);
        }
        for (k, v) in &fields {
            check_field(k, v)?;
        }
        dedup_fields_keep_last(&mut fields);
        Ok(PointRef {
            measurement,
            tags,
            fields,
            timestamp,
        })
    }

    /// Sets or clears the timestamp.
    pub fn set_timestamp(&mut self, timestamp: Option<Timestamp>) {
        self.timestamp = timestamp;
    }

    /// Adds a tag at its sorted place unless the point already has a tag with this key,
    /// for enrichment where the data's own tags win. Returns whether it was added.
    pub fn add_tag_if_absent(
        &mut self,
        key: Cow<'a, str>,
        value: Cow<'a, str>,
    ) -> Result<bool, SeriesError> {
        check_tag_key(&key)?;
        check_tag_value(Some(&key), &value)?;
        match self
            .tags
            .binary_search_by(|(k, _)| k.as_ref().cmp(key.as_ref()))
        {
            Ok(_) => Ok(false),
            Err(at) => {
                self.tags.insert(at, (key, value));
                Ok(true)
            }
        }
    }

    /// Removes the tag with this key; returns its value, if it had one.
    pub fn remove_tag(&mut self, key: &str) -> Option<Cow<'a, str>> {
        let at = self
            .tags
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()?;
        Some(self.tags.remove(at).1)
    }

    /// The value of the tag with this key.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|at| self.tags[at].1.as_ref())
    }

    /// Replaces the measurement name, checked as [`new`](Self::new) checks it.
    pub fn set_measurement(&mut self, measurement: Cow<'a, str>) -> Result<(), SeriesError> {
        check_measurement(&measurement)?;
        self.measurement = measurement;
        Ok(())
    }

    /// An owned copy that no longer borrows the input.
    pub fn into_owned(self) -> Point {
        // The parts were validated in `new`, so they are wrapped without checking again.
        Point::new(
            Measurement(self.measurement.into_owned()),
            TagSet(
                self.tags
                    .into_iter()
                    .map(|(k, v)| Tag {
                        key: TagKey(k.into_owned()),
                        value: TagValue(v.into_owned()),
                    })
                    .collect(),
            ),
            FieldSet(
                self.fields
                    .into_iter()
                    .map(|(k, v)| Field {
                        key: FieldKey(k.into_owned()),
                        value: v.into_owned(),
                    })
                    .collect(),
            ),
            self.timestamp,
        )
        .expect("PointRef::new refused a point without fields")
    }
}

fn dedup_fields_keep_last<K: Ord, V>(fields: &mut Vec<(K, V)>) {
    let n = fields.len();
    if n <= SMALL_FIELD_COUNT {
        let mut i = 0;
        while i < fields.len() {
            if let Some(first) = fields[..i].iter().position(|f| f.0 == fields[i].0) {
                let later = fields.remove(i);
                fields[first] = later;
            } else {
                i += 1;
            }
        }
        return;
    }
    // Many fields: a stable sort of the indexes groups equal keys in input order, so the
    // first of a group is where the field stays and the last holds the value it keeps.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| fields[a].0.cmp(&fields[b].0));
    let mut keep_value_of: Vec<Option<usize>> = vec![None; n];
    let mut group_start = 0;
    for i in 1..=n {
        if i == n || fields[order[i]].0 != fields[order[group_start]].0 {
            keep_value_of[order[group_start]] = Some(order[i - 1]);
            group_start = i;
        }
    }
    let mut slots: Vec<Option<(K, V)>> = fields.drain(..).map(Some).collect();
    for (position, source) in keep_value_of.into_iter().enumerate() {
        let Some(source) = source else { continue };
        // `source` is this group's last member: no other group touches its slot.
        let (key, own_value) = slots[position]
            .take()
            .expect("a group's first slot is read once");
        let value = if source == position {
            own_value
        } else {
            slots[source]
                .take()
                .expect("a group's last slot is read once")
                .1
        };
        fields.push((key, value));
    }
}

impl Point {
    /// A borrowed view of this point, for code that works on [`PointRef`]s.
    pub fn as_point_ref(&self) -> PointRef<'_> {
        PointRef {
            measurement: Cow::Borrowed(self.measurement().as_str()),
            tags: self
                .tags()
                .iter()
                .map(|t| {
                    (
                        Cow::Borrowed(t.key.as_str()),
                        Cow::Borrowed(t.value.as_str()),
                    )
                })
                .collect(),
            fields: self
                .fields()
                .iter()
                .map(|f| (Cow::Borrowed(f.key.as_str()), f.value.as_ref()))
                .collect(),
            timestamp: self.timestamp(),
        }
    }
}

impl PointView for PointRef<'_> {
    fn measurement(&self) -> &str {
        &self.measurement
    }

    fn tags(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    fn fields(&self) -> impl ExactSizeIterator<Item = (&str, FieldValueRef<'_>)> {
        self.fields.iter().map(|(k, v)| {
            let v = match v {
                FieldValueRef::String(s) => FieldValueRef::String(Cow::Borrowed(s.as_ref())),
                other => other.clone(),
            };
            (k.as_ref(), v)
        })
    }

    fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(k: &str, v: i64) -> (Cow<'_, str>, FieldValueRef<'_>) {
        (Cow::Borrowed(k), FieldValueRef::Integer(v))
    }

    fn keys_and_values(p: &PointRef<'_>) -> Vec<(String, FieldValueRef<'static>)> {
        p.fields()
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    FieldValueRef::Integer(match v {
                        FieldValueRef::Integer(i) => i,
                        _ => unreachable!(),
                    }),
                )
            })
            .collect()
    }

    #[test]
    fn borrowed_point_sorts_tags_and_keeps_last_field_value() {
        let p = PointRef::new(
            "cpu".into(),
            vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            vec![f("x", 1), f("y", 2), f("x", 3)],
            None,
        )
        .unwrap();
        assert_eq!(
            PointView::tags(&p).collect::<Vec<_>>(),
            [("a", "1"), ("b", "2")]
        );
        assert_eq!(
            keys_and_values(&p),
            [
                ("x".into(), FieldValueRef::Integer(3)),
                ("y".into(), FieldValueRef::Integer(2))
            ]
        );
    }

    #[test]
    fn many_repeated_fields_dedup_like_few() {
        // Same rule above and below SMALL_FIELD_COUNT.
        let keys: Vec<String> = (0..40).map(|i| format!("k{}", i % 13)).collect();
        let fields: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| f(k, i as i64))
            .collect();
        let p = PointRef::new("m".into(), vec![], fields.clone(), None).unwrap();
        let mut small = fields.clone();
        // Reference: quadratic rule, applied in chunks is not valid, so compute directly.
        let mut expected: Vec<(String, FieldValueRef<'static>)> = Vec::new();
        for (k, v) in small.drain(..) {
            let v = match v {
                FieldValueRef::Integer(i) => FieldValueRef::Integer(i),
                _ => unreachable!(),
            };
            match expected.iter_mut().find(|e| e.0 == k) {
                Some(e) => e.1 = v,
                None => expected.push((k.into_owned(), v)),
            }
        }
        assert_eq!(keys_and_values(&p), expected);
        assert_eq!(p.into_owned().fields().len(), 13);
    }

    #[test]
    fn enrichment_tags_keep_the_data_value_and_stay_sorted() {
        let mut p = PointRef::new(
            "m".into(),
            vec![("host".into(), "a".into())],
            vec![f("v", 1)],
            None,
        )
        .unwrap();
        assert!(p.add_tag_if_absent("zone".into(), "z".into()).unwrap());
        assert!(p.add_tag_if_absent("dc".into(), "d".into()).unwrap());
        assert!(!p.add_tag_if_absent("host".into(), "other".into()).unwrap());
        assert!(p.add_tag_if_absent("time".into(), "x".into()).is_err());
        assert_eq!(
            PointView::tags(&p).collect::<Vec<_>>(),
            [("dc", "d"), ("host", "a"), ("zone", "z")]
        );
        let owned = p.clone().into_owned();
        assert_eq!(owned.as_point_ref(), p);
    }

    #[test]
    fn borrowed_point_runs_the_same_checks_as_owned() {
        assert_eq!(
            PointRef::new(
                "m".into(),
                vec![("t".into(), "1".into()), ("t".into(), "2".into())],
                vec![f("v", 1)],
                None
            )
            .unwrap_err(),
            SeriesError::DuplicateTag { key: "t".into() }
        );
        assert_eq!(
            PointRef::new("m".into(), vec![], vec![], None).unwrap_err(),
            SeriesError::NoFields
        );
        assert_eq!(
            PointRef::new("".into(), vec![], vec![f("v", 1)], None).unwrap_err(),
            SeriesError::EmptyMeasurement
        );
        assert!(matches!(
            PointRef::new(
                "m".into(),
                vec![],
                vec![("v".into(), FieldValueRef::Float(f64::NAN))],
                None
            ),
            Err(SeriesError::NonFiniteFloat { .. })
        ));
    }
}
