#![doc = include_str!("../README.md")]

pub mod bridge_config;
pub mod env;
pub mod faulty_link;
pub mod forwarder;
pub mod http;
pub mod influx;
pub mod influx2;
pub mod kafka;
pub mod kafka_wire;
pub mod logs;
pub mod names;
pub mod netns;
pub mod process;
pub mod tls_front;

pub use env::{require, tansu_brokers};
pub use names::{free_port, unique};
