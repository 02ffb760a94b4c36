//! Tags and the sorted tag set that, with the measurement, names a series.

use crate::SeriesError;
use crate::name::{TagKey, TagValue, check_tag_key, check_tag_value};

/// One tag: a key and a value, both non-empty strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tag {
    /// The tag key.
    pub key: TagKey,
    /// The tag value.
    pub value: TagValue,
}

impl Tag {
    /// Validates and builds a tag.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Result<Self, SeriesError> {
        let key = key.into();
        let value = value.into();
        check_tag_key(&key)?;
        check_tag_value(Some(&key), &value)?;
        Ok(Tag {
            key: TagKey::new(key)?,
            value: TagValue::new(value)?,
        })
    }
}

/// The tags of a point, kept sorted by key (byte order, as InfluxDB sorts them), with
/// every key at most once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct TagSet(pub(crate) Vec<Tag>);

impl TagSet {
    /// An empty tag set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a tag set from tags in any order. A repeated key is an error.
    pub fn from_tags(tags: impl IntoIterator<Item = Tag>) -> Result<Self, SeriesError> {
        let mut tags: Vec<Tag> = tags.into_iter().collect();
        tags.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        if let Some(pair) = tags.windows(2).find(|w| w[0].key == w[1].key) {
            return Err(SeriesError::DuplicateTag {
                key: pair[0].key.to_string(),
            });
        }
        Ok(TagSet(tags))
    }

    /// Adds a tag at its sorted place. A key that is already present is an error.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), SeriesError> {
        let tag = Tag::new(key, value)?;
        match self
            .0
            .binary_search_by(|t| t.key.as_str().cmp(tag.key.as_str()))
        {
            Ok(_) => Err(SeriesError::DuplicateTag {
                key: tag.key.into_string(),
            }),
            Err(at) => {
                self.0.insert(at, tag);
                Ok(())
            }
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&TagValue> {
        self.0
            .binary_search_by(|t| t.key.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].value)
    }

    /// The tags in key order.
    pub fn iter(&self) -> std::slice::Iter<'_, Tag> {
        self.0.iter()
    }

    /// How many tags there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a TagSet {
    type Item = &'a Tag;
    type IntoIter = std::slice::Iter<'a, Tag>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for TagSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TagSet::from_tags(Vec::<Tag>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_sorted_by_key_whatever_the_insert_order() {
        let mut t = TagSet::new();
        t.insert("region", "eu").unwrap();
        t.insert("host", "a").unwrap();
        t.insert("Zone", "1").unwrap();
        let keys: Vec<_> = t.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["Zone", "host", "region"]);
        assert_eq!(t.get("host").unwrap().as_str(), "a");
        assert!(t.get("nope").is_none());
    }

    #[test]
    fn duplicate_tag_key_is_an_error() {
        let mut t = TagSet::new();
        t.insert("host", "a").unwrap();
        assert_eq!(
            t.insert("host", "b").unwrap_err(),
            SeriesError::DuplicateTag { key: "host".into() }
        );
        let err = TagSet::from_tags([Tag::new("x", "1").unwrap(), Tag::new("x", "2").unwrap()])
            .unwrap_err();
        assert_eq!(err, SeriesError::DuplicateTag { key: "x".into() });
    }

    #[test]
    fn empty_tag_value_names_the_key() {
        assert_eq!(
            Tag::new("host", "").unwrap_err().to_string(),
            "tag \"host\" has an empty value"
        );
    }
}
