//! The napi-rs layer: checks arguments, converts values, maps errors. All
//! behaviour lives in `crate::core`; `raw` is the one module that calls
//! N-API directly.

mod args;
mod attempts;
mod blocks;
mod boundary;
mod cache;
mod chain;
mod config;
mod cooldowns;
mod empty_call;
mod error_facts;
mod errors;
mod execute;
mod failures;
mod guards;
mod js_fn;
mod json;
mod names;
mod notices;
mod numbers;
mod queue;
mod raw;
mod records;
mod relay;
mod retry;
mod service;
mod status;
mod store_call;
mod worker;
