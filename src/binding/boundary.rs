//! The one place where faults become JavaScript exceptions: `boundary` runs
//! a binding function's body, turning a `Fault` (and any Rust panic) into a
//! thrown `TypeError`/`RangeError`/`Error` with a `code` property.

use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::Env;

use super::errors::{Fault, JsResult};
use super::raw::{Js, Raw};

impl Fault {
  /// The JavaScript error object for this fault (for a pending exception:
  /// the exception itself, taken off the environment).
  pub fn into_value(self, js: Js) -> Raw {
    match self {
      Fault::Raise {
        class,
        code,
        message,
      } => js.new_error(class, Some(code), &message),
      Fault::Pending => js
        .take_exception()
        .unwrap_or_else(|| Fault::internal("a JavaScript exception went missing").into_value(js)),
    }
  }
}

/// Runs a binding function's body: a panic becomes a thrown internal error
/// instead of unwinding into Node, and a `Fault` becomes a thrown exception.
pub fn boundary<T>(env: Env, body: impl FnOnce(Js) -> JsResult<T>) -> napi::Result<T> {
  let js = Js::new(env.raw());
  let outcome = catch_unwind(AssertUnwindSafe(|| body(js))).unwrap_or_else(|panic| {
    let what = panic
      .downcast_ref::<&str>()
      .map(|s| s.to_string())
      .or_else(|| panic.downcast_ref::<String>().cloned())
      .unwrap_or_else(|| "a Rust panic".to_string());
    Err(Fault::internal(what))
  });
  outcome.map_err(|fault| {
    if !matches!(fault, Fault::Pending) || !js.exception_pending() {
      let error = fault.into_value(js);
      js.throw(error);
    }
    napi::Error::new(napi::Status::PendingException, "")
  })
}
