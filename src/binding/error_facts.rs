//! What a thrown value says about itself, read carefully: its HTTP status
//! (cooldowns and failure classes read it) and the facts the core
//! classifies (`core::failure_class`). Nothing here throws for any value:
//! a getter that throws, a revoked Proxy or a primitive only means less is
//! known. `classifyError` is the built-in `classify` (lib/classify.js).

use napi::Env;
use napi_derive::napi;

use crate::core::cooldown;
use crate::core::failure_class::{self, ErrorFacts};

use super::boundary::boundary;
use super::errors::JsResult;
use super::names::Prop;
use super::raw::{Js, Kind, Raw};
use super::retry::is_object;

/// How deep the wrapped errors (`lastError`, `cause`) are followed.
const MAX_DEPTH: usize = 3;
/// The most of one text that is looked into, in characters.
const MAX_TEXT_CHARS: usize = 4096;

/// `value[name]` when `value` is an object and the property can be read.
pub fn property<'env>(js: Js<'env>, value: Raw<'env>, name: Prop) -> Option<Raw<'env>> {
  if !is_object(js, value) {
    return None;
  }
  match js.get_name(value, name) {
    Ok(found) => Some(found),
    Err(_) => {
      js.take_exception();
      None
    }
  }
}

/// The HTTP status an error carries: the first readable of `status`,
/// `statusCode`, `response.status`, `response.statusCode` (a number or a
/// numeric string). A getter that throws ends the search with none.
pub fn status_of(js: Js<'_>, error: Raw<'_>) -> Option<u16> {
  let read = || -> JsResult<Option<u16>> {
    if !is_object(js, error) {
      return Ok(None);
    }
    let response = js.get_name(error, Prop::Response)?;
    for holder in [error, response] {
      if !is_object(js, holder) {
        continue;
      }
      for name in [Prop::Status, Prop::StatusCode] {
        let value = js.get_name(holder, name)?;
        let status = match js.kind(value) {
          Kind::Number => cooldown::status_from_number(js.read_number(value)),
          Kind::String => cooldown::status_from_text(&js.read_string(value)?),
          _ => None,
        };
        if status.is_some() {
          return Ok(status);
        }
      }
    }
    Ok(None)
  };
  read().unwrap_or_else(|_| {
    js.take_exception();
    None
  })
}

/// The class of `error` as the built-in classifier sees it: its index in
/// `FailureClass::ALL` (lib/classify.js names it). Never throws for any
/// `error`.
#[napi(ts_args_type = "error: unknown")]
pub fn classify_error(env: &Env, error: Raw<'_>) -> napi::Result<u32> {
  boundary(env, |js| {
    Ok(failure_class::classify(&facts_of(js, error, 0)).index())
  })
}

/// The facts `core::failure_class` classifies, read off `error` and the
/// bodies SDKs attach to it (`error`, `error.error`, `data`, `data.error`),
/// then off the errors it wraps (`lastError`, `cause`), `depth` levels in.
fn facts_of(js: Js<'_>, error: Raw<'_>, depth: usize) -> ErrorFacts {
  let mut facts = ErrorFacts::default();
  if js.kind(error) == Kind::String {
    if let Some(text) = text(js, error) {
      facts.messages.push(text);
    }
    return facts;
  }
  if !is_object(js, error) {
    return facts;
  }
  facts.status = status_of(js, error).or_else(|| aws_status(js, error));
  for name in [
    Prop::Name,
    Prop::Code,
    Prop::Type,
    Prop::Status,
    Prop::FinishReason,
    Prop::BlockReason,
  ] {
    read_token(js, error, name, &mut facts);
  }
  // The class's name: the OpenAI and Anthropic SDKs leave `name` as 'Error'.
  if let Some(class) = property(js, error, Prop::Constructor) {
    if js.kind(class) == Kind::Function {
      read_token(js, class, Prop::Name, &mut facts);
    }
  }
  for holder in [Some(error), property(js, error, Prop::Response)] {
    if let Some(feedback) = holder.and_then(|holder| property(js, holder, Prop::PromptFeedback)) {
      read_token(js, feedback, Prop::BlockReason, &mut facts);
    }
  }
  for name in [Prop::Message, Prop::ResponseBody] {
    read_message(js, error, name, &mut facts);
  }
  for body in bodies(js, error) {
    for name in [Prop::Code, Prop::Type, Prop::Status] {
      read_token(js, body, name, &mut facts);
    }
    read_message(js, body, Prop::Message, &mut facts);
  }
  // A gRPC status code is told apart from other numeric codes (a
  // DOMException's) by the `details` text a gRPC error has beside it:
  // read only for an error with such a code.
  if facts.grpc.is_some()
    && !property(js, error, Prop::Details).is_some_and(|details| js.kind(details) == Kind::String)
  {
    facts.grpc = None;
  }
  if depth < MAX_DEPTH {
    for name in [Prop::LastError, Prop::Cause] {
      if let Some(inner) = property(js, error, name) {
        if is_object(js, inner) || js.kind(inner) == Kind::String {
          facts.inner.push(facts_of(js, inner, depth + 1));
        }
      }
    }
  }
  facts
}

/// The error bodies an SDK error carries: OpenAI's `error` (`{ code, type,
/// message }`), Anthropic's `error.error` (`{ type, message }`), Google's
/// `error` (`{ code, status, message }`), the AI SDK's `data` and
/// `data.error`.
fn bodies<'env>(js: Js<'env>, error: Raw<'env>) -> Vec<Raw<'env>> {
  let mut found = Vec::new();
  for outer in [Prop::Error, Prop::Data] {
    let Some(body) = property(js, error, outer).filter(|body| is_object(js, *body)) else {
      continue;
    };
    found.push(body);
    if let Some(inner) = property(js, body, Prop::Error).filter(|inner| is_object(js, *inner)) {
      found.push(inner);
    }
  }
  found
}

/// Amazon's `$metadata.httpStatusCode` (the AWS SDK v3).
fn aws_status(js: Js<'_>, error: Raw<'_>) -> Option<u16> {
  let metadata = property(js, error, Prop::AwsMetadata)?;
  let status = property(js, metadata, Prop::HttpStatusCode)?;
  (js.kind(status) == Kind::Number)
    .then(|| cooldown::status_from_number(js.read_number(status)))
    .flatten()
}

/// `holder[name]` as an identifier: a string (a numeric string is a
/// status), or for `code` and `status` a number: an HTTP status (100 to
/// 599, a body's `code: 429`) or a gRPC code (1 to 16; kept only for an
/// error with gRPC's `details`).
fn read_token(js: Js<'_>, holder: Raw<'_>, name: Prop, facts: &mut ErrorFacts) {
  let Some(value) = property(js, holder, name) else {
    return;
  };
  match js.kind(value) {
    Kind::String => {
      let Some(token) = text(js, value) else {
        return;
      };
      match cooldown::status_from_text(&token) {
        Some(status) => {
          facts.status.get_or_insert(status);
        }
        None if token.len() <= 64 => facts.tokens.push(token),
        None => {}
      }
    }
    Kind::Number if matches!(name, Prop::Code | Prop::Status) => {
      let number = js.read_number(value);
      if let Some(status) = cooldown::status_from_number(number).filter(|s| *s < 600) {
        facts.status.get_or_insert(status);
      } else if number.fract() == 0.0 && (1.0..=16.0).contains(&number) {
        facts.grpc.get_or_insert(number as u8);
      }
    }
    _ => {}
  }
}

fn read_message(js: Js<'_>, holder: Raw<'_>, name: Prop, facts: &mut ErrorFacts) {
  if let Some(value) = property(js, holder, name) {
    if js.kind(value) == Kind::String {
      if let Some(text) = text(js, value) {
        facts.messages.push(text);
      }
    }
  }
}

/// A string's text, its first `MAX_TEXT_CHARS` characters.
fn text(js: Js<'_>, value: Raw<'_>) -> Option<String> {
  match js.read_string(value) {
    Ok(mut text) => {
      if let Some((cut, _)) = text.char_indices().nth(MAX_TEXT_CHARS) {
        text.truncate(cut);
      }
      Some(text)
    }
    Err(_) => {
      js.take_exception();
      None
    }
  }
}
