//! An empty native call: the benchmark's measure of what crossing the N-API
//! boundary alone costs. Not part of the public API (index.js leaves it out).

use napi_derive::napi;

#[napi(js_name = "__emptyNativeCall")]
pub fn empty_native_call() {}
