#![doc = include_str!("../README.md")]

pub mod bridge_config;
pub mod env;
pub mod http;
pub mod influx;
pub mod kafka;
pub mod logs;
pub mod names;
pub mod process;

pub use env::{require, tansu_brokers};
pub use names::{free_port, unique};
