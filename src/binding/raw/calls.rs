//! Calling into JavaScript, and waiting for what it hands back to settle.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::{CallbackContext, FromNapiValue, PromiseRaw, Unknown};
use napi::sys;

use super::js::{Js, Raw};
use crate::binding::errors::{Fault, JsResult};

/// How a value handed back by JavaScript ended: a promise's outcome, or a
/// plain value (which counts as fulfilled).
#[derive(Clone, Copy, Debug)]
pub enum Settled<'env> {
  Fulfilled(Raw<'env>),
  Rejected(Raw<'env>),
}

impl<'env> Js<'env> {
  /// Calls `function` with `this` undefined. A throw comes back as
  /// `Err(thrown value)`, with the exception cleared.
  pub fn call(
    self,
    function: Raw<'env>,
    args: &[Raw<'env>],
  ) -> JsResult<Result<Raw<'env>, Raw<'env>>> {
    self.call_on(self.undefined(), function, args)
  }

  /// Calls `function` with `this`; a throw as in `call`.
  pub fn call_on(
    self,
    this: Raw<'env>,
    function: Raw<'env>,
    args: &[Raw<'env>],
  ) -> JsResult<Result<Raw<'env>, Raw<'env>>> {
    let mut result = ptr::null_mut();
    // SAFETY: `self.env` is the running callback's environment, `this`,
    // `function` and each of `args` live handles of it (module
    // invariants); `Raw` is `repr(transparent)` over `napi_value`, so
    // `args` is `args.len()` handles in a row, borrowed for the call (N-API
    // does not keep the pointer). The call writes only the result's handle,
    // to the local `result`.
    let status = unsafe {
      sys::napi_call_function(
        self.env,
        this.0,
        function.0,
        args.len(),
        args.as_ptr().cast(),
        &mut result,
      )
    };
    self.ran(status, result, "calling a function")
  }

  /// `new constructor(...args)`; a throw as in `call`.
  pub fn construct(
    self,
    constructor: Raw<'env>,
    args: &[Raw<'env>],
  ) -> JsResult<Result<Raw<'env>, Raw<'env>>> {
    let mut result = ptr::null_mut();
    // SAFETY: as in `call_on`: the environment and every handle are the
    // running callback's, `args` is `args.len()` handles in a row
    // (`repr(transparent)`) borrowed for the call, and the new object's
    // handle is written only to the local `result`.
    let status = unsafe {
      sys::napi_new_instance(
        self.env,
        constructor.0,
        args.len(),
        args.as_ptr().cast(),
        &mut result,
      )
    };
    self.ran(status, result, "calling a constructor")
  }

  /// What a call into JavaScript ended with: its value, or what it threw
  /// (taken off the environment).
  fn ran(
    self,
    status: sys::napi_status,
    result: sys::napi_value,
    what: &str,
  ) -> JsResult<Result<Raw<'env>, Raw<'env>>> {
    if status == sys::Status::napi_ok {
      return Ok(Ok(Raw::of(result)));
    }
    match self.take_exception() {
      Some(thrown) => Ok(Err(thrown)),
      None => Err(Fault::internal(format!(
        "{what} failed with status {status}"
      ))),
    }
  }

  /// Runs `on_settled` on this thread once `value` settles: at once for a
  /// plain value, from the promise's reactions for a promise.
  pub fn when_settled(
    self,
    value: Raw<'env>,
    on_settled: impl for<'a> FnOnce(Js<'a>, Settled<'a>) + 'static,
  ) -> JsResult<()> {
    if !self.is_promise(value) {
      on_settled(self, Settled::Fulfilled(value));
      return Ok(());
    }
    // SAFETY: `self.env` is the running callback's environment and `value`
    // a live handle of it (module invariants), just checked to be a
    // promise, which is what `PromiseRaw` wraps; the conversion only stores
    // the two.
    let promise = unsafe { PromiseRaw::<Unknown<'_>>::from_napi_value(self.env, value.0) }?;
    // Both reactions share the one continuation; only one of them runs.
    let slot = Rc::new(Cell::new(Some(on_settled)));
    let on_rejected = slot.clone();
    promise
      .then(move |context| {
        settle(&slot, context, Settled::Fulfilled);
        Ok(())
      })?
      .catch(move |context: CallbackContext<Unknown<'_>>| {
        settle(&on_rejected, context, Settled::Rejected);
        Ok(())
      })?;
    Ok(())
  }
}

/// Runs the continuation of `when_settled`, if the other reaction did not,
/// from inside a promise reaction.
fn settle<'value, F: for<'a> FnOnce(Js<'a>, Settled<'a>)>(
  slot: &Cell<Option<F>>,
  context: CallbackContext<Unknown<'value>>,
  outcome: fn(Raw<'value>) -> Settled<'value>,
) {
  if let Some(on_settled) = slot.take() {
    // SAFETY: napi-rs runs this reaction as an N-API callback on this
    // thread and hands it that callback's environment and argument; `js`
    // borrows the context's `Env`, a local of this call, and `on_settled`
    // (which must take any `'a`) sees the argument only as a `Raw` of that
    // borrow, whatever lifetime napi-rs's `Unknown<'value>` claims.
    let js = unsafe { Js::new(&context.env) };
    on_settled(js, outcome(context.value.into()));
  }
}
