//! HTTP for tests: a small blocking client, and the scripted servers that stand in for
//! services that cannot run here (a Confluent schema registry, InfluxDB's v2 and v3 write
//! APIs). Each server cites the documentation whose answers it gives.

mod client;
mod registry;
mod scripted;

pub use client::{Answer, get, request};
pub use registry::{Registry, RegistryState};
pub use scripted::{Recorded, Reply, ScriptedServer};
