//! `executeService`'s native half (`lib/service.js` is the other): the
//! arguments are checked and the operation's circuit breaker asked here;
//! the attempts run in the Rust loop of `attempts.rs`, deciding with the
//! core's `ServiceCall` (breaker, retries, waits). `getCircuitBreakerStatus`.

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::core::attempts::Schedule;
use crate::core::breaker::BreakerConfig;
use crate::core::retry::RetryPolicy;
use crate::core::service::ServiceCall;
use crate::core::singletons::global;

use super::args;
use super::attempts::{AbortFn, AttemptFn, AttemptsOutcome, PendingAttempts};
use super::boundary::boundary;
use super::errors::JsResult;
use super::names::Prop;
use super::raw::{Js, Raw};

/// The call's retry policy and breaker settings.
fn policy(js: Js<'_>, options: Raw<'_>) -> JsResult<(RetryPolicy, BreakerConfig)> {
  let mut policy = RetryPolicy::default();
  let mut breaker = BreakerConfig::default();
  let known = [
    "maxRetries",
    "baseDelay",
    "maxDelay",
    "maxRetryAfter",
    "breakerThreshold",
    "breakerResetMs",
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
      "maxRetryAfter" => {
        policy.max_retry_after_ms =
          args::optional_integer(js, value, path, 0, args::MAX_SAFE_INTEGER)?
            .unwrap_or(policy.max_retry_after_ms)
      }
      "breakerThreshold" => {
        breaker.failure_threshold = args::optional_integer(js, value, path, 1, u32::MAX as u64)?
          .unwrap_or(breaker.failure_threshold as u64) as u32
      }
      "breakerResetMs" => {
        breaker.open_ms = args::optional_integer(js, value, path, 1, args::MAX_SAFE_INTEGER)?
          .unwrap_or(breaker.open_ms)
      }
      _ => {
        args::function(js, value, path)?;
      }
    }
    Ok(())
  })?;
  Ok((policy, breaker))
}

/// One `executeService` call, checked and let through (or kept out) by its
/// breaker.
#[napi]
pub struct ServiceRun {
  /// Set when the breaker kept the call out: the message of the
  /// `CIRCUIT_OPEN` error the call fails with.
  #[napi(readonly)]
  pub open_message: Option<String>,
  attempts: PendingAttempts,
}

#[napi]
impl ServiceRun {
  /// Runs the attempts (`first` is the first, made by the caller); resolves
  /// how they ended. `null` when the breaker
  /// kept the call out, or once they ran.
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
}

/// Checks an `executeService` call and asks its breaker (by default open
/// after 5 consecutive failed calls, `breakerThreshold`; after 60 s,
/// `breakerResetMs`, one trial call goes through). The breaker takes this
/// call's settings from now on.
#[napi]
pub fn start_service_call(
  env: &Env,
  operation: Raw<'_>,
  context: Raw<'_>,
  options: Raw<'_>,
) -> napi::Result<ServiceRun> {
  boundary(env, |js| {
    args::function(js, operation, "operation")?;
    let context = args::object(js, context, "context")?;
    let name_value = js.get_name(context, Prop::Operation)?;
    let name = args::identifier(js, name_value, "context.operation")?;
    if name.is_empty() {
      return Err(args::value_error(
        js,
        "context.operation",
        "a non-empty string",
        name_value,
      ));
    }
    let (policy, breaker) = policy(js, options)?;
    let started = ServiceCall::start(
      &mut global().breakers.lock(),
      &name,
      policy,
      breaker,
      js.now_ms(),
    );
    Ok(match started {
      Some(call) => ServiceRun {
        open_message: None,
        attempts: PendingAttempts::new(Some(Schedule::Service(call))),
      },
      None => ServiceRun {
        open_message: Some(format!(
          "The circuit breaker for \"{name}\" is open: the operation was not called"
        )),
        attempts: PendingAttempts::new(None),
      },
    })
  })
}

/// The state of `operation`'s breaker now (`'closed'` for one never seen).
#[napi]
pub fn circuit_state(env: &Env, operation: Raw<'_>) -> napi::Result<String> {
  boundary(env, |js| {
    let name = args::string(js, operation, "operation")?;
    let breaker = global().breakers.lock().state_of(&name, js.now_ms());
    Ok(breaker.map_or("closed", |b| b.state.name()).to_string())
  })
}

/// Every breaker `executeService` has seen, as JSON:
/// `[{ operation, state, failureCount, openedAt? }]`.
#[napi]
pub fn circuit_breaker_status(env: &Env) -> napi::Result<String> {
  boundary(env, |js| {
    let status = global().breakers.lock().status(js.now_ms());
    let all: Vec<serde_json::Value> = status
      .iter()
      .map(|(operation, breaker)| {
        let mut entry = serde_json::Map::new();
        entry.insert("operation".into(), operation.to_string().into());
        entry.insert("state".into(), breaker.state.name().into());
        entry.insert(
          "failureCount".into(),
          (breaker.consecutive_failures as u64).into(),
        );
        if let Some(ms) = breaker.opened_at {
          entry.insert("openedAt".into(), ms.into());
        }
        serde_json::Value::Object(entry)
      })
      .collect();
    Ok(serde_json::Value::Array(all).to_string())
  })
}

/// A thrown value as the results show it: its message (API contract §2.5)
/// and whether it is an `Error` already.
#[napi(object)]
pub struct ThrownValue {
  pub message: String,
  pub is_error: bool,
}

#[napi]
pub fn describe_thrown(env: &Env, thrown: Raw<'_>) -> napi::Result<ThrownValue> {
  boundary(env, |js| {
    Ok(ThrownValue {
      message: args::error_message(js, thrown),
      is_error: js.is_error(thrown),
    })
  })
}
