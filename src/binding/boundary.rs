//! The one place where faults become JavaScript exceptions: `boundary` runs
//! a binding function's body, turning a `Fault` (and any Rust panic) into a
//! thrown `TypeError`/`RangeError`/`Error` with a `code` property.

use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::Env;

use super::errors::{Fault, JsResult, ERR_INVALID_ARG_VALUE};
use super::names::Builtin;
use super::raw::{Js, Kind, Raw};

impl Fault {
  /// The JavaScript error object for this fault (for a pending exception:
  /// the exception itself, taken off the environment).
  pub fn into_value<'env>(self, js: Js<'env>) -> Raw<'env> {
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
/// `'env` is the borrow of the `Env` napi-rs's glue lent the `#[napi]`
/// function, which ends when its callback does, so what the body returns
/// may hold handles (`Raw<'env>`) for the glue to convert, and no more.
pub fn boundary<'env, T>(
  env: &'env Env,
  body: impl FnOnce(Js<'env>) -> JsResult<T>,
) -> napi::Result<T> {
  // SAFETY: every caller of `boundary` is a `#[napi]` function (or a
  // promise reaction napi-rs runs) passing on the `Env` napi-rs's glue lent
  // it, the environment of the N-API callback running now; that glue drops
  // the `Env` when the callback returns, so the borrow `'env` of `js` and
  // of every handle read through it ends within the callback.
  let js = unsafe { Js::new(env) };
  let outcome = catch_unwind(AssertUnwindSafe(|| body(js))).unwrap_or_else(|panic| {
    let what = panic
      .downcast_ref::<&str>()
      .map(|s| s.to_string())
      .or_else(|| panic.downcast_ref::<String>().cloned())
      .unwrap_or_else(|| "a Rust panic".to_string());
    Err(Fault::internal(what))
  });
  outcome.map_err(|fault| {
    // An exception already pending came from reading an argument: the
    // binding calls user functions only where it catches what they throw.
    let from_reading = matches!(fault, Fault::Pending);
    let error = fault.into_value(js);
    if from_reading {
      coded_if_unreadable(js, error);
    }
    js.throw(error);
    napi::Error::new(napi::Status::PendingException, "")
  })
}

/// An argument that cannot even be read (a revoked `Proxy` as an options
/// bag or a job, a getter or trap that throws) makes the engine throw a
/// `TypeError` with no `code`: it gets `ERR_INVALID_ARG_VALUE`, like every
/// other bad argument. Told by its type and where it came from, never by
/// the engine's message text.
fn coded_if_unreadable(js: Js<'_>, error: Raw<'_>) {
  let is_type_error = js
    .builtin(Builtin::TypeError)
    .is_ok_and(|type_error| js.instance_of(error, type_error))
    && js
      .get(error, c"code")
      .is_ok_and(|code| js.kind(code) == Kind::Undefined);
  js.take_exception();
  if is_type_error {
    if let Ok(code) = js.string(ERR_INVALID_ARG_VALUE) {
      let _ = js.set(error, c"code", code);
    }
    js.take_exception();
  }
}
