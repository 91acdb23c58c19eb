//! What a failed attempt says about retrying (`retryable: false`,
//! `retryAfterMs`, a `Retry-After` header), and `retry.next`, the native
//! decision `glue.js`'s `retrying` asks for after each failed attempt of an
//! `executeWithFallback` call with a `retry` option.

use crate::core::retry::{Jitter, RetryPolicy};
use crate::core::singletons::global;

use super::args;
use super::env::Prop;
use super::errors::{callback, JsResult};
use super::js::{Js, Kind, Raw};

/// `retryable: false` on the error stops retries.
pub fn retryable(js: Js, error: Raw) -> bool {
  if !matches!(js.kind(error), Kind::Object | Kind::Function) {
    return true;
  }
  match js.get_name(error, Prop::Retryable) {
    Ok(flag) => js.kind(flag) != Kind::Boolean || js.read_bool(flag),
    Err(_) => {
      js.take_exception();
      true
    }
  }
}

/// What the error asks to wait: `retryAfterMs`, or a `Retry-After` header
/// in seconds on `error.response.headers`.
pub fn asked_wait_ms(js: Js, error: Raw) -> u64 {
  let read = || -> JsResult<Option<f64>> {
    if !matches!(js.kind(error), Kind::Object | Kind::Function) {
      return Ok(None);
    }
    let direct = js.get_name(error, Prop::RetryAfterMs)?;
    if js.kind(direct) == Kind::Number {
      return Ok(Some(js.read_number(direct)));
    }
    let response = js.get_name(error, Prop::Response)?;
    if js.kind(response) != Kind::Object {
      return Ok(None);
    }
    let headers = js.get_name(response, Prop::Headers)?;
    if js.kind(headers) != Kind::Object {
      return Ok(None);
    }
    let mut header = js.get_name(headers, Prop::RetryAfter)?;
    if js.kind(header) == Kind::Undefined {
      header = js.get_name(headers, Prop::RetryAfterTitle)?;
    }
    Ok(match js.kind(header) {
      Kind::Number => Some(js.read_number(header) * 1000.0),
      Kind::String => js
        .read_string(header)?
        .trim()
        .parse::<f64>()
        .ok()
        .map(|s| s * 1000.0),
      _ => None,
    })
  };
  match read() {
    Ok(Some(ms)) if ms.is_finite() && ms > 0.0 => ms.min(args::MAX_SAFE_INTEGER as f64) as u64,
    Ok(_) => 0,
    Err(_) => {
      js.take_exception();
      0
    }
  }
}

callback!(
  /// `next(error, attempts, previousDelay, maxRetries, baseDelay, maxDelay,
  /// decorrelated)`: the delay before the next attempt, or -1 when there is
  /// no retry left or the error is not retryable.
  fn next_attempt(js, [error, attempts, previous, max_retries, base, max, decorrelated]) {
    let policy = RetryPolicy {
      max_retries: js.read_number(max_retries) as u32,
      base_delay_ms: js.read_number(base) as u64,
      max_delay_ms: js.read_number(max) as u64,
      jitter: if js.read_bool(decorrelated) { Jitter::Decorrelated } else { Jitter::None },
    };
    let delay = policy.after_failure(
      js.read_number(attempts) as u32,
      js.read_number(previous) as u64,
      retryable(js, error),
      asked_wait_ms(js, error),
      &mut global().random.lock(),
    );
    js.number(delay.map_or(-1.0, |delay| delay as f64))
  }
);
