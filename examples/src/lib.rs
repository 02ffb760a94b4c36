//! Example programs and benchmarks of the kinflux workspace; see the `[[example]]` entries.
