//! What a failed attempt's error says about retrying: `retryable: false`,
//! and the wait it asks for: `retryAfterMs`, or a `retry-after-ms` or
//! `Retry-After` header. The values are read here, on the JavaScript thread;
//! the core parses them (`core::retry`) and the policy caps them.

use crate::core::retry::{parse_retry_after, parse_retry_after_ms, wait_from_ms};

use super::errors::JsResult;
use super::names::Prop;
use super::raw::{Js, Kind, Raw};

/// `retryable: false` on the error stops retries.
pub fn retryable(js: Js<'_>, error: Raw<'_>) -> bool {
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

/// Whether properties can be read off `value` (an object or a function).
pub fn is_object(js: Js<'_>, value: Raw<'_>) -> bool {
  matches!(js.kind(value), Kind::Object | Kind::Function)
}

/// What the error asks to wait, in ms as of `now` (the JavaScript clock):
/// 0 when it asks nothing, `u64::MAX` for an infinite or huge ask. The first
/// of these that is readable wins:
///
/// 1. `error.retryAfterMs` (a number);
/// 2. the headers of `error.response.headers`, `error.headers`, then
///    `error.responseHeaders` (the AI SDK's `APICallError`), each a plain
///    object (any case of the key) or a fetch `Headers`-like (anything with a
///    callable `get`): `retry-after-ms` (milliseconds) before `retry-after`
///    (seconds, or an HTTP-date).
///
/// A getter or `get` that throws is taken as asking nothing.
pub fn asked_wait_ms(js: Js<'_>, error: Raw<'_>, now: u64) -> u64 {
  let read = || -> JsResult<Option<u64>> {
    if !is_object(js, error) {
      return Ok(None);
    }
    let direct = js.get_name(error, Prop::RetryAfterMs)?;
    if js.kind(direct) == Kind::Number {
      if let Some(wait) = wait_from_ms(js.read_number(direct)) {
        return Ok(Some(wait));
      }
    }
    let response = js.get_name(error, Prop::Response)?;
    let places = [
      if is_object(js, response) {
        Some(js.get_name(response, Prop::Headers)?)
      } else {
        None
      },
      Some(js.get_name(error, Prop::Headers)?),
      Some(js.get_name(error, Prop::ResponseHeaders)?),
    ];
    for headers in places.into_iter().flatten() {
      if let Some(wait) = header_wait(js, headers, now)? {
        return Ok(Some(wait));
      }
    }
    Ok(None)
  };
  match read() {
    Ok(wait) => wait.unwrap_or(0),
    Err(_) => {
      js.take_exception();
      0
    }
  }
}

/// The wait one headers object asks for, if it says anything readable.
fn header_wait(js: Js<'_>, headers: Raw<'_>, now: u64) -> JsResult<Option<u64>> {
  if !is_object(js, headers) {
    return Ok(None);
  }
  let get = js.get_name(headers, Prop::Get)?;
  let [in_ms, after] = if js.kind(get) == Kind::Function {
    // A fetch `Headers` (or axios' `AxiosHeaders`): `get` is case-insensitive
    // and returns `null` for a missing header.
    let mut values = [None, None];
    for (slot, name) in values
      .iter_mut()
      .zip([Prop::RetryAfterMsHeader, Prop::RetryAfter])
    {
      *slot = js.call_on(headers, get, &[js.name(name)?])?.ok();
    }
    values
  } else {
    // A plain object: its own keys, in any case.
    let mut values = [None, None];
    for key in js.own_keys(headers)? {
      let slot = if key.eq_ignore_ascii_case("retry-after-ms") {
        &mut values[0]
      } else if key.eq_ignore_ascii_case("retry-after") {
        &mut values[1]
      } else {
        continue;
      };
      if slot.is_none() {
        *slot = Some(js.get_by(headers, js.string(&key)?)?);
      }
    }
    values
  };
  if let Some(value) = in_ms {
    let wait = match js.kind(value) {
      Kind::Number => wait_from_ms(js.read_number(value)),
      Kind::String => parse_retry_after_ms(&js.read_string(value)?),
      _ => None,
    };
    if wait.is_some() {
      return Ok(wait);
    }
  }
  Ok(match after {
    Some(value) => match js.kind(value) {
      Kind::Number => wait_from_ms(js.read_number(value) * 1000.0),
      Kind::String => parse_retry_after(&js.read_string(value)?, now),
      _ => None,
    },
    None => None,
  })
}
