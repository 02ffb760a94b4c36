//! Where a point goes on a target: which database (v1, v3) or bucket (v2), and on v1
//! which retention policy, chosen per point from a tag or per record from its topic.

use kinflux_series::PointRef;

/// `${topic}`: the record's topic, in a database, bucket or retention policy name.
const TOPIC: &str = "${topic}";

/// How a target chooses the database or bucket, and the retention policy, of each point
/// (Telegraf's `database_tag`, `bucket_tag`, `retention_policy_tag` and their
/// `exclude_*` twins).
///
/// A point that has the tag goes where the tag says; a point without it (or with an
/// empty value) goes to the default, which may name the record's topic (`"${topic}"`,
/// `"metrics_${topic}"`); without a default, to the writer's own database or bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Routing {
    /// The database (v1, v3) or bucket (v2) of points without the tag; `${topic}` is the
    /// record's topic. `None`: the writer's own.
    pub destination: Option<String>,
    /// The tag that names the database or bucket.
    pub destination_tag: Option<String>,
    /// Leave `destination_tag` out of the points written.
    pub exclude_destination_tag: bool,
    /// v1: the retention policy of points without the tag; `${topic}` is the record's
    /// topic. `None`: the writer's own.
    pub retention_policy: Option<String>,
    /// v1: the tag that names the retention policy.
    pub retention_policy_tag: Option<String>,
    /// Leave `retention_policy_tag` out of the points written.
    pub exclude_retention_policy_tag: bool,
}

/// A database (or bucket) and retention policy a point is written to; `None` parts are
/// the writer's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(super) struct Route {
    pub(super) database: Option<String>,
    pub(super) retention_policy: Option<String>,
}

impl Routing {
    /// Every point goes to the writer's own database: no routing at all.
    pub(super) fn is_fixed(&self) -> bool {
        self.destination_tag.is_none()
            && self.retention_policy_tag.is_none()
            && !self
                .destination
                .as_deref()
                .is_some_and(|d| d.contains(TOPIC))
            && !self
                .retention_policy
                .as_deref()
                .is_some_and(|d| d.contains(TOPIC))
    }

    /// Whether a point's tags decide where it goes (so points must be built, not
    /// forwarded as lines).
    pub(super) fn needs_tags(&self) -> bool {
        self.destination_tag.is_some() || self.retention_policy_tag.is_some()
    }

    /// Whether points lose a tag on this target.
    pub(super) fn excludes_tags(&self) -> bool {
        (self.exclude_destination_tag && self.destination_tag.is_some())
            || (self.exclude_retention_policy_tag && self.retention_policy_tag.is_some())
    }

    /// The route of the records of `topic` whose points have none of the tags.
    pub(super) fn of_topic(&self, topic: &str) -> Route {
        Route {
            database: self.destination.as_deref().map(|d| fill(d, topic)),
            retention_policy: self.retention_policy.as_deref().map(|r| fill(r, topic)),
        }
    }

    /// The route of `point` from a record of `topic`: its tags win over `default` (the
    /// route of the topic).
    pub(super) fn of_point(&self, point: &PointRef<'_>, default: &Route) -> Route {
        let tag = |key: &Option<String>| {
            key.as_deref()
                .and_then(|k| point.tag(k))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Route {
            database: tag(&self.destination_tag).or_else(|| default.database.clone()),
            retention_policy: tag(&self.retention_policy_tag)
                .or_else(|| default.retention_policy.clone()),
        }
    }

    /// Removes the tags this target excludes from `point`.
    pub(super) fn strip(&self, point: &mut PointRef<'_>) {
        if self.exclude_destination_tag {
            if let Some(k) = &self.destination_tag {
                point.remove_tag(k);
            }
        }
        if self.exclude_retention_policy_tag {
            if let Some(k) = &self.retention_policy_tag {
                point.remove_tag(k);
            }
        }
    }
}

/// `template` with `${topic}` replaced by `topic`.
pub(super) fn fill(template: &str, topic: &str) -> String {
    template.replace(TOPIC, topic)
}

/// Whether `template` names the record's topic.
pub(super) fn names_topic(template: &str) -> bool {
    template.contains(TOPIC)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use kinflux_series::FieldValueRef;

    fn point(tags: &[(&'static str, &'static str)]) -> PointRef<'static> {
        PointRef::new(
            Cow::Borrowed("m"),
            tags.iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                .collect(),
            vec![(Cow::Borrowed("v"), FieldValueRef::Integer(1))],
            None,
        )
        .expect("a valid point")
    }

    #[test]
    fn a_tag_wins_over_the_topic_and_the_topic_over_the_writer() {
        let routing = Routing {
            destination: Some("db_${topic}".into()),
            destination_tag: Some("site".into()),
            exclude_destination_tag: true,
            ..Routing::default()
        };
        assert!(!routing.is_fixed());
        assert!(routing.needs_tags());
        let default = routing.of_topic("garden");
        assert_eq!(default.database.as_deref(), Some("db_garden"));
        let tagged = point(&[("host", "a"), ("site", "oslo")]);
        assert_eq!(
            routing.of_point(&tagged, &default).database.as_deref(),
            Some("oslo")
        );
        let untagged = point(&[("host", "a")]);
        assert_eq!(routing.of_point(&untagged, &default), default);
        let mut stripped = tagged.clone();
        routing.strip(&mut stripped);
        assert_eq!(stripped.tag("site"), None);
        assert_eq!(stripped.tag("host"), Some("a"));
        assert!(Routing::default().is_fixed());
        assert_eq!(Routing::default().of_topic("t"), Route::default());
    }
}
