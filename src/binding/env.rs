//! What the binding keeps per JavaScript environment (the main thread and
//! each worker have their own): property names, a few built-in functions and
//! the glue functions of `glue.js`, all held by reference and made on first
//! use. Environments are per thread in Node.js, so a thread-local holds them.

use std::cell::RefCell;
use std::ptr;

use napi::sys;

use super::errors::{Fault, JsResult};
use crate::core::messages::{MSG_DEFAULT, MSG_SUCCESS};

use super::execute::{execute_checked, on_rejected, store_success};
use super::js::{Js, Raw};
use super::retry::next_attempt;
use super::service::service_callbacks;
use super::timers::{after_callback, cancel_callback};
use super::worker::worker_callbacks;

macro_rules! named {
  ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
    $(#[$meta])*
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum $name { $($variant),+ }

    impl $name {
      const TEXT: &'static [&'static str] = &[$($text),+];
    }
  };
}

named!(
  /// Property names read on hot paths.
  Prop {
    OperationName = "operationName",
    UserId = "userId",
    CacheKey = "cacheKey",
    AllowSkip = "allowSkip",
    QueueOnFailure = "queueOnFailure",
    DefaultValue = "defaultValue",
    Service = "service",
    Prompt = "prompt",
    ModelId = "modelId",
    Type = "type",
    Payload = "payload",
    Priority = "priority",
    Operation = "operation",
    RetryCount = "retryCount",
    MaxRetries = "maxRetries",
    NextRetryAt = "nextRetryAt",
    Message = "message",
    Then = "then",
    Retry = "retry",
    SkipThreshold = "skipThreshold",
    BaseDelayMs = "baseDelayMs",
    MaxDelayMs = "maxDelayMs",
    Jitter = "jitter",
    RetryIf = "retryIf",
    TimeoutMs = "timeoutMs",
    Signal = "signal",
    Dedupe = "dedupe",
    Retryable = "retryable",
    RetryAfterMs = "retryAfterMs",
    Response = "response",
    Headers = "headers",
    RetryAfter = "retry-after",
    RetryAfterTitle = "Retry-After",
    Date = "Date",
    Now = "now",
  }
);

named!(
  /// The functions `glue.js` returns.
  Glue {
    Settle = "settle",
    Succeeded = "succeeded",
    FellBack = "fellBack",
    Failed = "failed",
    FallbackResult = "fallbackResult",
    CachedResponse = "cachedResponse",
    CacheStats = "cacheStats",
    Job = "job",
    QueueStats = "queueStats",
    Failure = "failure",
    ServiceStats = "serviceStats",
    RunService = "runService",
    Attempts = "attempts",
    ExecuteWithFallback = "executeWithFallback",
    StartWorker = "startWorker",
    Inflight = "inflight",
    Track = "track",
    BreakerStatus = "breakerStatus",
  }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
  JsonStringify,
  JsonParse,
  String,
  Error,
}

const GLUE_SOURCE: &str = include_str!("glue.js");

/// The options `executeWithFallback` reads, in this order (the glue reads
/// them and passes them on as arguments).
pub const FALLBACK_OPTIONS: [Prop; 12] = [
  Prop::OperationName,
  Prop::UserId,
  Prop::CacheKey,
  Prop::AllowSkip,
  Prop::QueueOnFailure,
  Prop::DefaultValue,
  Prop::Service,
  Prop::SkipThreshold,
  Prop::Retry,
  Prop::TimeoutMs,
  Prop::Signal,
  Prop::Dedupe,
];

struct EnvCache {
  env: sys::napi_env,
  /// An array of the property-name strings, by `Prop` (Node.js 20 cannot
  /// reference a string directly).
  names: sys::napi_ref,
  builtins: [sys::napi_ref; 4],
  glue: Vec<sys::napi_ref>,
}

thread_local! {
  static CACHE: RefCell<Option<EnvCache>> = const { RefCell::new(None) };
}

impl Js {
  fn with_cache<T>(self, pick: impl FnOnce(&EnvCache) -> T) -> JsResult<T> {
    let ready = CACHE.with(|cell| cell.borrow().as_ref().is_some_and(|c| c.env == self.env()));
    if !ready {
      // Made outside the borrow: building it runs JavaScript.
      let cache = self.build_cache()?;
      CACHE.with(|cell| *cell.borrow_mut() = Some(cache));
    }
    CACHE.with(|cell| {
      let cache = cell.borrow();
      cache
        .as_ref()
        .map(pick)
        .ok_or_else(|| Fault::internal("environment cache missing"))
    })
  }

  fn value_of(self, reference: sys::napi_ref) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    self.check(unsafe { sys::napi_get_reference_value(self.env(), reference, &mut value) })?;
    Ok(Raw(value))
  }

  fn keep(self, value: Raw) -> JsResult<sys::napi_ref> {
    let mut reference = ptr::null_mut();
    self.check(unsafe { sys::napi_create_reference(self.env(), value.0, 1, &mut reference) })?;
    Ok(reference)
  }

  pub fn name(self, name: Prop) -> JsResult<Raw> {
    let names = self.value_of(self.with_cache(|c| c.names)?)?;
    let mut key = ptr::null_mut();
    self.check(unsafe { sys::napi_get_element(self.env(), names.0, name as u32, &mut key) })?;
    Ok(Raw(key))
  }

  pub fn builtin(self, builtin: Builtin) -> JsResult<Raw> {
    let reference = self.with_cache(|c| c.builtins[builtin as usize])?;
    self.value_of(reference)
  }

  /// One of the glue's values itself (not called).
  pub fn glue_value(self, function: Glue) -> JsResult<Raw> {
    let reference = self.with_cache(|c| c.glue[function as usize])?;
    self.value_of(reference)
  }

  /// Calls a glue function; a throw there is a bug of ours, not the caller's.
  pub fn glue(self, function: Glue, args: &[Raw]) -> JsResult<Raw> {
    let reference = self.with_cache(|c| c.glue[function as usize])?;
    let function = self.value_of(reference)?;
    match self.call(function, args)? {
      Ok(value) => Ok(value),
      Err(thrown) => {
        self.throw(thrown);
        Err(Fault::Pending)
      }
    }
  }

  fn build_cache(self) -> JsResult<EnvCache> {
    let names = self.array(Prop::TEXT, |text| self.string(text))?;
    let names = self.keep(names)?;
    let option_names = self.array(&FALLBACK_OPTIONS, |prop| {
      self.string(Prop::TEXT[*prop as usize])
    })?;
    let global = self.global()?;
    let json = self.get(global, c"JSON")?;
    let builtins = [
      self.keep(self.get(json, c"stringify")?)?,
      self.keep(self.get(json, c"parse")?)?,
      self.keep(self.get(global, c"String")?)?,
      self.keep(self.get(global, c"Error")?)?,
    ];
    let factory = self.run_script(GLUE_SOURCE)?;
    let store = self.native_function("storeSuccess", store_success)?;
    let rejected = self.native_function("onRejected", on_rejected)?;
    let service = self.object()?;
    for (name, callback) in service_callbacks() {
      let function = self.native_function(name, callback)?;
      self.define(service, name, function)?;
    }
    let retry = self.object()?;
    self.define(retry, "next", self.native_function("next", next_attempt)?)?;
    self.define(
      retry,
      "after",
      self.native_function("after", after_callback)?,
    )?;
    self.define(
      retry,
      "cancel",
      self.native_function("cancel", cancel_callback)?,
    )?;
    let worker = self.object()?;
    for (name, callback) in worker_callbacks() {
      let function = self.native_function(name, callback)?;
      self.define(worker, name, function)?;
    }
    let messages = self.object()?;
    self.define(messages, "success", self.string(MSG_SUCCESS)?)?;
    self.define(messages, "fallback", self.string(MSG_DEFAULT)?)?;
    let execute = self.native_function("executeWithFallback", execute_checked)?;
    let arguments = [
      store,
      rejected,
      service,
      retry,
      worker,
      messages,
      execute,
      option_names,
    ];
    let table = match self.call(factory, &arguments)? {
      Ok(table) => table,
      Err(_) => {
        return Err(Fault::internal(
          "could not make the binding's glue functions",
        ))
      }
    };
    let glue = Glue::TEXT
      .iter()
      .map(|text| {
        let key = self.string(text)?;
        let mut value = ptr::null_mut();
        self.check(unsafe { sys::napi_get_property(self.env(), table.0, key.0, &mut value) })?;
        self.keep(Raw(value))
      })
      .collect::<JsResult<Vec<_>>>()?;
    Ok(EnvCache {
      env: self.env(),
      names,
      builtins,
      glue,
    })
  }
}
