//! `FallbackResult`, the building blocks' result, made by `lib/shapes.js`.

use super::errors::JsResult;
use super::names::Shape;
use super::raw::{Js, Raw};

/// `{ success, data?, usedFallback, fallbackType, message, metadata? }`;
/// `data` is left out when `None`. Every building block that succeeds did
/// so by falling back, so `usedFallback` is `success`.
pub fn fallback_result(
  js: Js,
  success: bool,
  data: Option<Raw>,
  fallback_type: &str,
  message: &str,
  stale: bool,
) -> JsResult<Raw> {
  js.shape(
    Shape::FallbackResult,
    &[
      js.boolean(success)?,
      js.boolean(data.is_some())?,
      data.unwrap_or_else(|| js.undefined()),
      js.string(fallback_type)?,
      js.string(message)?,
      js.boolean(stale)?,
    ],
  )
}

/// Called once per environment by `index.js` with `lib/shapes.js`.
#[napi_derive::napi]
pub fn register_shapes(env: napi::Env, shapes: Raw) -> napi::Result<()> {
  super::errors::boundary(env, |js| js.register_shapes(shapes))
}
