//! `executeWithFallback`: the operation is called from here, on the thread
//! the call arrives on; a returned promise settles through `glue.js`'s
//! `settle`, which stores a success in the cache (when there is a key) and
//! hands a failure back to `on_rejected` here, where the core's decision
//! function picks the fallback. No thread hop, no function made per call.

use napi::Env;
use napi_derive::napi;

use crate::core::cache::EntryText;
use crate::core::fallback::{self, CacheKey, FallbackPlan, QueueRequest};
use crate::core::queue::{JobPriority, JobType};
use crate::core::retry::{Jitter, RetryPolicy};
use crate::core::singletons::global;

use super::args;
use super::env::{Glue, Prop, FALLBACK_OPTIONS};
use super::errors::{boundary, callback, Fault, JsResult};
use super::js::{Js, Kind, Raw};
use super::json;
use super::queue::{job_type, priority};
use super::results;

/// `options` checked, with its values still JavaScript values: strings are
/// converted only on the paths that need them.
struct CheckedOptions {
  operation_name: Raw,
  user_id: Raw,
  cache_key: Option<(Raw, Raw)>,
  allow_skip: bool,
  queue: Option<(JobType, Raw, JobPriority)>,
  default_value: Raw,
  service: Raw,
  /// `skipThreshold`: with `allowSkip`, skip without calling once the
  /// service has failed this often inside the window.
  skip_threshold: Option<f64>,
  /// `retry`: the policy and `retryIf`.
  retry: Option<(RetryPolicy, Raw)>,
  /// `timeoutMs`: each attempt's time limit.
  timeout_ms: Option<u64>,
  /// `signal`: the caller's AbortSignal (undefined when none).
  signal: Raw,
  /// `dedupe`: overlapping calls with the same cache key share one call.
  dedupe: bool,
}

fn optional_string_value(js: Js, value: Raw, name: &str) -> JsResult<Raw> {
  match js.kind(value) {
    Kind::Undefined | Kind::String => Ok(value),
    _ => Err(args::type_error(js, name, "of type string", value)),
  }
}

fn string_value(js: Js, value: Raw, name: &str) -> JsResult<Raw> {
  match js.kind(value) {
    Kind::String => Ok(value),
    _ => Err(args::type_error(js, name, "of type string", value)),
  }
}

fn retry_option(js: Js, value: Raw) -> JsResult<Option<(RetryPolicy, Raw)>> {
  if js.kind(value) == Kind::Undefined {
    return Ok(None);
  }
  let retry = args::object(js, value, "options.retry")?;
  let defaults = RetryPolicy::default();
  let field = |name| js.get_name(retry, name);
  let max = args::MAX_SAFE_INTEGER;
  let jitter = field(Prop::Jitter)?;
  let jitter = match js.kind(jitter) {
    Kind::Undefined => defaults.jitter,
    Kind::Boolean if js.read_bool(jitter) => Jitter::Decorrelated,
    Kind::Boolean => Jitter::None,
    _ => match args::one_of(
      js,
      jitter,
      "options.retry.jitter",
      &["decorrelated", "none"],
      |t| t,
    )? {
      "none" => Jitter::None,
      _ => Jitter::Decorrelated,
    },
  };
  let retry_if = field(Prop::RetryIf)?;
  if js.kind(retry_if) != Kind::Undefined {
    args::function(js, retry_if, "options.retry.retryIf")?;
  }
  let whole = |name, path, max: u64, default: u64| -> JsResult<u64> {
    Ok(args::optional_integer(js, field(name)?, path, 0, max)?.unwrap_or(default))
  };
  let policy = RetryPolicy {
    max_retries: whole(
      Prop::MaxRetries,
      "options.retry.maxRetries",
      u32::MAX as u64,
      defaults.max_retries as u64,
    )? as u32,
    base_delay_ms: whole(
      Prop::BaseDelayMs,
      "options.retry.baseDelayMs",
      max,
      defaults.base_delay_ms,
    )?,
    max_delay_ms: whole(
      Prop::MaxDelayMs,
      "options.retry.maxDelayMs",
      max,
      defaults.max_delay_ms,
    )?,
    jitter,
  };
  Ok(Some((policy, retry_if)))
}

/// `signal`: undefined, or an AbortSignal (anything with `aborted` and
/// `addEventListener`, as AbortSignal-likes from other realms have).
fn abort_signal(js: Js, value: Raw) -> JsResult<Raw> {
  if js.kind(value) == Kind::Undefined {
    return Ok(value);
  }
  let looks_right = js.kind(value) == Kind::Object
    && js.kind(js.get(value, c"aborted")?) == Kind::Boolean
    && js.kind(js.get(value, c"addEventListener")?) == Kind::Function;
  match looks_right {
    true => Ok(value),
    false => Err(args::type_error(
      js,
      "options.signal",
      "an instance of AbortSignal",
      value,
    )),
  }
}

/// Checks `options`, whose `FALLBACK_OPTIONS` were read into `fields`.
fn check_options(js: Js, options: Raw, fields: &[Raw]) -> JsResult<CheckedOptions> {
  args::object(js, options, "options")?;
  let field = |name: Prop| -> JsResult<Raw> {
    let index = FALLBACK_OPTIONS.iter().position(|p| *p == name);
    Ok(
      index
        .and_then(|i| fields.get(i).copied())
        .unwrap_or_else(|| js.undefined()),
    )
  };
  let operation_name = string_value(js, field(Prop::OperationName)?, "options.operationName")?;
  if js.string_length(operation_name) == 0 {
    return Err(args::value_error(
      js,
      "options.operationName",
      "a non-empty string",
      operation_name,
    ));
  }
  let cache_key = match js.kind(field(Prop::CacheKey)?) {
    Kind::Undefined => None,
    _ => {
      let key = args::object(js, field(Prop::CacheKey)?, "options.cacheKey")?;
      Some((
        string_value(
          js,
          js.get_name(key, Prop::Prompt)?,
          "options.cacheKey.prompt",
        )?,
        string_value(
          js,
          js.get_name(key, Prop::ModelId)?,
          "options.cacheKey.modelId",
        )?,
      ))
    }
  };
  let queue = match js.kind(field(Prop::QueueOnFailure)?) {
    Kind::Undefined => None,
    _ => {
      let request = args::object(js, field(Prop::QueueOnFailure)?, "options.queueOnFailure")?;
      Some((
        job_type(
          js,
          js.get_name(request, Prop::Type)?,
          "options.queueOnFailure.type",
        )?,
        js.get_name(request, Prop::Payload)?,
        priority(
          js,
          js.get_name(request, Prop::Priority)?,
          "options.queueOnFailure.priority",
        )?,
      ))
    }
  };
  Ok(CheckedOptions {
    operation_name,
    user_id: optional_string_value(js, field(Prop::UserId)?, "options.userId")?,
    cache_key,
    allow_skip: args::optional_bool(js, field(Prop::AllowSkip)?, "options.allowSkip")?
      .unwrap_or(false),
    queue,
    default_value: field(Prop::DefaultValue)?,
    service: optional_string_value(js, field(Prop::Service)?, "options.service")?,
    skip_threshold: args::optional_non_negative(
      js,
      field(Prop::SkipThreshold)?,
      "options.skipThreshold",
    )?,
    retry: retry_option(js, field(Prop::Retry)?)?,
    timeout_ms: args::optional_integer(
      js,
      field(Prop::TimeoutMs)?,
      "options.timeoutMs",
      1,
      args::MAX_SAFE_INTEGER,
    )?,
    signal: abort_signal(js, field(Prop::Signal)?)?,
    dedupe: args::optional_bool(js, field(Prop::Dedupe)?, "options.dedupe")?.unwrap_or(false),
  })
}

/// `queueOnFailure`'s type and priority as one number for the trip through
/// JavaScript (-1: none).
fn queue_code(queue: Option<(JobType, Raw, JobPriority)>) -> f64 {
  match queue {
    Some((job_type, _, priority)) => {
      (job_type as usize * JobPriority::ALL.len() + priority as usize) as f64
    }
    None => -1.0,
  }
}

fn queue_of_code(code: f64, payload: Raw) -> Option<(JobType, Raw, JobPriority)> {
  if code.is_nan() || code < 0.0 {
    return None;
  }
  let code = code as usize;
  let job_type = *JobType::ALL.get(code / JobPriority::ALL.len())?;
  let priority = *JobPriority::ALL.get(code % JobPriority::ALL.len())?;
  Some((job_type, payload, priority))
}

/// What `settle` carries for the failure path, after the promise.
fn settle_args(js: Js, checked: &CheckedOptions, payload: Raw, tries: Raw) -> JsResult<[Raw; 10]> {
  let (prompt, model_id) = checked
    .cache_key
    .unwrap_or((js.undefined(), js.undefined()));
  Ok([
    prompt,
    model_id,
    checked.default_value,
    checked.operation_name,
    checked.user_id,
    checked.service,
    js.boolean(checked.allow_skip)?,
    js.number(queue_code(checked.queue))?,
    payload,
    tries,
  ])
}

/// The inverse of `settle_args`; the values were checked when the call was
/// made.
fn checked_of_args(js: Js, args: &[Raw; 9]) -> CheckedOptions {
  let [prompt, model_id, default_value, operation_name, user_id, service, allow_skip, queue, payload] =
    *args;
  CheckedOptions {
    operation_name,
    user_id,
    cache_key: (js.kind(prompt) == Kind::String).then_some((prompt, model_id)),
    allow_skip: js.read_bool(allow_skip),
    queue: queue_of_code(js.read_number(queue), payload),
    default_value,
    service,
    // Acted on before the call.
    skip_threshold: None,
    retry: None,
    timeout_ms: None,
    signal: js.undefined(),
    dedupe: false,
  }
}

fn optional_text(js: Js, value: Raw) -> JsResult<Option<String>> {
  match js.kind(value) {
    Kind::String => js.read_string(value).map(Some),
    _ => Ok(None),
  }
}

/// The core's plan, with `payload` the JSON text taken when the call was made.
fn plan_of(js: Js, options: &CheckedOptions, payload: Raw) -> JsResult<FallbackPlan> {
  let cache_key = match options.cache_key {
    Some((prompt, model_id)) => Some(CacheKey {
      prompt: js.read_string(prompt)?,
      model_id: js.read_string(model_id)?,
    }),
    None => None,
  };
  let queue = match options.queue {
    Some((job_type, _, priority)) => Some(QueueRequest {
      job_type,
      payload: optional_text(js, payload)?.map(Into::into),
      priority,
    }),
    None => None,
  };
  Ok(FallbackPlan {
    operation_name: js.read_string(options.operation_name)?,
    // An empty userId counts as none, as it did before.
    user_id: optional_text(js, options.user_id)?.filter(|id| !id.is_empty()),
    cache_key,
    allow_skip: options.allow_skip,
    queue,
    has_default: js.kind(options.default_value) != Kind::Undefined,
    service: optional_text(js, options.service)?,
  })
}

/// The failure path: the first fallback that applies, as a `ServiceResult`.
fn failed(
  js: Js,
  plan: &FallbackPlan,
  thrown: Raw,
  default_value: Raw,
  attempts: Raw,
) -> JsResult<Raw> {
  let message = args::error_message(js, thrown);
  let outcome = fallback::on_failure(plan, &message, global(), js.now_ms());
  results::after_failure(js, &outcome, thrown, &message, default_value, attempts)
}

/// A success: cached under the key, when there is one, and shaped.
fn succeeded(js: Js, options: &CheckedOptions, value: Raw) -> JsResult<Raw> {
  if let Some((prompt, model_id)) = options.cache_key {
    if !js.is_nullish(value) {
      match json::stringify_to_js(js, value, "result") {
        Ok(Some(text)) => store(js, prompt, model_id, text, js.now_ms())?,
        Ok(None) => {}
        // A result JSON cannot hold is returned all the same, just not cached.
        Err(_) => {
          js.take_exception();
        }
      }
    }
  }
  js.glue(Glue::Succeeded, &[value, js.undefined()])
}

fn store(js: Js, prompt: Raw, model_id: Raw, json: Raw, now: u64) -> JsResult<()> {
  let mut text = String::new();
  js.read_string_into(prompt, &mut text)?;
  let prompt_len = text.len();
  js.read_string_into(json, &mut text)?;
  let entry = EntryText::joined(text, prompt_len).ok_or_else(|| Fault::internal("prompt split"))?;
  fallback::on_success(global(), entry, &js.read_string(model_id)?, now);
  Ok(())
}

callback!(
  /// `storeSuccess(prompt, modelId, jsonText, now)`, called by `settle`.
  fn store_success(js, [prompt, model_id, text, now]) {
    store(js, prompt, model_id, text, js.read_number(now) as u64)?;
    Ok(js.undefined())
  }
);

callback!(
  /// `onRejected(error, ...settle_args)`, called by `settle` when the
  /// operation's promise rejects.
  fn on_rejected(js, [error, a, b, c, d, e, f, g, h, payload, attempts]) {
    let checked = checked_of_args(js, &[a, b, c, d, e, f, g, h, payload]);
    let plan = plan_of(js, &checked, payload)?;
    failed(js, &plan, error, checked.default_value, attempts)
  }
);

/// Chains `promise` to the cache (on success) and the fallback chain (on
/// failure), through `glue.js`'s `settle`.
fn settle(
  js: Js,
  checked: &CheckedOptions,
  promise: Raw,
  payload: Raw,
  tries: Raw,
) -> JsResult<Raw> {
  let [a, b, c, d, e, f, g, h, i, j] = settle_args(js, checked, payload, tries)?;
  js.glue(Glue::Settle, &[promise, a, b, c, d, e, f, g, h, i, j])
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
  match js.get_name(value, Prop::Then) {
    Ok(then) => Ok(js.kind(then) == Kind::Function),
    Err(_) => Err(js.take_exception().unwrap_or_else(|| js.undefined())),
  }
}

/// `executeWithFallback` as the package exports it: made once per
/// environment by `glue.js`, which reads the options in JavaScript (cheap
/// there, costly from native code) and hands them to `execute_checked`.
/// Runs `operation` and resolves a `ServiceResult`: the operation's value on
/// success, else the first fallback that applies (cache, default, queue,
/// skip). Rejects only for bad arguments, with a `TypeError`.
#[napi(js_name = "__executeWithFallbackEntry")]
pub fn execute_with_fallback_entry(env: Env) -> napi::Result<Raw> {
  boundary(env, |js| js.glue_value(Glue::ExecuteWithFallback))
}

callback!(
  /// `executeChecked(operation, options, ...FALLBACK_OPTIONS values)`,
  /// called by the exported `executeWithFallback`.
  fn execute_checked(js, [operation, options, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11]) {
    execute(js, operation, options, &[f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11])
  }
);

fn execute(js: Js, operation: Raw, options: Raw, fields: &[Raw]) -> JsResult<Raw> {
  let checked = match args::function(js, operation, "operation")
    .and_then(|_| check_options(js, options, fields))
  {
    Ok(checked) => checked,
    Err(fault) => return js.rejected(fault.into_value(js)),
  };
  // A call with its own signal decides its own fate: it neither joins nor
  // hosts a shared call.
  let shared_key = checked
    .cache_key
    .filter(|_| checked.dedupe && js.kind(checked.signal) == Kind::Undefined);
  if let Some((prompt, model_id)) = shared_key {
    let running = js.glue(Glue::Inflight, &[prompt, model_id])?;
    if js.kind(running) != Kind::Undefined {
      return Ok(running);
    }
  }
  let promise = run(js, operation, &checked)?;
  match shared_key {
    Some((prompt, model_id)) => js.glue(Glue::Track, &[prompt, model_id, promise]),
    None => Ok(promise),
  }
}

/// One call, its arguments checked.
fn run(js: Js, operation: Raw, checked: &CheckedOptions) -> JsResult<Raw> {
  // Taken now, so a queued job holds the request as it was made.
  let payload = match checked.queue {
    Some((_, payload, _)) if js.kind(payload) != Kind::Undefined => {
      match json::stringify_to_js(js, payload, "options.queueOnFailure.payload") {
        Ok(Some(text)) => text,
        Ok(None) => {
          let fault = json::not_json_value(js, payload, "options.queueOnFailure.payload");
          return js.rejected(fault.into_value(js));
        }
        Err(fault) => return js.rejected(fault.into_value(js)),
      }
    }
    _ => js.undefined(),
  };
  if let (true, Some(threshold)) = (checked.allow_skip, checked.skip_threshold) {
    let plan = plan_of(js, checked, payload)?;
    if fallback::skip_up_front(&plan, threshold, global(), js.now_ms()) {
      return js.resolved(results::skipped_up_front(js)?);
    }
  }
  let uses_attempts = checked.retry.is_some()
    || checked.timeout_ms.is_some()
    || js.kind(checked.signal) != Kind::Undefined;
  if uses_attempts {
    // Every attempt goes through the glue's loop; `tries` counts them.
    let (policy, retry_if) = checked.retry.unwrap_or((
      RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
      },
      js.undefined(),
    ));
    let tries = js.object()?;
    js.define(tries, "attempts", js.number(0.0)?)?;
    let settle_with = settle_args(js, checked, payload, tries)?;
    return js.glue(
      Glue::Attempts,
      &[
        operation,
        js.number(policy.max_retries as f64)?,
        js.number(policy.base_delay_ms as f64)?,
        js.number(policy.max_delay_ms as f64)?,
        js.boolean(policy.jitter == Jitter::Decorrelated)?,
        retry_if,
        tries,
        js.number(checked.timeout_ms.map_or(-1.0, |ms| ms as f64))?,
        checked.signal,
        js.array(&settle_with, |value| Ok(*value))?,
      ],
    );
  }
  // A synchronous throw, or a `then` getter that throws, fails at once.
  let failed_now = |thrown| -> JsResult<Raw> {
    let plan = plan_of(js, checked, payload)?;
    js.resolved(failed(
      js,
      &plan,
      thrown,
      checked.default_value,
      js.undefined(),
    )?)
  };
  let value = match js.call(operation, &[])? {
    Ok(value) => value,
    Err(thrown) => return failed_now(thrown),
  };
  match thenable(js, value) {
    Ok(true) => {}
    Ok(false) => return js.resolved(succeeded(js, checked, value)?),
    Err(thrown) => return failed_now(thrown),
  }
  settle(js, checked, value, payload, js.undefined())
}
