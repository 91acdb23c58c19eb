//! What the binding keeps per JavaScript environment (the main thread and
//! each worker thread have their own): the property names read on hot paths
//! and a few built-in functions, held by reference in the environment's
//! instance data (`Env::set_instance_data`), made on first use and gone with
//! the environment; and, beside them, what other modules keep per
//! environment (`Held`). All of it comes from the environment's own realm,
//! never from a `vm` context that loaded the package: holding a value of
//! such a context strongly would keep the whole context alive.

use std::cell::{Cell, OnceCell, RefCell};

use napi::Env;

use crate::core::clock;

use super::errors::{Fault, JsResult};
use super::raw::{Js, Kind, Raw, Reference, Weak};

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
  /// Property names read from native code.
  Prop {
    UserId = "userId",
    Type = "type",
    Payload = "payload",
    Priority = "priority",
    Operation = "operation",
    RetryCount = "retryCount",
    MaxRetries = "maxRetries",
    NextRetryAt = "nextRetryAt",
    Message = "message",
    BaseDelayMs = "baseDelayMs",
    MaxDelayMs = "maxDelayMs",
    Jitter = "jitter",
    RetryIf = "retryIf",
    Retryable = "retryable",
    RetryAfterMs = "retryAfterMs",
    Response = "response",
    Headers = "headers",
    RetryAfter = "retry-after",
    RetryAfterMsHeader = "retry-after-ms",
    ResponseHeaders = "responseHeaders",
    Get = "get",
    MaxRetryAfterMs = "maxRetryAfterMs",
    Date = "Date",
    Now = "now",
    Error = "error",
    Again = "again",
    Aborted = "aborted",
    AddEventListener = "addEventListener",
    Status = "status",
    StatusCode = "statusCode",
    LastError = "lastError",
    Cause = "cause",
    Name = "name",
    Code = "code",
    Data = "data",
    ResponseBody = "responseBody",
    FinishReason = "finishReason",
    BlockReason = "blockReason",
    PromptFeedback = "promptFeedback",
    AwsMetadata = "$metadata",
    HttpStatusCode = "httpStatusCode",
    Constructor = "constructor",
    Details = "details",
    OperationName = "operationName",
    CacheKey = "cacheKey",
    Prompt = "prompt",
    ModelId = "modelId",
    AllowSkip = "allowSkip",
    QueueOnFailure = "queueOnFailure",
    QueueType = "queueType",
    DefaultValue = "defaultValue",
    Service = "service",
    SkipThreshold = "skipThreshold",
    Retry = "retry",
    TimeoutMs = "timeoutMs",
    Signal = "signal",
    Dedupe = "dedupe",
    PayloadText = "payloadText",
  }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
  JsonStringify,
  ObjectPrototype,
  String,
  Error,
  TypeError,
}

/// The instance data: an array of the property-name strings, by `Prop`
/// (Node.js 20 cannot reference a string directly), the built-ins, and
/// what other modules hold.
struct EnvNames {
  names: Reference,
  builtins: [Reference; 5],
  held: Held,
}

/// What other binding modules keep per environment, each made on first use.
#[derive(Default)]
pub struct Held {
  /// `cooldownSlot()`'s array, made from this environment's own global
  /// (cooldowns.rs).
  pub cooldown_slot: OnceCell<Reference>,
  /// The OpenTelemetry bridge's handlers, oldest first, held weakly, and
  /// whether the relay subscribed here yet (relay.rs).
  pub relay: RefCell<Vec<Weak>>,
  pub relay_subscribed: Cell<bool>,
  /// Whether `beforeExit` waited for the unwritten writes yet (status.rs).
  pub exit_waited: Cell<bool>,
}

thread_local! {
  /// The instance data of the environment running on this thread, looked up
  /// once: `get_instance_data` takes a process-wide lock, and hot paths ask
  /// for names several times a call. Cleared by the instance data's
  /// finalizer, which runs on this thread when the environment goes.
  static CURRENT: Cell<Option<(usize, &'static EnvNames)>> = const { Cell::new(None) };
}

impl<'env> Js<'env> {
  fn env_names(self) -> JsResult<&'static EnvNames> {
    let key = self.env() as usize;
    if let Some((env, names)) = CURRENT.get() {
      if env == key {
        return Ok(names);
      }
    }
    let env = Env::from_raw(self.env());
    let names = match env.get_instance_data::<EnvNames>()? {
      Some(names) => &*names,
      None => {
        let made = self.make_names()?;
        env.set_instance_data(made, (), |_| CURRENT.set(None))?;
        env
          .get_instance_data::<EnvNames>()?
          .map(|names| &*names)
          .ok_or_else(|| Fault::internal("the environment's names went missing"))?
      }
    };
    CURRENT.set(Some((key, names)));
    Ok(names)
  }

  fn make_names(self) -> JsResult<EnvNames> {
    let names = self.array(Prop::TEXT, |text| self.string(text))?;
    let global = self.global()?;
    let json = self.get(global, c"JSON")?;
    Ok(EnvNames {
      names: self.keep(names)?,
      builtins: [
        self.keep(self.get(json, c"stringify")?)?,
        self.keep(self.get(self.get(global, c"Object")?, c"prototype")?)?,
        self.keep(self.get(global, c"String")?)?,
        self.keep(self.get(global, c"Error")?)?,
        self.keep(self.get(global, c"TypeError")?)?,
      ],
      held: Held::default(),
    })
  }

  /// What other binding modules keep in this environment.
  pub fn held(self) -> JsResult<&'static Held> {
    Ok(&self.env_names()?.held)
  }

  pub fn name(self, name: Prop) -> JsResult<Raw<'env>> {
    let names = self.value_of(self.env_names()?.names)?;
    self.element(names, name as u32)
  }

  pub fn builtin(self, builtin: Builtin) -> JsResult<Raw<'env>> {
    self.value_of(self.env_names()?.builtins[builtin as usize])
  }

  /// A property by one of the names kept per environment (no key string is
  /// made or interned per call).
  pub fn get_name(self, object: Raw<'env>, name: Prop) -> JsResult<Raw<'env>> {
    let key = self.name(name)?;
    self.get_by(object, key)
  }

  /// Several properties by the names kept per environment, the names
  /// array looked up once for all of them (a hot path reads a dozen).
  pub fn get_names<const N: usize>(
    self,
    object: Raw<'env>,
    names: [Prop; N],
  ) -> JsResult<[Raw<'env>; N]> {
    let table = self.value_of(self.env_names()?.names)?;
    let mut values = [self.undefined(); N];
    for (value, name) in values.iter_mut().zip(names) {
      *value = self.get_by(object, self.element(table, name as u32)?)?;
    }
    Ok(values)
  }

  /// An `Error` by brand (any realm) or by prototype (`instanceof Error`).
  pub fn is_error(self, value: Raw<'env>) -> bool {
    if self.has_error_brand(value) {
      return true;
    }
    if !matches!(self.kind(value), Kind::Object | Kind::Function) {
      return false;
    }
    let Ok(error) = self.builtin(Builtin::Error) else {
      return false;
    };
    let is_instance = self.instance_of(value, error);
    // A hostile Symbol.hasInstance may throw; that only means "not an Error".
    self.take_exception();
    is_instance
  }

  /// The JavaScript clock, `Date.now()`, looked up on each call so that a
  /// test's fake timers (which replace the global `Date`) move our clock
  /// too; the system clock if that fails.
  pub fn now_ms(self) -> u64 {
    let read = || -> JsResult<Option<f64>> {
      let date = self.get_name(self.global()?, Prop::Date)?;
      let now = self.get_name(date, Prop::Now)?;
      Ok(
        self
          .call_on(date, now, &[])?
          .ok()
          .map(|ms| self.read_number(ms)),
      )
    };
    match read() {
      Ok(Some(ms)) => clock::from_js(ms),
      _ => {
        self.take_exception();
        clock::now_ms()
      }
    }
  }

  /// `String(value)`, which (unlike ToString) also works for symbols.
  pub fn to_display_string(self, value: Raw<'env>) -> String {
    if self.kind(value) == Kind::String {
      if let Ok(text) = self.read_string(value) {
        return text;
      }
    }
    let string = self.builtin(Builtin::String);
    match string.and_then(|f| self.call(f, &[value])) {
      Ok(Ok(text)) if self.kind(text) == Kind::String => self.read_string(text).unwrap_or_default(),
      _ => "[unprintable value]".to_string(),
    }
  }

  pub fn json_stringify(self, value: Raw<'env>) -> JsResult<Result<Raw<'env>, Raw<'env>>> {
    let stringify = self.builtin(Builtin::JsonStringify)?;
    self.call(stringify, &[value])
  }

  /// Whether JavaScript can still run here (it cannot once the environment
  /// is being torn down: a worker thread's `process.exit` or `terminate()`).
  pub fn can_run_js(self) -> bool {
    let ran = self
      .builtin(Builtin::String)
      .and_then(|string| self.call(string, &[self.undefined()]))
      .is_ok_and(|called| called.is_ok());
    self.take_exception();
    ran
  }
}
