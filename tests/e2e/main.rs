//! End-to-end tests: real `kelemetry` processes on loopback, real RocksDB directories,
//! real HTTP. Built as integration tests of the `kelemetry` package so that the binary
//! under test is the one this build produced.

mod auth;
mod browser;
mod chaos;
mod cluster;
mod custom_resources;
mod damaged_data;
mod deep_tree;
mod demo;
mod disk;
mod grpc;
mod helm;
mod jaeger;
mod lifecycle;
mod limits;
mod membership;
mod otlp;
mod prestop;
mod real_data;
mod secrets;
mod simulated;
mod support;
mod tls;
mod traces;
mod watch_replay;
