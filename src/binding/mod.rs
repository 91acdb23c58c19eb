//! The napi-rs layer.
