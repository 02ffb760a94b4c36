//! Example programs for the kinflux crates live in this folder; see `Cargo.toml`.
