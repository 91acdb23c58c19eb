//! What a failed attempt's error says about retrying: `retryable: false`,
//! `retryAfterMs`, a `Retry-After` header.

use super::args;
use super::errors::JsResult;
use super::names::Prop;
use super::raw::{Js, Kind, Raw};

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
