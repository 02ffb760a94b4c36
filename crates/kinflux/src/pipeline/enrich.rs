//! Tags every point gets, and where its time comes from.

use std::borrow::Cow;

use kinflux_kafka::Record;
use kinflux_series::{PointRef, PointView, SeriesError, Timestamp};

use crate::config::{TagsConfig, TimeSource};

/// Adds the configured tags to points and settles their time.
#[derive(Debug, Clone)]
pub(crate) struct Enrichment {
    tags: TagsConfig,
    time: TimeSource,
}

impl Enrichment {
    pub(crate) fn new(tags: TagsConfig, time: TimeSource) -> Self {
        Enrichment { tags, time }
    }

    /// Whether [`apply`](Self::apply) changes nothing that a decoder's default time
    /// (the Kafka record's) does not already: no tags to add, and the time from the data.
    /// Line protocol is then forwarded as it came, without building points.
    pub(crate) fn is_noop(&self) -> bool {
        let t = &self.tags;
        self.time == TimeSource::Data
            && t.topic_tag.is_none()
            && t.key_tag.is_none()
            && t.header_tags.is_empty()
            && t.static_tags.is_empty()
    }

    /// Adds tags from the record and the configuration (tags the point has keep their
    /// value) and sets the time from the Kafka record when so configured.
    pub(crate) fn apply<'a>(
        &'a self,
        point: &mut PointRef<'a>,
        record: &'a Record,
        record_time: Option<Timestamp>,
    ) -> Result<(), SeriesError> {
        if self.time == TimeSource::Kafka || point.timestamp().is_none() {
            point.set_timestamp(record_time);
        }
        if let Some(key) = &self.tags.topic_tag {
            point.add_tag_if_absent(Cow::Borrowed(key), Cow::Borrowed(&record.topic))?;
        }
        if let (Some(tag), Some(key)) = (&self.tags.key_tag, &record.key) {
            if let Ok(text) = std::str::from_utf8(key) {
                if !text.is_empty() {
                    point.add_tag_if_absent(Cow::Borrowed(tag), Cow::Borrowed(text))?;
                }
            }
        }
        for name in &self.tags.header_tags {
            let value = record
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
                .filter(|v| !v.is_empty());
            if let Some(v) = value {
                point.add_tag_if_absent(Cow::Borrowed(name), Cow::Borrowed(v))?;
            }
        }
        for (k, v) in &self.tags.static_tags {
            point.add_tag_if_absent(Cow::Borrowed(k), Cow::Borrowed(v))?;
        }
        Ok(())
    }
}
