//! Responses and payloads are stored as JSON text, made by the environment's
//! own `JSON.stringify` and read back by `JSON.parse`: the exact semantics
//! users know (Dates become ISO strings, `__proto__` stays a plain key), and
//! every read hands out a fresh copy.

use std::sync::Arc;

use super::args::{describe, subject};
use super::errors::{Fault, JsResult, ERR_INVALID_ARG_VALUE};
use super::names::Builtin;
use super::raw::{Js, Kind, Raw};

fn not_json(name: &str, why: &str) -> Fault {
  Fault::type_error(
    ERR_INVALID_ARG_VALUE,
    format!("{} must be JSON data: {why}", subject(name)),
  )
}

/// The JSON text of `value`; `None` when JSON has no text for it at all
/// (`undefined`, a function or a symbol at the top).
pub fn stringify(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<Option<Arc<str>>> {
  match stringify_to_js(js, value, name)? {
    Some(text) => Ok(Some(js.read_string(text)?.into())),
    None => Ok(None),
  }
}

/// Like `stringify`, but the text stays a JavaScript string.
pub fn stringify_to_js<'env>(
  js: Js<'env>,
  value: Raw<'env>,
  name: &str,
) -> JsResult<Option<Raw<'env>>> {
  let text = match js.json_stringify(value)? {
    Ok(text) => text,
    Err(thrown) => {
      let why = match what_json_cannot_hold(js, value) {
        Some(Unjsonable::Circular) => "it contains a circular reference".to_string(),
        Some(Unjsonable::BigInt) => "it contains a BigInt, which JSON cannot hold".to_string(),
        None => format!(
          "JSON.stringify failed: {}",
          super::args::error_message(js, thrown)
        ),
      };
      return Err(not_json(name, &why));
    }
  };
  match js.kind(text) {
    Kind::String => Ok(Some(text)),
    _ => Ok(None),
  }
}

/// What made `JSON.stringify` throw, found by looking at the value (never
/// by reading the engine's message, whose words are not an API).
enum Unjsonable {
  Circular,
  BigInt,
}

/// How many values the look may visit: it runs only after a failed
/// `JSON.stringify`, and a value too large to look at gets the engine's
/// own message instead.
const MAX_LOOKED_AT: usize = 2_000;

/// A circular reference or a BigInt in `value`, by a walk over its own
/// enumerable string keys as JSON takes them; `None` when neither is found
/// (a `toJSON` or a getter that throws made it fail), when the walk itself
/// throws (its exception is cleared: the caller reports the first one), or
/// past `MAX_LOOKED_AT` values.
fn what_json_cannot_hold(js: Js<'_>, value: Raw<'_>) -> Option<Unjsonable> {
  let mut ancestors = Vec::new();
  let mut budget = MAX_LOOKED_AT;
  let found = look(js, value, &mut ancestors, &mut budget);
  if js.exception_pending() {
    js.take_exception();
  }
  found.ok().flatten()
}

fn look<'env>(
  js: Js<'env>,
  value: Raw<'env>,
  ancestors: &mut Vec<Raw<'env>>,
  budget: &mut usize,
) -> JsResult<Option<Unjsonable>> {
  match js.kind(value) {
    Kind::BigInt => return Ok(Some(Unjsonable::BigInt)),
    Kind::Object => {}
    _ => return Ok(None),
  }
  for &ancestor in ancestors.iter() {
    if js.strict_equals(ancestor, value)? {
      return Ok(Some(Unjsonable::Circular));
    }
  }
  if *budget == 0 {
    return Ok(None);
  }
  *budget -= 1;
  ancestors.push(value);
  for key in js.own_keys(value)? {
    let child = js.get_by(value, js.string(&key)?)?;
    if let Some(found) = look(js, child, ancestors, budget)? {
      return Ok(Some(found));
    }
  }
  ancestors.pop();
  Ok(None)
}

/// The error for a value JSON has no text for at all.
pub fn not_json_value(js: Js<'_>, value: Raw<'_>, name: &str) -> Fault {
  not_json(name, &format!("JSON cannot hold {}", describe(js, value)))
}

/// Like `stringify`, but a value with no JSON text is an error too.
pub fn stringify_required(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<Arc<str>> {
  stringify(js, value, name)?.ok_or_else(|| not_json_value(js, value, name))
}

/// Payloads may be `undefined` (kept as "no payload"); anything else must
/// be JSON data.
pub fn stringify_payload(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<Option<Arc<str>>> {
  match js.kind(value) {
    Kind::Undefined => Ok(None),
    _ => stringify_required(js, value, name).map(Some),
  }
}

/// Why `value` is not data worth caching, if it is not: what JSON would
/// silently turn into something else (`{}` for a stream, a `Map`, a
/// `Response` or any class instance). Looked at the top level: primitives,
/// arrays, plain objects and `Date`s are data.
pub fn not_data(js: Js<'_>, value: Raw<'_>) -> Option<String> {
  match js.kind(value) {
    Kind::Object if js.is_array(value) || js.is_date(value) => None,
    Kind::Object => {
      let prototype = js.prototype_of(value).ok()?;
      let plain = js.kind(prototype) == Kind::Null
        || js
          .builtin(Builtin::ObjectPrototype)
          .and_then(|object| js.strict_equals(object, prototype))
          .unwrap_or(false);
      match plain {
        true => None,
        false => Some(format!(
          "the result is {}, not JSON data",
          instance_name(js, value)
        )),
      }
    }
    Kind::Function | Kind::Symbol | Kind::BigInt => Some(format!(
      "the result is {}, not JSON data",
      super::args::describe(js, value)
    )),
    _ => None,
  }
}

/// `an instance of Map`, by the constructor's name where it has one.
fn instance_name(js: Js<'_>, value: Raw<'_>) -> String {
  let name = js
    .get(value, c"constructor")
    .and_then(|constructor| match js.kind(constructor) {
      Kind::Function => js.get(constructor, c"name"),
      _ => Ok(js.undefined()),
    })
    .ok()
    .filter(|name| js.kind(*name) == Kind::String)
    .and_then(|name| js.read_string(name).ok())
    .filter(|name| !name.is_empty());
  js.take_exception();
  match name {
    Some(name) => format!("an instance of {name}"),
    None => "an object with a prototype of its own".to_string(),
  }
}
