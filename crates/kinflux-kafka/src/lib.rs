#![doc = include_str!("../README.md")]
#![deny(rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations)]

mod assignor;
pub mod config;
mod conn;
mod consumer;
pub mod dead_letter;
pub mod error;
pub mod fetch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod oauth;
mod record;
mod sasl;
mod security;

pub use config::{
    AssignmentStrategy, AutoOffsetReset, ConsumerConfig, Credentials, GroupProtocol, OAuthConfig,
    RemoteAssignor, SaslConfig, SaslMechanism, TlsConfig,
};
pub use consumer::{
    Consumer, MembershipProbe, Message, PartitionLag, Revocation, UndecodableBatch,
};
pub use dead_letter::{DeadLetterConfig, DeadLetterProducer, DeadLetterReason, murmur2};
pub use error::{Error, Result};
pub use fetch::IsolationLevel;
pub use record::{CommittedOffset, PartitionKey, Record};
