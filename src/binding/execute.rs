//! `executeWithFallback`'s native half; `lib/execute.js` is the other. One
//! call goes one way at each step, and its options cross once, as the one
//! object `readOptions` (lib/plain-call.js) made:
//!
//! 1. `startFallbackCall(operation, options, read)` checks them. A plain
//!    call gets `null` back and JavaScript runs the operation; a plain call
//!    with a queue payload gets the payload's JSON text, taken now; any
//!    other gets a `FallbackCall` that keeps its checked plan (the core's
//!    `FallbackPlan`), the up-front skip decision, whether the call is
//!    shared (`dedupe`), and the attempt loop for `retry`/`timeoutMs`/
//!    `signal`.
//! 2. After a success, `cacheResult` stores it under the cache key.
//! 3. After a failure, `FallbackCall.failed(error, now)` runs the core's
//!    decision on the plan it kept; a call that started plain hands its
//!    options over now instead (`fallbackAfterFailure(read, error, now)`).
//!    The outcome comes back as JSON for JavaScript to shape.

use std::sync::Arc;

use napi::bindgen_prelude::{Either, PromiseRaw};
use napi::Env;
use napi_derive::napi;

use crate::core::attempts::Schedule;
use crate::core::cache::EntryText;
use crate::core::clock;
use crate::core::fallback::{self, CacheKey, FailureOutcome, Fallback, FallbackPlan, QueueRequest};
use crate::core::limits;
use crate::core::messages::user_friendly_message;
use crate::core::retry::{Jitter, RetryPolicy};
use crate::core::singletons::global;

use super::args;
use super::attempts::{AbortFn, AttemptFn, AttemptsOutcome, PendingAttempts};
use super::boundary::boundary;
use super::errors::{Fault, JsResult};
use super::json;
use super::names::Prop;
use super::queue::{job_type, priority};
use super::raw::{Js, Kind, Raw};
use super::store_call::on_store;

fn optional_string_value<'env>(js: Js<'env>, value: Raw<'env>, name: &str) -> JsResult<Raw<'env>> {
  match js.kind(value) {
    Kind::Undefined | Kind::String => Ok(value),
    _ => Err(args::type_error(js, name, "of type string", value)),
  }
}

fn string_value<'env>(js: Js<'env>, value: Raw<'env>, name: &str) -> JsResult<Raw<'env>> {
  match js.kind(value) {
    Kind::String => Ok(value),
    _ => Err(args::type_error(js, name, "of type string", value)),
  }
}

fn retry_option(js: Js<'_>, value: Raw<'_>) -> JsResult<Option<RetryPolicy>> {
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
  Ok(Some(RetryPolicy {
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
    max_retry_after_ms: whole(
      Prop::MaxRetryAfterMs,
      "options.retry.maxRetryAfterMs",
      max,
      defaults.max_retry_after_ms,
    )?,
  }))
}

/// `signal`: undefined, or an AbortSignal (anything with `aborted` and
/// `addEventListener`, as AbortSignal-likes from other realms have).
fn abort_signal(js: Js<'_>, value: Raw<'_>) -> JsResult<bool> {
  if js.kind(value) == Kind::Undefined {
    return Ok(false);
  }
  let looks_right = js.kind(value) == Kind::Object
    && js.kind(js.get_name(value, Prop::Aborted)?) == Kind::Boolean
    && js.kind(js.get_name(value, Prop::AddEventListener)?) == Kind::Function;
  match looks_right {
    true => Ok(true),
    false => Err(args::type_error(
      js,
      "options.signal",
      "an instance of AbortSignal",
      value,
    )),
  }
}

/// `executeWithFallback`'s options as `lib/plain-call.js` read them once
/// (`readOptions`): that one object crosses, and is read here field by
/// field, once.
struct CallOptions<'env> {
  operation_name: Raw<'env>,
  user_id: Raw<'env>,
  cache_key: Raw<'env>,
  prompt: Raw<'env>,
  model_id: Raw<'env>,
  allow_skip: Raw<'env>,
  queue_on_failure: Raw<'env>,
  queue_type: Raw<'env>,
  payload: Raw<'env>,
  priority: Raw<'env>,
  default_value: Raw<'env>,
  service: Raw<'env>,
  skip_threshold: Raw<'env>,
  retry: Raw<'env>,
  timeout_ms: Raw<'env>,
  signal: Raw<'env>,
  dedupe: Raw<'env>,
}

impl<'env> CallOptions<'env> {
  /// Every option, for the checks at the start.
  fn read(js: Js<'env>, read: Raw<'env>) -> JsResult<Self> {
    let [cache_key, queue_type, payload, priority, skip_threshold, retry, timeout_ms, signal, dedupe] =
      js.get_names(
        read,
        [
          Prop::CacheKey,
          Prop::QueueType,
          Prop::Payload,
          Prop::Priority,
          Prop::SkipThreshold,
          Prop::Retry,
          Prop::TimeoutMs,
          Prop::Signal,
          Prop::Dedupe,
        ],
      )?;
    Ok(Self {
      cache_key,
      queue_type,
      payload,
      priority,
      skip_threshold,
      retry,
      timeout_ms,
      signal,
      dedupe,
      ..Self::read_named(js, read)?
    })
  }

  /// What a plan needs, for the failure of a call that started plain:
  /// its options were checked at the start (plainly right, or by
  /// `startFallbackCall`, which took the queue payload's text then).
  fn read_plan(js: Js<'env>, read: Raw<'env>) -> JsResult<Self> {
    let named = Self::read_named(js, read)?;
    if js.kind(named.queue_on_failure) == Kind::Undefined {
      return Ok(named);
    }
    let [queue_type, payload, priority] =
      js.get_names(read, [Prop::QueueType, Prop::PayloadText, Prop::Priority])?;
    Ok(Self {
      queue_type,
      payload,
      priority,
      ..named
    })
  }

  /// The fields every plan has (its names, key, skip, default and whether
  /// it queues), the rest left `undefined`.
  fn read_named(js: Js<'env>, read: Raw<'env>) -> JsResult<Self> {
    let [operation_name, user_id, prompt, model_id, allow_skip, default_value, service, queue_on_failure] =
      js.get_names(
        read,
        [
          Prop::OperationName,
          Prop::UserId,
          Prop::Prompt,
          Prop::ModelId,
          Prop::AllowSkip,
          Prop::DefaultValue,
          Prop::Service,
          Prop::QueueOnFailure,
        ],
      )?;
    let undefined = js.undefined();
    Ok(Self {
      operation_name,
      user_id,
      prompt,
      model_id,
      allow_skip,
      default_value,
      service,
      queue_on_failure,
      cache_key: undefined,
      queue_type: undefined,
      payload: undefined,
      priority: undefined,
      skip_threshold: undefined,
      retry: undefined,
      timeout_ms: undefined,
      signal: undefined,
      dedupe: undefined,
    })
  }
}

/// One call that is not plain, from its start to its end: its checked
/// plan (kept here, so that the failure path needs no options), the
/// up-front skip decision, whether it is shared (`dedupe`), and its
/// attempt loop (`retry`, `timeoutMs`, `signal`).
#[napi]
pub struct FallbackCall {
  plan: Arc<FallbackPlan>,
  /// `skipThreshold` reached: skip without calling.
  #[napi(readonly)]
  pub skip_now: bool,
  /// `dedupe`: overlapping calls with this cache key share one call.
  #[napi(readonly)]
  pub shared: bool,
  /// `retry`, `timeoutMs` or `signal`: the call runs its attempts in the
  /// Rust loop (`runAttempts`).
  #[napi(readonly)]
  pub attempting: bool,
  attempts: PendingAttempts,
  /// The schedule each model of a chain (`alternatives`) runs with afresh.
  each_model: Option<(RetryPolicy, Option<u64>)>,
}

#[napi]
impl FallbackCall {
  /// Runs the attempts (`retry`, `timeoutMs`, `signal`); resolves how they
  /// ended. `first` is the first attempt, made by the caller; `attempt(n)`
  /// and `abort(n, timeoutMs)` (lib/invoke.js) make and time out the others.
  /// `null` for a call without attempts, or once they ran.
  #[napi]
  pub fn run_attempts<'env>(
    &mut self,
    env: &'env Env,
    first: Raw<'_>,
    attempt: AttemptFn,
    abort: AbortFn,
  ) -> napi::Result<Option<PromiseRaw<'env, AttemptsOutcome>>> {
    self.attempts.run(env, first, attempt, abort)
  }

  /// The caller's signal aborted: no further attempt, no wait left.
  #[napi]
  pub fn cancel(&self) {
    self.attempts.cancel();
  }

  /// Arms the attempts afresh for the next model of the chain
  /// (`alternatives`): the same `retry` policy and `timeoutMs`.
  #[napi]
  pub fn rearm(&mut self) {
    if let Some((policy, timeout_ms)) = self.each_model {
      self.attempts = PendingAttempts::new(Some(Schedule::Fallback { policy, timeout_ms }));
    }
  }

  /// The call failed with `error` at `now` (the caller's `Date.now()`): the
  /// first fallback of its plan that applies (`outcome_json`).
  #[napi]
  pub fn failed<'env>(
    &self,
    env: &'env Env,
    error: Raw<'_>,
    now: f64,
  ) -> napi::Result<Either<String, PromiseRaw<'env, String>>> {
    decide_after_failure(env, Arc::clone(&self.plan), error, now)
  }
}

/// Checks a call's options (the one object `readOptions` made) and says
/// how it runs: `null` for a plain call (JavaScript runs it, and asks
/// `fallbackAfterFailure` if it fails); for a plain call that carries a
/// queue payload, that payload's JSON text, taken now (JavaScript keeps it
/// with the options as `payloadText`: a string costs far less to hand back
/// than a class instance); else its `FallbackCall`.
#[napi]
pub fn start_fallback_call(
  env: &Env,
  operation: Raw<'_>,
  options: Raw<'_>,
  read: Raw<'_>,
) -> napi::Result<Option<Either<String, FallbackCall>>> {
  boundary(env, |js| {
    args::function(js, operation, "operation")?;
    args::object(js, options, "options")?;
    let o = CallOptions::read(js, read)?;
    let name = string_value(js, o.operation_name, "options.operationName")?;
    if js.string_length(name) == 0 {
      return Err(args::value_error(
        js,
        "options.operationName",
        "a non-empty string",
        name,
      ));
    }
    optional_string_value(js, o.user_id, "options.userId")?;
    let keyed = js.kind(o.cache_key) != Kind::Undefined;
    if keyed {
      args::object(js, o.cache_key, "options.cacheKey")?;
      string_value(js, o.prompt, "options.cacheKey.prompt")?;
      string_value(js, o.model_id, "options.cacheKey.modelId")?;
    }
    let allow_skip = args::optional_bool(js, o.allow_skip, "options.allowSkip")?.unwrap_or(false);
    let queue = match js.kind(o.queue_on_failure) != Kind::Undefined {
      true => {
        args::object(js, o.queue_on_failure, "options.queueOnFailure")?;
        let job_type = job_type(js, o.queue_type, "options.queueOnFailure.type")?;
        let priority = priority(js, o.priority, "options.queueOnFailure.priority")?;
        Some((job_type, priority))
      }
      false => None,
    };
    optional_string_value(js, o.service, "options.service")?;
    let threshold = args::optional_non_negative(js, o.skip_threshold, "options.skipThreshold")?;
    let policy = retry_option(js, o.retry)?;
    let timeout_ms = args::optional_integer(
      js,
      o.timeout_ms,
      "options.timeoutMs",
      1,
      args::MAX_SAFE_INTEGER,
    )?;
    let has_signal = abort_signal(js, o.signal)?;
    let dedupe = args::optional_bool(js, o.dedupe, "options.dedupe")?.unwrap_or(false);
    // A call with its own signal decides its own fate: it neither joins
    // nor hosts a shared call.
    let shared = dedupe && keyed && !has_signal;
    let uses_attempts = policy.is_some() || timeout_ms.is_some() || has_signal;
    let may_skip = allow_skip && threshold.is_some();
    if queue.is_none() && !shared && !uses_attempts && !may_skip {
      return Ok(None);
    }
    // Taken now, so a queued job holds the request as it was made. A
    // payload that cannot be taken does not fail the call: the queue step
    // is unavailable to it (the contract's rule for data of one call).
    let queue = match queue {
      Some((job_type, priority)) => {
        let (payload, payload_problem) = take_payload(js, o.payload)?;
        if let (Some(text), false, false, false) = (&payload, shared, uses_attempts, may_skip) {
          return Ok(Some(Either::A(text.to_string())));
        }
        Some(QueueRequest {
          job_type,
          payload,
          priority,
          payload_problem,
        })
      }
      None => None,
    };
    let queued = queue.is_some();
    let plan = plan_of(js, &o, queue)?;
    let skip_now = match threshold {
      Some(threshold) if allow_skip => {
        fallback::skip_up_front(&plan, threshold, global(), js.now_ms())
      }
      _ => false,
    };
    if !queued && !shared && !uses_attempts && !skip_now {
      return Ok(None);
    }
    let each_model = (uses_attempts && !skip_now).then(|| {
      let policy = policy.unwrap_or(RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
      });
      (policy, timeout_ms)
    });
    let schedule = each_model.map(|(policy, timeout_ms)| Schedule::Fallback { policy, timeout_ms });
    Ok(Some(Either::B(FallbackCall {
      plan: Arc::new(plan),
      skip_now,
      shared,
      attempting: schedule.is_some(),
      attempts: PendingAttempts::new(schedule),
      each_model,
    })))
  })
}

/// `queueOnFailure.payload` as JSON text, or why it cannot be taken.
fn take_payload(js: Js<'_>, payload: Raw<'_>) -> JsResult<(Option<Arc<str>>, Option<String>)> {
  if js.kind(payload) == Kind::Undefined {
    return Ok((None, None));
  }
  match json::stringify_to_js(js, payload, "options.queueOnFailure.payload") {
    Ok(Some(text)) => Ok((Some(js.read_string(text)?.into()), None)),
    Ok(None) => Ok((
      None,
      Some(json::not_json_value(js, payload, "options.queueOnFailure.payload").message()),
    )),
    Err(Fault::Pending) => Err(Fault::Pending),
    Err(fault) => Ok((None, Some(fault.message()))),
  }
}

/// A success: stored under the cache key, at `now` (the caller's
/// `Date.now()`). `null` and `undefined` are not
/// answers worth keeping; anything else that cannot be kept (not JSON data,
/// a key with a lone surrogate, larger than the cache) is returned all the
/// same, just not cached: the reason comes back for a warning.
#[napi]
pub fn cache_result<'env>(
  env: &'env Env,
  prompt: Raw<'_>,
  model_id: Raw<'_>,
  value: Raw<'_>,
  now: f64,
) -> napi::Result<Either<Option<String>, PromiseRaw<'env, Option<String>>>> {
  let write = boundary(env, |js| {
    if js.is_nullish(value) {
      return Ok(Err(None));
    }
    if let Some(problem) = json::not_data(js, value) {
      return Ok(Err(Some(problem)));
    }
    match json::stringify_to_js(js, value, "result") {
      Ok(Some(text)) => entry_of(js, prompt, model_id, text),
      Ok(None) => Ok(Err(None)),
      Err(Fault::Pending) => Err(Fault::Pending),
      Err(fault) => Ok(Err(Some(fault.message()))),
    }
  })?;
  let (entry, model) = match write {
    Ok(write) => write,
    Err(not_cached) => return Ok(Either::A(not_cached)),
  };
  let now = clock::from_js(now);
  on_store(env, move || {
    fallback::on_success(global(), entry, &model, now).err()
  })
}

/// The entry to store and its modelId, or why there is none (`None`:
/// nothing worth keeping; `Some`: the reason it cannot be kept).
type EntryOrNot = Result<(EntryText, String), Option<String>>;

fn entry_of(js: Js<'_>, prompt: Raw<'_>, model_id: Raw<'_>, json: Raw<'_>) -> JsResult<EntryOrNot> {
  let mut text = String::new();
  js.read_string_into(prompt, &mut text)?;
  let prompt_len = text.len();
  let model = js.read_string(model_id)?;
  if let Some(problem) = limits::id_too_long("The cache key's modelId", &model) {
    return Ok(Err(Some(problem)));
  }
  if let Some(problem) = args::lone_surrogate_in(
    js,
    &[&text, &model],
    &[
      (prompt, "options.cacheKey.prompt"),
      (model_id, "options.cacheKey.modelId"),
    ],
  )? {
    return Ok(Err(Some(problem)));
  }
  js.read_string_into(json, &mut text)?;
  let entry = EntryText::joined(text, prompt_len).ok_or_else(|| Fault::internal("prompt split"))?;
  Ok(Ok((entry, model)))
}

fn optional_text(js: Js<'_>, value: Raw<'_>) -> JsResult<Option<String>> {
  match js.kind(value) {
    Kind::String => js.read_string(value).map(Some),
    _ => Ok(None),
  }
}

/// The core's plan from the checked options; `queue` as taken at the start.
fn plan_of(
  js: Js<'_>,
  options: &CallOptions<'_>,
  queue: Option<QueueRequest>,
) -> JsResult<FallbackPlan> {
  let (cache_key, cache_problem) = match js.kind(options.prompt) {
    Kind::String => {
      let key = CacheKey {
        prompt: js.read_string(options.prompt)?,
        model_id: js.read_string(options.model_id)?,
      };
      let problem = match limits::id_too_long("The cache key's modelId", &key.model_id) {
        Some(problem) => Some(problem),
        None => args::lone_surrogate_in(
          js,
          &[&key.prompt, &key.model_id],
          &[
            (options.prompt, "options.cacheKey.prompt"),
            (options.model_id, "options.cacheKey.modelId"),
          ],
        )?,
      };
      (Some(key), problem)
    }
    _ => (None, None),
  };
  Ok(FallbackPlan {
    operation_name: js.read_string(options.operation_name)?,
    // An empty userId counts as none, as it did before.
    user_id: optional_text(js, options.user_id)?.filter(|id| !id.is_empty()),
    cache_key,
    cache_problem,
    allow_skip: js.kind(options.allow_skip) == Kind::Boolean && js.read_bool(options.allow_skip),
    queue,
    has_default: js.kind(options.default_value) != Kind::Undefined,
    service: optional_text(js, options.service)?,
  })
}

fn quoted(text: &str) -> String {
  serde_json::Value::from(text).to_string()
}

/// The failure path of a call that started plain (no `FallbackCall`):
/// its plan from the options `readOptions` made, then as
/// `FallbackCall.failed`.
#[napi]
pub fn fallback_after_failure<'env>(
  env: &'env Env,
  read: Raw<'_>,
  error: Raw<'_>,
  now: f64,
) -> napi::Result<Either<String, PromiseRaw<'env, String>>> {
  let plan = boundary(env, |js| {
    let options = CallOptions::read_plan(js, read)?;
    let queue = match js.kind(options.queue_on_failure) {
      Kind::Undefined => None,
      _ => Some(QueueRequest {
        job_type: job_type(js, options.queue_type, "options.queueOnFailure.type")?,
        payload: optional_text(js, options.payload)?.map(Into::into),
        priority: priority(js, options.priority, "options.queueOnFailure.priority")?,
        payload_problem: None,
      }),
    };
    plan_of(js, &options, queue)
  })?;
  decide_after_failure(env, Arc::new(plan), error, now)
}

/// The first fallback that applies, as JSON text (`{ fallbackType?,
/// message, data?, jobId?, stale?, isError? }`; `data` is the cached answer
/// itself, so one `JSON.parse` makes the caller's copy).
fn decide_after_failure<'env>(
  env: &'env Env,
  plan: Arc<FallbackPlan>,
  error: Raw<'_>,
  now: f64,
) -> napi::Result<Either<String, PromiseRaw<'env, String>>> {
  let (message, is_error) = boundary(env, |js| {
    Ok((args::error_message(js, error), js.is_error(error)))
  })?;
  let now = clock::from_js(now);
  on_store(env, move || {
    let outcome = fallback::on_failure(&plan, &message, global(), now);
    outcome_json(&outcome, &message, is_error)
  })
}

/// `{ fallbackType?, message, data?, jobId?, stale?, isError?, unavailable? }`.
fn outcome_json(outcome: &FailureOutcome, error_message: &str, is_error: bool) -> String {
  let mut text = match outcome.fallback.fallback_type() {
    None => format!(
      "{{\"message\":{},\"isError\":{is_error}",
      quoted(error_message)
    ),
    Some(fallback_type) => format!(
      "{{\"fallbackType\":\"{fallback_type}\",\"message\":{}",
      quoted(user_friendly_message(Some(fallback_type)))
    ),
  };
  if !outcome.unavailable.is_empty() {
    let steps: Vec<serde_json::Value> = outcome
      .unavailable
      .iter()
      .map(|passed| serde_json::json!({ "step": passed.step, "reason": passed.reason }))
      .collect();
    text.push_str(",\"unavailable\":");
    text.push_str(&serde_json::Value::Array(steps).to_string());
  }
  match &outcome.fallback {
    Fallback::Cache(hit) => {
      if hit.stale {
        text.push_str(",\"stale\":true");
      }
      text.push_str(",\"data\":");
      text.push_str(&hit.response);
    }
    Fallback::Queued(job_id) => {
      text.push_str(",\"jobId\":");
      text.push_str(&quoted(job_id));
    }
    Fallback::Default | Fallback::Skipped | Fallback::Failed => {}
  }
  text.push('}');
  text
}
