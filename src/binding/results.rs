//! The result objects handed back to JavaScript: `ServiceResult` and
//! `FallbackResult`, shared by `executeWithFallback` and the building blocks.

use crate::core::fallback::Fallback;
use crate::core::messages::user_friendly_message;

use super::errors::JsResult;
use super::js::{Js, Raw};
use super::json;

/// `{ success: true, data, message, timestamp }`.
pub fn success(js: Js, data: Raw, message: &str) -> JsResult<Raw> {
  js.object_with(&[
    (c"success", js.boolean(true)?),
    (c"data", data),
    (c"message", js.string(message)?),
    (c"timestamp", js.date(js.now_ms())?),
  ])
}

/// The `ServiceResult` of a failed operation, after the fallback chain
/// settled on `outcome`.
pub fn after_failure(
  js: Js,
  outcome: &Fallback,
  thrown: Raw,
  message: &str,
  default_value: Raw,
) -> JsResult<Raw> {
  let Some(fallback_type) = outcome.fallback_type() else {
    let error = match js.is_error(thrown) {
      true => thrown,
      false => js.new_error(super::errors::ErrorClass::Error, None, message),
    };
    let metadata = js.object_with(&[
      (c"usedFallback", js.boolean(false)?),
      (c"originalError", js.string(message)?),
    ])?;
    return js.object_with(&[
      (c"success", js.boolean(false)?),
      (c"error", error),
      (c"message", js.string(message)?),
      (c"timestamp", js.date(js.now_ms())?),
      (c"metadata", metadata),
    ]);
  };
  let metadata = js.object_with(&[
    (c"usedFallback", js.boolean(true)?),
    (c"fallbackType", js.string(fallback_type)?),
  ])?;
  let data = match outcome {
    Fallback::Cache(hit) => {
      if hit.stale {
        js.set(metadata, c"stale", js.boolean(true)?)?;
      }
      json::parse(js, Some(&hit.response))?
    }
    Fallback::Default => default_value,
    Fallback::Queued(job_id) => {
      js.set(metadata, c"jobId", js.string(job_id)?)?;
      js.undefined()
    }
    Fallback::Skipped | Fallback::Failed => js.undefined(),
  };
  js.object_with(&[
    (c"success", js.boolean(true)?),
    (c"data", data),
    (
      c"message",
      js.string(user_friendly_message(Some(fallback_type)))?,
    ),
    (c"timestamp", js.date(js.now_ms())?),
    (c"metadata", metadata),
  ])
}

/// `{ success, data?, usedFallback, fallbackType, message }`; `data` is left
/// out when `None`. Every building block that succeeds did so by falling
/// back, so `usedFallback` is `success`.
pub fn fallback_result(
  js: Js,
  success: bool,
  data: Option<Raw>,
  fallback_type: &str,
  message: &str,
) -> JsResult<Raw> {
  let object = js.object()?;
  js.set(object, c"success", js.boolean(success)?)?;
  if let Some(data) = data {
    js.set(object, c"data", data)?;
  }
  js.set(object, c"usedFallback", js.boolean(success)?)?;
  js.set(object, c"fallbackType", js.string(fallback_type)?)?;
  js.set(object, c"message", js.string(message)?)?;
  Ok(object)
}
