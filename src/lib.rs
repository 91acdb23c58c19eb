#![deny(clippy::all)]
#![deny(clippy::undocumented_unsafe_blocks)]

//! fallback-mechanisms: a pure Rust core (`core`) under a thin napi-rs
//! binding (`binding`). Nothing in `core` knows about Node.js.

pub mod core;

// The unit tests exercise the core alone, without Node.js.
#[cfg(not(test))]
mod binding;
