//! Arbitrary bytes as a broker's answer on our own group connection: frame lengths,
//! correlation ids, response headers and the bodies of every API we send, at every
//! version we may negotiate. A response or a typed error, never a panic or a garbage-sized
//! allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kinflux_kafka::fuzzing::parse_stream(data);
});
