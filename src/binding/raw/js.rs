//! The two types every other file of `raw` builds on: `Raw`, a handle of
//! the running callback, and `Js`, that callback's environment; and the
//! three helpers (`out0`, `out1`, `out2`) that make the N-API calls of the
//! common shape, each in one `unsafe` block.

use std::marker::PhantomData;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, Unknown, ValidateNapiValue};
use napi::{sys, Env, JsValue, ValueType};

use crate::binding::errors::{Fault, JsResult};

/// A JavaScript value handle, as received from or returned to JavaScript,
/// valid for `'env`: the callback whose handle scope made it. The borrow
/// keeps it from outliving that callback (it cannot be stored in a
/// `'static` place), and the raw pointer keeps it `!Send` and `!Sync`.
/// `repr(transparent)`: a slice of `Raw` is passed to N-API as a slice of
/// `napi_value`. Its fields are private to `raw`: a `Raw` is only made
/// there, from a handle of the running callback (or from napi-rs's
/// `Unknown<'env>`, which is one).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw<'env>(pub(super) sys::napi_value, PhantomData<&'env ()>);

impl Raw<'_> {
  /// A handle N-API or napi-rs's glue just handed the running callback; the
  /// caller, in this module, picks the `'env` of the `Js` that received it.
  pub(super) fn of(value: sys::napi_value) -> Self {
    Raw(value, PhantomData)
  }
}

// Both conversions pass the handle through unchanged and never dereference
// it; napi-rs's generated glue calls them with a live handle of the running
// callback, which is the `Raw` invariant.
impl FromNapiValue for Raw<'_> {
  unsafe fn from_napi_value(_env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
    Ok(Raw::of(value))
  }
}

impl ToNapiValue for Raw<'_> {
  unsafe fn to_napi_value(_env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
    Ok(value.0)
  }
}

impl TypeName for Raw<'_> {
  fn type_name() -> &'static str {
    "unknown"
  }
  fn value_type() -> ValueType {
    ValueType::Unknown
  }
}

impl ValidateNapiValue for Raw<'_> {}

impl<'env> From<Unknown<'env>> for Raw<'env> {
  fn from(value: Unknown<'env>) -> Self {
    Raw::of(value.raw())
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
  Undefined,
  Null,
  Boolean,
  Number,
  String,
  Symbol,
  Object,
  Function,
  External,
  BigInt,
}

/// The environment of the callback running now, for `'env`: the length of
/// that callback, which every `Raw` it reads or makes shares.
#[derive(Clone, Copy)]
pub struct Js<'env> {
  pub(super) env: sys::napi_env,
  scope: PhantomData<&'env ()>,
}

/// What may be passed by value to the N-API functions `Js::out1` and
/// `Js::out2` call: numbers, and handles (which only ever come from a
/// `Raw`'s field or an earlier call of the same callback). Sealed, so that
/// no pointer to memory of ours can be passed where N-API reads a value.
pub(super) trait Arg: Copy {}
impl Arg for sys::napi_value {}
impl Arg for u32 {}
impl Arg for usize {}
impl Arg for f64 {}

// napi-sys's functions are Rust-ABI `unsafe fn` wrappers over the symbols
// napi's default `dyn-symbols` loads from the host at start-up.
pub(super) type Out0<T> = unsafe fn(sys::napi_env, *mut T) -> sys::napi_status;
pub(super) type Out1<A, T> = unsafe fn(sys::napi_env, A, *mut T) -> sys::napi_status;
pub(super) type Out2<A, B, T> = unsafe fn(sys::napi_env, A, B, *mut T) -> sys::napi_status;

impl<'env> Js<'env> {
  /// # Safety
  ///
  /// `env` must be the environment of the N-API callback (or
  /// threadsafe-function call, or promise reaction) running on this thread
  /// now, borrowed for no longer than that callback runs (the `Env` napi-rs
  /// handed it, or a local of it): every call made through the `Js` uses
  /// `env` as that callback's, and every `Raw` it reads or makes is a
  /// handle of that callback's handle scope, which the borrow `'env` keeps
  /// from outliving it.
  pub unsafe fn new(env: &'env Env) -> Self {
    Self {
      env: env.raw(),
      scope: PhantomData,
    }
  }

  pub fn env(self) -> sys::napi_env {
    self.env
  }

  /// Calls `call`, an N-API function that takes only the environment and
  /// writes its answer to `out`; returns the status and what `out` holds
  /// after the call (`out` as given if the call wrote nothing).
  #[inline]
  pub(super) fn out0<T>(self, call: Out0<T>, mut out: T) -> (sys::napi_status, T) {
    // SAFETY: `call` is one of napi-sys's N-API functions, named by the
    // caller (this helper is private to the raw module): it reads the
    // environment, may write one `T` (a plain C type fixed by its
    // signature) through the pointer, and keeps no pointer. `self.env` is
    // the running callback's environment (`Js::new`'s contract), and `&mut
    // out` is a local, aligned, initialized `T` that outlives the call.
    let status = unsafe { call(self.env, &mut out) };
    (status, out)
  }

  /// As `out0`, for an N-API function that also takes one argument by value.
  #[inline]
  pub(super) fn out1<A: Arg, T>(
    self,
    call: Out1<A, T>,
    arg: A,
    mut out: T,
  ) -> (sys::napi_status, T) {
    // SAFETY: `call` is one of napi-sys's N-API functions, named by the
    // caller (this helper is private to the raw module): it reads `arg` by
    // value, may write one `T` (a plain C type fixed by its signature)
    // through the pointer, and keeps no pointer. `self.env` is the running
    // callback's environment (`Js::new`'s contract); `arg` is a number or a
    // handle live in that callback's scope (the `Raw` invariant; N-API
    // answers a null one with a status); `&mut out` is a local, aligned,
    // initialized `T` that outlives the call.
    let status = unsafe { call(self.env, arg, &mut out) };
    (status, out)
  }

  /// As `out0`, for an N-API function that also takes two arguments by value.
  #[inline]
  pub(super) fn out2<A: Arg, B: Arg, T>(
    self,
    call: Out2<A, B, T>,
    a: A,
    b: B,
    mut out: T,
  ) -> (sys::napi_status, T) {
    // SAFETY: as in `out1`, for two arguments: `call` is an N-API function
    // named by the caller that reads `a` and `b` by value (numbers, or
    // handles live in the running callback's scope, or null where the call
    // accepts null) and may write one `T` through the pointer to the local
    // `out`, keeping no pointer; `self.env` is the running callback's.
    let status = unsafe { call(self.env, a, b, &mut out) };
    (status, out)
  }

  /// `out1` that turns a failed status into a fault.
  pub(super) fn read1<A: Arg, T>(self, call: Out1<A, T>, arg: A, out: T) -> JsResult<T> {
    let (status, out) = self.out1(call, arg, out);
    self.check(status).map(|()| out)
  }

  /// `out2` that turns a failed status into a fault.
  pub(super) fn read2<A: Arg, B: Arg, T>(
    self,
    call: Out2<A, B, T>,
    a: A,
    b: B,
    out: T,
  ) -> JsResult<T> {
    let (status, out) = self.out2(call, a, b, out);
    self.check(status).map(|()| out)
  }

  /// A yes/no N-API question about one value: no when the call fails.
  pub(super) fn flag(self, call: Out1<sys::napi_value, bool>, value: Raw<'env>) -> bool {
    let (status, yes) = self.out1(call, value.0, false);
    status == sys::Status::napi_ok && yes
  }

  pub(super) fn check(self, status: sys::napi_status) -> JsResult<()> {
    if status == sys::Status::napi_ok {
      return Ok(());
    }
    if self.exception_pending() {
      return Err(Fault::Pending);
    }
    Err(Fault::internal(format!(
      "N-API call failed with status {status}"
    )))
  }

  pub fn exception_pending(self) -> bool {
    self.out0(sys::napi_is_exception_pending, false).1
  }

  /// Takes the pending exception off the environment.
  pub fn take_exception(self) -> Option<Raw<'env>> {
    if !self.exception_pending() {
      return None;
    }
    let (status, value) = self.out0(sys::napi_get_and_clear_last_exception, ptr::null_mut());
    (status == sys::Status::napi_ok).then_some(Raw::of(value))
  }

  pub fn throw(self, error: Raw<'env>) {
    // SAFETY: `self.env` is the running callback's environment (`Js::new`'s
    // contract) and `error` a live handle of that callback (the `Raw`
    // invariant); `napi_throw` takes no pointer of ours and only sets the
    // environment's pending exception, which the callback then returns into.
    unsafe { sys::napi_throw(self.env, error.0) };
  }

  pub fn undefined(self) -> Raw<'env> {
    Raw::of(self.out0(sys::napi_get_undefined, ptr::null_mut()).1)
  }

  pub fn global(self) -> JsResult<Raw<'env>> {
    let (status, global) = self.out0(sys::napi_get_global, ptr::null_mut());
    self.check(status)?;
    Ok(Raw::of(global))
  }
}
