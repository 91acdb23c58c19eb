//! The result objects handed back to JavaScript, shaped by `glue.js`:
//! `ServiceResult` after a failure, and `FallbackResult`.

use crate::core::fallback::Fallback;
use crate::core::messages::user_friendly_message;

use super::env::Glue;
use super::errors::{ErrorClass, JsResult};
use super::js::{Js, Raw};
use super::json;

/// The thrown value as an `Error`: itself when it is one, else a new
/// `Error(message)`.
pub fn as_error(js: Js, thrown: Raw, message: &str) -> Raw {
  match js.is_error(thrown) {
    true => thrown,
    false => js.new_error(ErrorClass::Error, None, message),
  }
}

/// The `ServiceResult` of a failed operation, after the fallback chain
/// settled on `outcome`.
pub fn after_failure(
  js: Js,
  outcome: &Fallback,
  thrown: Raw,
  message: &str,
  default_value: Raw,
  attempts: Raw,
) -> JsResult<Raw> {
  let Some(fallback_type) = outcome.fallback_type() else {
    let error = as_error(js, thrown, message);
    return js.glue(Glue::Failed, &[error, js.string(message)?, attempts]);
  };
  let (data, job_id, stale) = match outcome {
    Fallback::Cache(hit) => (
      json::parse(js, Some(&hit.response))?,
      js.undefined(),
      hit.stale,
    ),
    Fallback::Default => (default_value, js.undefined(), false),
    Fallback::Queued(job_id) => (js.undefined(), js.string(job_id)?, false),
    Fallback::Skipped | Fallback::Failed => (js.undefined(), js.undefined(), false),
  };
  let message = js.string(user_friendly_message(Some(fallback_type)))?;
  js.glue(
    Glue::FellBack,
    &[
      data,
      message,
      js.string(fallback_type)?,
      job_id,
      js.boolean(stale)?,
      attempts,
    ],
  )
}

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
  js.glue(
    Glue::FallbackResult,
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

/// A skip decided before calling the operation (`skipThreshold`).
pub fn skipped_up_front(js: Js) -> JsResult<Raw> {
  let undefined = js.undefined();
  js.glue(
    Glue::FellBack,
    &[
      undefined,
      js.string(user_friendly_message(Some("skip")))?,
      js.string("skip")?,
      undefined,
      js.boolean(false)?,
      undefined,
      js.boolean(true)?,
    ],
  )
}
