//! The napi-rs layer: checks arguments, converts values, maps errors. All
//! behaviour lives in `crate::core`.

mod args;
mod blocks;
mod cache;
mod config;
mod empty_call;
mod env;
mod errors;
mod execute;
mod failures;
mod js;
mod json;
mod queue;
mod results;
mod retry;
mod service;
mod timers;
mod worker;
