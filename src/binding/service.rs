//! `executeService` and `getCircuitBreakerStatus`: retries with backoff and
//! a circuit breaker per `context.operation`, then the caller's fallback or
//! graceful degradation. The attempts run in `glue.js`'s `runService`; every
//! decision (breaker, retry, delay) is the core's, and every wait is a Rust
//! timer (`timers.rs`).

use napi::Env;
use napi_derive::napi;

use crate::core::retry::{Jitter, RetryPolicy};
use crate::core::service::{AfterFailure, ServiceCall};
use crate::core::singletons::global;

use super::args;
use super::env::{Glue, Prop};
use super::errors::{boundary, callback, ErrorClass, JsResult, NativeCallback};
use super::js::{Js, Raw};
use super::results;
use super::retry::{asked_wait_ms, retryable};
use super::timers;

/// The native functions `runService` calls, by name.
pub fn service_callbacks() -> [(&'static str, NativeCallback); 6] {
  [
    ("state", circuit_state),
    ("message", error_message),
    ("asError", as_error),
    ("succeeded", succeeded),
    ("failed", failed),
    ("openError", open_error),
  ]
}

fn policy(js: Js, options: Raw) -> JsResult<(RetryPolicy, Raw, Raw)> {
  let mut policy = RetryPolicy::default();
  let (mut fallback, mut degrade) = (js.undefined(), js.undefined());
  let known = [
    "maxRetries",
    "baseDelay",
    "maxDelay",
    "fallback",
    "gracefulDegradation",
  ];
  args::options(js, options, "options", &known, |key, value, path| {
    match key {
      "maxRetries" => {
        policy.max_retries =
          args::optional_integer(js, value, path, 0, u32::MAX as u64)?.unwrap_or(0) as u32
      }
      "baseDelay" => {
        policy.base_delay_ms =
          args::optional_integer(js, value, path, 0, args::MAX_SAFE_INTEGER)?.unwrap_or(0)
      }
      "maxDelay" => {
        policy.max_delay_ms =
          args::optional_integer(js, value, path, 0, args::MAX_SAFE_INTEGER)?.unwrap_or(0)
      }
      "fallback" => fallback = args::function(js, value, path)?,
      _ => degrade = args::function(js, value, path)?,
    }
    Ok(())
  })?;
  Ok((policy, fallback, degrade))
}

/// Runs `operation` with retries (exponential backoff, decorrelated jitter)
/// behind a circuit breaker per `context.operation` (open after 5
/// consecutive failed calls; after 60 s one trial call goes through; its
/// success closes the breaker), then `options.fallback`, then
/// `options.gracefulDegradation`. Resolves a `ServiceResult`; rejects only
/// for bad arguments.
#[napi]
pub fn execute_service(env: Env, operation: Raw, context: Raw, options: Raw) -> napi::Result<Raw> {
  boundary(env, |js| {
    let checked = (|| {
      args::function(js, operation, "operation")?;
      let context = args::object(js, context, "context")?;
      let name_value = js.get_name(context, Prop::Operation)?;
      let name = args::string(js, name_value, "context.operation")?;
      if name.is_empty() {
        return Err(args::value_error(
          js,
          "context.operation",
          "a non-empty string",
          name_value,
        ));
      }
      let (policy, fallback, degrade) = policy(js, options)?;
      Ok((name, name_value, policy, fallback, degrade))
    })();
    let (name, name_value, policy, fallback, degrade) = match checked {
      Ok(checked) => checked,
      Err(fault) => return js.rejected(fault.into_value(js)),
    };
    let started = ServiceCall::start(&mut global().breakers.lock(), &name, policy, js.now_ms());
    let trial = started.as_ref().is_some_and(|call| call.trial);
    js.glue(
      Glue::RunService,
      &[
        operation,
        name_value,
        js.number(policy.max_retries as f64)?,
        js.number(policy.base_delay_ms as f64)?,
        js.number(policy.max_delay_ms as f64)?,
        js.boolean(trial)?,
        js.boolean(started.is_none())?,
        fallback,
        degrade,
      ],
    )
  })
}

/// The breaker of every operation `executeService` has seen.
#[napi]
pub fn get_circuit_breaker_status(env: Env) -> napi::Result<Raw> {
  boundary(env, |js| {
    let status = global().breakers.lock().status(js.now_ms());
    let object = js.object()?;
    for (operation, breaker) in &status {
      let opened_at = match breaker.opened_at {
        Some(ms) => js.number(ms as f64)?,
        None => js.undefined(),
      };
      let entry = js.glue(
        Glue::BreakerStatus,
        &[
          js.string(breaker.state.name())?,
          js.number(breaker.consecutive_failures as f64)?,
          opened_at,
        ],
      )?;
      js.define(object, operation, entry)?;
    }
    Ok(object)
  })
}

callback!(
  fn circuit_state(js, [name]) {
    let name = js.read_string(name)?;
    let breaker = global().breakers.lock().state_of(&name, js.now_ms());
    js.string(breaker.map_or("closed", |b| b.state.name()))
  }
);

callback!(
  fn error_message(js, [error]) {
    js.string(&args::error_message(js, error))
  }
);

callback!(
  fn as_error(js, [error, message]) {
    Ok(results::as_error(js, error, &js.read_string(message)?))
  }
);

callback!(
  fn open_error(js, [name]) {
    let name = js.read_string(name)?;
    let message = format!("The circuit breaker for \"{name}\" is open: the operation was not called");
    Ok(js.new_error(ErrorClass::Error, Some("CIRCUIT_OPEN"), &message))
  }
);

callback!(
  fn succeeded(js, [name]) {
    global().breakers.lock().record_success(&js.read_string(name)?);
    Ok(js.undefined())
  }
);

callback!(
  /// `failed(name, error, attempts, previousDelay, maxRetries, baseDelay,
  /// maxDelay, trial, attempt)`: schedules `attempt` and returns the delay, or
  /// returns -1 when the call gives up.
  fn failed(js, [name, error, attempts, previous, max_retries, base, max, trial, attempt]) {
    let mut call = ServiceCall {
      operation: js.read_string(name)?,
      policy: RetryPolicy {
        max_retries: js.read_number(max_retries) as u32,
        base_delay_ms: js.read_number(base) as u64,
        max_delay_ms: js.read_number(max) as u64,
        jitter: Jitter::Decorrelated,
      },
      attempts: js.read_number(attempts) as u32,
      previous_delay_ms: js.read_number(previous) as u64,
      trial: js.read_bool(trial),
    };
    let (is_retryable, at_least) = (retryable(js, error), asked_wait_ms(js, error));
    let stores = global();
    let decision = call.failed(
      &mut stores.breakers.lock(),
      is_retryable,
      at_least,
      &mut stores.random.lock(),
      js.now_ms(),
    );
    match decision {
      AfterFailure::RetryIn(delay) => {
        timers::after(js, delay, attempt)?;
        js.number(delay as f64)
      }
      AfterFailure::GiveUp => js.number(-1.0),
    }
  }
);
