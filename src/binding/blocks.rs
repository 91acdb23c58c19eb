//! The building blocks applications also call directly:
//! `fallbackToCachedAI`, `skipFailedIntegration`, `queueForLater`,
//! `getUserFriendlyMessage`. Each returns its data; `lib/blocks.js` makes the
//! `FallbackResult`.

use napi::Env;
use napi_derive::napi;

use crate::core::fallback::{self, CacheKey, Fallback};
use crate::core::messages::{
  queued_message, skipped_message, user_friendly_message, MSG_CACHED_AI, MSG_DEFAULT_AI,
  MSG_NO_CACHE, MSG_SUCCESS,
};
use crate::core::queue::NewJob;
use crate::core::singletons::global;

use super::args;
use super::boundary::boundary;
use super::errors::Fault;
use super::json;
use super::queue::{job_type, max_retries, priority};
use super::raw::{Kind, Raw};

/// The friendly message for a fallback type; the error is accepted for
/// compatibility and never shown.
#[napi]
pub fn get_user_friendly_message(
  env: &Env,
  _error: Raw<'_>,
  fallback_type: Raw<'_>,
) -> napi::Result<&'static str> {
  boundary(env, |js| {
    let kind = match js.kind(fallback_type) {
      Kind::String => Some(js.read_string(fallback_type)?),
      _ => None,
    };
    Ok(user_friendly_message(kind.as_deref()))
  })
}

/// The message of a call that succeeded (the core's message table is the
/// one place for every message).
#[napi]
pub fn success_message() -> &'static str {
  MSG_SUCCESS
}

/// What `fallbackToCachedAI` found, as JSON: `{ fallbackType, message,
/// stale?, response? }` (`response` the cached answer); `fallbackType` is
/// `'cache'` without a response when there is neither a hit nor a default.
#[napi(js_name = "cachedAnswer")]
pub fn cached_answer(
  env: &Env,
  prompt: Raw<'_>,
  model_id: Raw<'_>,
  has_default: bool,
) -> napi::Result<String> {
  boundary(env, |js| {
    let (prompt, model_id) = args::cache_key(js, prompt, model_id)?;
    let key = CacheKey { prompt, model_id };
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    Ok(
      match fallback::cached_ai(global(), &key, has_default, js.now_ms()) {
        Fallback::Cache(hit) => format!(
          "{{\"fallbackType\":\"cache\",\"message\":{},\"stale\":{},\"response\":{}}}",
          quoted(MSG_CACHED_AI),
          hit.stale,
          hit.response
        ),
        Fallback::Default => format!(
          "{{\"fallbackType\":\"default\",\"message\":{}}}",
          quoted(MSG_DEFAULT_AI)
        ),
        _ => format!(
          "{{\"fallbackType\":\"cache\",\"message\":{}}}",
          quoted(MSG_NO_CACHE)
        ),
      },
    )
  })
}

/// Records the failure on the shared failure manager; returns the skip
/// message.
#[napi(js_name = "recordSkip")]
pub fn record_skip(
  env: &Env,
  service: Raw<'_>,
  operation: Raw<'_>,
  error: Raw<'_>,
) -> napi::Result<String> {
  boundary(env, |js| {
    let service = args::identifier(js, service, "service")?;
    let operation = args::identifier(js, operation, "operation")?;
    let message = args::error_message(js, error);
    let reason =
      fallback::skip_failed_integration(global(), &service, &operation, &message, js.now_ms());
    Ok(skipped_message(&service, &reason))
  })
}

/// Enqueues a job on the shared queue; returns `[jobId, message]`.
#[napi(js_name = "queueJob")]
pub fn queue_job(
  env: &Env,
  job_type_value: Raw<'_>,
  operation: Raw<'_>,
  payload: Raw<'_>,
  user_id: Raw<'_>,
  priority_value: Raw<'_>,
  max_retries_value: Raw<'_>,
) -> napi::Result<Vec<String>> {
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
    Ok(vec![id.to_string(), queued_message(&id)])
  })
}
