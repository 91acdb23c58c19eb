//! `executeWithFallback`: the operation is called from here, on the thread
//! the call arrives on, and its promise settles back into native code
//! through a trampoline made once per environment; the core's decision
//! function then picks the fallback. No thread hop on the way.

use napi::{sys, Env};
use napi_derive::napi;

use crate::core::fallback::{self, CacheKey, FallbackPlan, QueueRequest};
use crate::core::messages::MSG_SUCCESS;
use crate::core::stores::global;

use super::args;
use super::errors::{boundary, raw_boundary, Fault, JsResult};
use super::js::{Js, Kind, Raw};
use super::json;
use super::queue::{job_type, priority};
use super::results;

/// Chains the operation's promise to the two native settle callbacks. Made
/// once per environment; `call` is an external holding the `FallbackPlan`.
const SETTLE_SOURCE: &str = r#"(function (onFulfilled, onRejected) {
  'use strict';
  return function settle(promise, call, defaultValue) {
    return Promise.resolve(promise).then(
      function (value) { return onFulfilled(call, value); },
      function (error) { return onRejected(call, error, defaultValue); });
  };
})"#;

fn make_settle(js: Js) -> JsResult<Raw> {
  let factory = js.run_script(SETTLE_SOURCE)?;
  let on_fulfilled = js.native_function("onFulfilled", on_fulfilled)?;
  let on_rejected = js.native_function("onRejected", on_rejected)?;
  match js.call(factory, &[on_fulfilled, on_rejected])? {
    Ok(settle) => Ok(settle),
    Err(_) => Err(Fault::internal("could not make the settle trampoline")),
  }
}

unsafe extern "C" fn on_fulfilled(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  raw_boundary(env, |js| {
    let [call, value] = js.callback_args::<2>(info)?;
    // SAFETY: `call` is the external `execute_with_fallback` made for this
    // promise; the closure in the trampoline keeps it alive.
    let plan = unsafe { js.external_data::<FallbackPlan>(call)? };
    succeeded(js, plan, value)
  })
}

unsafe extern "C" fn on_rejected(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  raw_boundary(env, |js| {
    let [call, error, default_value] = js.callback_args::<3>(info)?;
    // SAFETY: as in `on_fulfilled`.
    let plan = unsafe { js.external_data::<FallbackPlan>(call)? };
    failed(js, plan, error, default_value)
  })
}

fn succeeded(js: Js, plan: &FallbackPlan, value: Raw) -> JsResult<Raw> {
  if plan.cache_key.is_some() && !js.is_nullish(value) {
    // A result JSON cannot hold is returned all the same, just not cached.
    let response = json::stringify(js, value, "result").unwrap_or_else(|_| {
      js.take_exception();
      None
    });
    fallback::on_success(plan, response, global(), js.now_ms());
  }
  results::success(js, value, MSG_SUCCESS)
}

fn failed(js: Js, plan: &FallbackPlan, thrown: Raw, default_value: Raw) -> JsResult<Raw> {
  let message = args::error_message(js, thrown);
  let outcome = fallback::on_failure(plan, &message, global(), js.now_ms());
  results::after_failure(js, &outcome, thrown, &message, default_value)
}

fn cache_key(js: Js, value: Raw) -> JsResult<Option<CacheKey>> {
  if js.kind(value) == Kind::Undefined {
    return Ok(None);
  }
  let key = args::object(js, value, "options.cacheKey")?;
  Ok(Some(CacheKey {
    prompt: args::string(js, js.get(key, c"prompt")?, "options.cacheKey.prompt")?,
    model_id: args::string(js, js.get(key, c"modelId")?, "options.cacheKey.modelId")?,
  }))
}

fn queue_request(js: Js, value: Raw) -> JsResult<Option<QueueRequest>> {
  if js.kind(value) == Kind::Undefined {
    return Ok(None);
  }
  let request = args::object(js, value, "options.queueOnFailure")?;
  Ok(Some(QueueRequest {
    job_type: job_type(js, js.get(request, c"type")?, "options.queueOnFailure.type")?,
    // Taken now, so the job holds the request as it was made.
    payload: json::stringify_payload(
      js,
      js.get(request, c"payload")?,
      "options.queueOnFailure.payload",
    )?,
    priority: priority(
      js,
      js.get(request, c"priority")?,
      "options.queueOnFailure.priority",
    )?,
  }))
}

/// Checks the arguments and reads `options` into a plan; returns the plan
/// and `defaultValue` (which stays a JavaScript value).
fn read_plan(js: Js, operation: Raw, options: Raw) -> JsResult<(FallbackPlan, Raw)> {
  args::function(js, operation, "operation")?;
  let options = args::object(js, options, "options")?;
  let name = js.get(options, c"operationName")?;
  let operation_name = args::string(js, name, "options.operationName")?;
  if operation_name.is_empty() {
    return Err(args::value_error(
      js,
      "options.operationName",
      "a non-empty string",
      name,
    ));
  }
  let default_value = js.get(options, c"defaultValue")?;
  let plan = FallbackPlan {
    operation_name,
    // An empty userId counts as none, as it did before.
    user_id: args::optional_string(js, js.get(options, c"userId")?, "options.userId")?
      .filter(|id| !id.is_empty()),
    cache_key: cache_key(js, js.get(options, c"cacheKey")?)?,
    allow_skip: args::optional_bool(js, js.get(options, c"allowSkip")?, "options.allowSkip")?
      .unwrap_or(false),
    queue: queue_request(js, js.get(options, c"queueOnFailure")?)?,
    has_default: js.kind(default_value) != Kind::Undefined,
    service: args::optional_string(js, js.get(options, c"service")?, "options.service")?,
  };
  Ok((plan, default_value))
}

/// A promise, or any object with a callable `then` (as `await` treats it).
/// A `then` getter that throws makes the call fail with what it threw.
fn thenable(js: Js, value: Raw) -> Result<bool, Raw> {
  if js.is_promise(value) {
    return Ok(true);
  }
  if !matches!(js.kind(value), Kind::Object | Kind::Function) {
    return Ok(false);
  }
  match js.get(value, c"then") {
    Ok(then) => Ok(js.kind(then) == Kind::Function),
    Err(_) => Err(js.take_exception().unwrap_or_else(|| js.undefined())),
  }
}

/// Runs `operation` and resolves a `ServiceResult`: the operation's value on
/// success, else the first fallback that applies (cache, default, queue,
/// skip). Rejects only for bad arguments, with a `TypeError`.
#[napi]
pub fn execute_with_fallback(env: Env, operation: Raw, options: Raw) -> napi::Result<Raw> {
  boundary(env, |js| {
    let (plan, default_value) = match read_plan(js, operation, options) {
      Ok(read) => read,
      Err(fault) => return js.rejected(fault.into_value(js)),
    };
    let value = match js.call(operation, &[])? {
      Ok(value) => value,
      Err(thrown) => return js.resolved(failed(js, &plan, thrown, default_value)?),
    };
    match thenable(js, value) {
      Ok(true) => {}
      Ok(false) => return js.resolved(succeeded(js, &plan, value)?),
      Err(thrown) => return js.resolved(failed(js, &plan, thrown, default_value)?),
    }
    let settle = js.settle_function(make_settle)?;
    let call = js.external(plan)?;
    match js.call(settle, &[value, call, default_value])? {
      Ok(promise) => Ok(promise),
      Err(thrown) => js.rejected(thrown),
    }
  })
}
