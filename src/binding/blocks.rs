//! The building blocks applications also call directly:
//! `fallbackToCachedAI`, `skipFailedIntegration`, `queueForLater`,
//! `getUserFriendlyMessage`.

use napi::Env;
use napi_derive::napi;

use crate::core::fallback::{self, CacheKey, Fallback};
use crate::core::messages::{
  queued_message, skipped_message, user_friendly_message, MSG_CACHED_AI, MSG_DEFAULT_AI,
  MSG_NO_CACHE,
};
use crate::core::queue::NewJob;
use crate::core::singletons::global;

use super::args;
use super::errors::{boundary, Fault, JsResult};
use super::js::{Js, Kind, Raw};
use super::json;
use super::queue::{job_type, max_retries, priority};
use super::results::fallback_result;

/// The friendly message for a fallback type; the error is accepted for
/// compatibility and never shown.
#[napi]
pub fn get_user_friendly_message(
  env: Env,
  _error: Raw,
  fallback_type: Raw,
) -> napi::Result<&'static str> {
  boundary(env, |js| {
    let kind = match js.kind(fallback_type) {
      Kind::String => Some(js.read_string(fallback_type)?),
      _ => None,
    };
    Ok(user_friendly_message(kind.as_deref()))
  })
}

fn cached_ai(js: Js, prompt: Raw, model_id: Raw, default_value: Raw) -> JsResult<Raw> {
  let key = CacheKey {
    prompt: args::string(js, prompt, "prompt")?,
    model_id: args::string(js, model_id, "modelId")?,
  };
  let has_default = js.kind(default_value) != Kind::Undefined;
  match fallback::cached_ai(global(), &key, has_default, js.now_ms()) {
    Fallback::Cache(hit) => {
      let data = json::parse(js, Some(&hit.response))?;
      fallback_result(js, true, Some(data), "cache", MSG_CACHED_AI, hit.stale)
    }
    Fallback::Default => fallback_result(
      js,
      true,
      Some(default_value),
      "default",
      MSG_DEFAULT_AI,
      false,
    ),
    _ => fallback_result(js, false, None, "cache", MSG_NO_CACHE, false),
  }
}

/// A cached AI response (stale allowed), else the default, else
/// `success: false`.
#[napi(js_name = "fallbackToCachedAI")]
pub fn fallback_to_cached_ai(
  env: Env,
  prompt: Raw,
  model_id: Raw,
  default_value: Raw,
) -> napi::Result<Raw> {
  boundary(env, |js| {
    match cached_ai(js, prompt, model_id, default_value) {
      Ok(result) => js.resolved(result),
      Err(Fault::Pending) => Err(Fault::Pending),
      Err(fault) => js.rejected(fault.into_value(js)),
    }
  })
}

/// Records the failure on the shared failure manager and reports the step
/// as skipped.
#[napi]
pub fn skip_failed_integration(
  env: Env,
  service: Raw,
  operation: Raw,
  error: Raw,
) -> napi::Result<Raw> {
  boundary(env, |js| {
    let service = args::string(js, service, "service")?;
    let operation = args::string(js, operation, "operation")?;
    let message = args::error_message(js, error);
    let reason =
      fallback::skip_failed_integration(global(), &service, &operation, &message, js.now_ms());
    let message = skipped_message(&service, &reason);
    fallback_result(js, true, Some(js.null()), "skip", &message, false)
  })
}

/// Enqueues a job on the shared queue and reports it as queued.
#[napi]
pub fn queue_for_later(
  env: Env,
  job_type_value: Raw,
  operation: Raw,
  payload: Raw,
  user_id: Raw,
  priority_value: Raw,
  max_retries_value: Raw,
) -> napi::Result<Raw> {
  boundary(env, |js| {
    let job = NewJob {
      job_type: job_type(js, job_type_value, "type")?,
      operation: args::string(js, operation, "operation")?,
      payload: json::stringify_payload(js, payload, "payload")?,
      user_id: args::string(js, user_id, "userId")?,
      priority: priority(js, priority_value, "priority")?,
      retry_count: 0,
      max_retries: max_retries(js, max_retries_value, "maxRetries")?,
      next_retry_at: None,
    };
    let id = fallback::queue_for_later(global(), job, js.now_ms()).map_err(Fault::from)?;
    let data = js.string(&id)?;
    fallback_result(js, true, Some(data), "queue", &queued_message(&id), false)
  })
}
