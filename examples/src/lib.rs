//! Small programs that show the kinflux libraries: `lp_lint` (kinflux-line),
//! `garden_producer` (kinflux-avro's schema directory and registry client) and
//! `influx_load` (kinflux-influx's writer); see the `[[example]]` entries in `Cargo.toml`.
//! The bridge itself is the `kinflux` binary of `crates/kinflux-bridge`, and the
//! benchmark programs live in `benches/`.
