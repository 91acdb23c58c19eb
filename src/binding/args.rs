//! Argument checks with Node.js-style messages: each names the argument (or
//! `options.x` property), what was expected and what was received.

use std::ffi::CString;

use crate::core::storage::Page;

use super::errors::{
  Fault, JsResult, ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE,
};
use crate::core::limits;

use super::names::Prop;
use super::raw::{Js, Kind, Raw};

/// JavaScript's `Number.MAX_SAFE_INTEGER`: the largest count or duration taken.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// `The "x" argument` or, for a dotted path, `The "options.x" property`.
pub fn subject(name: &str) -> String {
  let what = if name.contains('.') {
    "property"
  } else {
    "argument"
  };
  format!("The \"{name}\" {what}")
}

/// What was received, in the words Node.js uses.
pub fn describe(js: Js<'_>, value: Raw<'_>) -> String {
  match js.kind(value) {
    Kind::Undefined => "undefined".into(),
    Kind::Null => "null".into(),
    Kind::Function => "function".into(),
    Kind::String => {
      let text = js.read_string(value).unwrap_or_default();
      let shown: String = text.chars().take(25).collect();
      let ellipsis = if shown.len() < text.len() { "..." } else { "" };
      format!("type string ('{shown}'{ellipsis})")
    }
    Kind::Object if js.is_array(value) => "an instance of Array".into(),
    Kind::Object if js.is_date(value) => match js.read_date(value) {
      ms if ms.is_finite() => "an instance of Date".into(),
      _ => "an Invalid Date".into(),
    },
    Kind::Object => "an instance of Object".into(),
    kind => format!(
      "type {} ({})",
      format!("{kind:?}").to_lowercase(),
      js.to_display_string(value)
    ),
  }
}

pub fn type_error(js: Js<'_>, name: &str, expected: &str, value: Raw<'_>) -> Fault {
  Fault::type_error(
    ERR_INVALID_ARG_TYPE,
    format!(
      "{} must be {expected}. Received {}",
      subject(name),
      describe(js, value)
    ),
  )
}

/// The right type, but a value outside what is allowed (not a number range).
pub fn value_error(js: Js<'_>, name: &str, expected: &str, value: Raw<'_>) -> Fault {
  Fault::type_error(
    ERR_INVALID_ARG_VALUE,
    format!(
      "{} must be {expected}. Received {}",
      subject(name),
      describe(js, value)
    ),
  )
}

pub fn range_error(js: Js<'_>, name: &str, expected: &str, value: Raw<'_>) -> Fault {
  let shown = if js.kind(value) == Kind::Number {
    js.to_display_string(value)
  } else {
    describe(js, value)
  };
  Fault::range_error(
    ERR_OUT_OF_RANGE,
    format!("The value of \"{name}\" is out of range. It must be {expected}. Received {shown}"),
  )
}

pub fn string(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<String> {
  match js.kind(value) {
    Kind::String => js.read_string(value),
    _ => Err(type_error(js, name, "of type string", value)),
  }
}

pub fn optional_string(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<Option<String>> {
  match js.kind(value) {
    Kind::Undefined => Ok(None),
    _ => string(js, value, name).map(Some),
  }
}

pub fn function<'env>(js: Js<'env>, value: Raw<'env>, name: &str) -> JsResult<Raw<'env>> {
  match js.kind(value) {
    Kind::Function => Ok(value),
    _ => Err(type_error(js, name, "of type function", value)),
  }
}

pub fn object<'env>(js: Js<'env>, value: Raw<'env>, name: &str) -> JsResult<Raw<'env>> {
  match js.kind(value) {
    Kind::Object if !js.is_array(value) => Ok(value),
    _ => Err(type_error(js, name, "of type object", value)),
  }
}

pub fn optional_bool(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<Option<bool>> {
  match js.kind(value) {
    Kind::Undefined => Ok(None),
    Kind::Boolean => Ok(Some(js.read_bool(value))),
    _ => Err(type_error(js, name, "of type boolean", value)),
  }
}

fn number(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<f64> {
  match js.kind(value) {
    Kind::Number => Ok(js.read_number(value)),
    _ => Err(type_error(js, name, "of type number", value)),
  }
}

/// A finite number >= 0 (a duration, a threshold), or `None` when undefined.
pub fn optional_non_negative(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<Option<f64>> {
  if js.kind(value) == Kind::Undefined {
    return Ok(None);
  }
  let n = number(js, value, name)?;
  if !n.is_finite() || n < 0.0 {
    return Err(range_error(js, name, "a finite number >= 0", value));
  }
  Ok(Some(n))
}

/// Milliseconds as a whole number (fractions round down).
pub fn optional_ms(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<Option<u64>> {
  Ok(optional_non_negative(js, value, name)?.map(|n| n.min(u64::MAX as f64) as u64))
}

/// Milliseconds, required: a finite number >= 0 (fractions round down).
pub fn ms(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<u64> {
  optional_ms(js, value, name)?.ok_or_else(|| type_error(js, name, "of type number", value))
}

/// An integer in `min..=max`, or `None` when undefined.
pub fn optional_integer(
  js: Js<'_>,
  value: Raw<'_>,
  name: &str,
  min: u64,
  max: u64,
) -> JsResult<Option<u64>> {
  if js.kind(value) == Kind::Undefined {
    return Ok(None);
  }
  let n = number(js, value, name)?;
  if n.fract() != 0.0 || !n.is_finite() || n < min as f64 || n > max as f64 {
    let expected = format!("an integer >= {min} and <= {max}");
    return Err(range_error(js, name, &expected, value));
  }
  Ok(Some(n as u64))
}

/// The `{ limit, offset }` of a listing call: whole numbers >= 0 (up to
/// `Number.MAX_SAFE_INTEGER`); no limit and offset 0 when not given.
pub fn page(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<Page> {
  let mut page = Page::ALL;
  options(js, value, name, &["limit", "offset"], |key, field, path| {
    let n = optional_integer(js, field, path, 0, MAX_SAFE_INTEGER)?.unwrap_or(0);
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    match key {
      "limit" => page.limit = Some(n),
      _ => page.offset = n,
    }
    Ok(())
  })?;
  Ok(page)
}

/// A string out of a fixed union, such as a job type or priority.
pub fn one_of<T>(
  js: Js<'_>,
  value: Raw<'_>,
  name: &str,
  all: &[T],
  as_str: impl Fn(&T) -> &'static str,
) -> JsResult<T>
where
  T: Copy,
{
  let allowed: Vec<String> = all.iter().map(|v| format!("'{}'", as_str(v))).collect();
  let expected = format!("one of {}", allowed.join(", "));
  if js.kind(value) != Kind::String {
    return Err(type_error(js, name, &expected, value));
  }
  let text = js.read_string(value)?;
  all
    .iter()
    .copied()
    .find(|v| as_str(v) == text)
    .ok_or_else(|| value_error(js, name, &expected, value))
}

/// Reads an options bag: `undefined` means none given; any key outside
/// `known` is a `TypeError` (so a typo never passes silently). Calls
/// `apply` for each known key whose value is not `undefined`.
pub fn options(
  js: Js<'_>,
  value: Raw<'_>,
  name: &str,
  known: &[&str],
  mut apply: impl FnMut(&str, Raw<'_>, &str) -> JsResult<()>,
) -> JsResult<()> {
  if js.kind(value) == Kind::Undefined {
    return Ok(());
  }
  let bag = object(js, value, name)?;
  for key in js.own_keys(bag)? {
    let path = format!("{name}.{key}");
    if !known.contains(&key.as_str()) {
      return Err(Fault::type_error(
        ERR_INVALID_ARG_VALUE,
        format!(
          "Unknown option \"{path}\". Known options: {}",
          known.join(", ")
        ),
      ));
    }
    let key_c = CString::new(key.as_str()).map_err(Fault::internal)?;
    let field = js.get(bag, &key_c)?;
    if js.kind(field) != Kind::Undefined {
      apply(&key, field, &path)?;
    }
  }
  Ok(())
}

/// The message of a thrown value (the contract's rule for values that are
/// not `Error`s too): an object's string `message` (an `Error`'s, or a plain
/// `{ message, code }` many clients throw); a string itself; `String(value)`
/// for other primitives (`undefined`, `null` and symbols included); else a
/// short description. Never throws: a `message` getter that throws gives a
/// description instead.
pub fn error_message(js: Js<'_>, thrown: Raw<'_>) -> String {
  let kind = js.kind(thrown);
  if !matches!(kind, Kind::Object | Kind::Function) {
    return js.to_display_string(thrown);
  }
  let what = if kind == Kind::Function {
    "function"
  } else {
    "object"
  };
  match js.get_name(thrown, Prop::Message) {
    Ok(message) if js.kind(message) == Kind::String => js.to_display_string(message),
    // An `Error` whose message was set to something else: as `String()` shows it.
    Ok(message) if js.is_error(thrown) && !js.is_nullish(message) => js.to_display_string(message),
    Ok(_) if js.is_error(thrown) => String::new(),
    Ok(_) => format!("non-error value thrown ({what})"),
    Err(_) => {
      js.take_exception();
      match js.is_error(thrown) {
        true => "an error whose message could not be read".to_string(),
        false => format!("non-error value thrown ({what})"),
      }
    }
  }
}

/// Why a cache key cannot be kept exactly, if it cannot: a lone surrogate
/// (UTF-8 cannot hold one; reading it gives U+FFFD, so two such keys would
/// answer for each other). `read` is what was read of `values`: only when
/// it shows U+FFFD are the values looked at closely.
pub fn lone_surrogate_in(
  js: Js<'_>,
  read: &[&str],
  values: &[(Raw<'_>, &str)],
) -> JsResult<Option<String>> {
  if !read.iter().any(|text| text.contains('\u{FFFD}')) {
    return Ok(None);
  }
  for (value, name) in values {
    if js.has_lone_surrogate(*value)? {
      return Ok(Some(format!(
        "{} holds a lone surrogate, which a cache key cannot keep exactly",
        subject(name)
      )));
    }
  }
  Ok(None)
}

/// A string kept as a key (a service, an operation, a model id): at most
/// `limits::MAX_ID_BYTES` bytes of UTF-8, else a `RangeError`.
pub fn identifier(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<String> {
  let text = string(js, value, name)?;
  match text.len() > limits::MAX_ID_BYTES {
    true => Err(Fault::range_error(
      ERR_OUT_OF_RANGE,
      format!(
        "{} must be at most {} bytes of UTF-8. Received {} bytes",
        subject(name),
        limits::MAX_ID_BYTES,
        text.len()
      ),
    )),
    false => Ok(text),
  }
}

/// A cache key's two strings, exactly: a lone surrogate is a `TypeError`;
/// the model id is an identifier.
pub fn cache_key(js: Js<'_>, prompt: Raw<'_>, model_id: Raw<'_>) -> JsResult<(String, String)> {
  let prompt_text = string(js, prompt, "prompt")?;
  let model_text = identifier(js, model_id, "modelId")?;
  let values = [(prompt, "prompt"), (model_id, "modelId")];
  match lone_surrogate_in(js, &[&prompt_text, &model_text], &values)? {
    Some(problem) => Err(Fault::type_error(ERR_INVALID_ARG_VALUE, problem)),
    None => Ok((prompt_text, model_text)),
  }
}
