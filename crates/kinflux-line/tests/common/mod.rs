//! Strategies the property tests share.

use kinflux_series::FieldValue;
use proptest::prelude::*;

/// A field value of every kind line protocol has (finite floats), its strings drawn from
/// `text`.
pub(crate) fn field_value(
    text: impl Strategy<Value = String> + 'static,
) -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Integer),
        any::<u64>().prop_map(FieldValue::UInteger),
        any::<bool>().prop_map(FieldValue::Boolean),
        text.prop_map(FieldValue::String),
    ]
}
