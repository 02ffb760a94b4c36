//! Example programs of the kinflux workspace: the `bridge` binary, tools and benchmarks;
//! see the `[[example]]` entries in `Cargo.toml`.
