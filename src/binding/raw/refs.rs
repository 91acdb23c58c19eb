//! Values kept across callbacks: strong and weak references, and the one
//! cell native threads write for JavaScript to read.

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use napi::sys;
use parking_lot::Mutex;

use super::js::{Js, Raw};
use super::values::TypedArray;
use crate::binding::errors::{Fault, JsResult};

/// A strong reference to a value, kept across callbacks of one environment.
/// Only `Js::keep` makes one, and nothing deletes it; the raw pointer makes
/// it `!Send`, so it stays on its environment's thread.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct Reference(sys::napi_ref);

/// A weak reference (a count of 0): it does not keep its value alive, and
/// says `None` once the value is collected. Made by `Js::weak` and used in
/// one environment, on its thread (the raw pointer makes it `!Send`);
/// deleted by `Js::forget`, which takes it.
#[derive(Debug)]
pub struct Weak(sys::napi_ref);

impl<'env> Js<'env> {
  /// A strong reference, for values kept in the environment's instance data.
  pub fn keep(self, value: Raw<'env>) -> JsResult<Reference> {
    self
      .read2(sys::napi_create_reference, value.0, 1, ptr::null_mut())
      .map(Reference)
  }

  /// The value behind a reference made with `keep` in this environment.
  pub fn value_of(self, reference: Reference) -> JsResult<Raw<'env>> {
    self.referenced(reference.0).map(Raw::of)
  }

  pub fn weak(self, value: Raw<'env>) -> JsResult<Weak> {
    self
      .read2(sys::napi_create_reference, value.0, 0, ptr::null_mut())
      .map(Weak)
  }

  /// The value behind `weak`, or `None` once it was collected.
  pub fn weak_value(self, weak: &Weak) -> JsResult<Option<Raw<'env>>> {
    let value = self.referenced(weak.0)?;
    Ok((!value.is_null()).then_some(Raw::of(value)))
  }

  /// The value behind the `napi_ref` of a `Reference` or a `Weak` (null for
  /// a weak one whose value was collected).
  fn referenced(self, reference: sys::napi_ref) -> JsResult<sys::napi_value> {
    let mut value = ptr::null_mut();
    // SAFETY: `self.env` is the running callback's environment (`Js::new`'s
    // contract). `reference` is the field of a `Reference` or a `Weak`: made
    // by `keep` or `weak` in an environment of this thread (neither type is
    // `Send`, and instance data that holds them is per environment), not
    // yet deleted (a `Reference` never is; a `Weak` is deleted by `forget`,
    // which takes it by value). The call writes only the value's handle, to
    // the local `value`.
    self.check(unsafe { sys::napi_get_reference_value(self.env, reference, &mut value) })?;
    Ok(value)
  }

  /// Deletes `weak`.
  pub fn forget(self, weak: Weak) {
    // SAFETY: `self.env` is the running callback's environment (`Js::new`'s
    // contract), and `weak` was made by `Js::weak` in it (a `Weak` is not
    // `Send`); taken by value, it is deleted once and never used again.
    unsafe { sys::napi_delete_reference(self.env, weak.0) };
  }
}

/// The first element of a `Uint32Array` over a `SharedArrayBuffer`, which
/// native code on any thread writes and JavaScript reads without a call,
/// until the array's environment goes (then writes do nothing).
pub struct SharedU32 {
  /// `None` once the environment is gone; taken for each write, so that a
  /// write never runs while the environment tears the buffer down.
  cell: Arc<Mutex<Option<SharedCell>>>,
}

struct SharedCell(NonNull<AtomicU32>);

// SAFETY: the cell points into a SharedArrayBuffer, memory made to be
// accessed from several threads; it is only ever accessed atomically from
// here (JavaScript's aligned 32-bit reads of it are tear-free), and only
// under the mutex that the environment's cleanup takes to end it.
unsafe impl Send for SharedCell {}

impl SharedU32 {
  pub fn store(&self, value: u32) {
    if let Some(cell) = &*self.cell.lock() {
      // SAFETY: `Js::shared_u32` checked the pointer is aligned and in a
      // SharedArrayBuffer, which cannot be detached and which the strong
      // reference it made (never deleted) keeps alive until the environment
      // goes; the cleanup hook it added empties the cell (under this lock)
      // before that.
      unsafe { cell.0.as_ref() }.store(value, Ordering::Release);
    }
  }
}

impl<'env> Js<'env> {
  /// `array` as a `SharedU32`, when it is a `Uint32Array` of at least one
  /// element over a `SharedArrayBuffer`, with the strong reference that
  /// keeps it alive: never deleted (`Reference` has no way to delete), so
  /// the cell lives until the environment goes, and is written no more then.
  /// `None` for any other value. For an array made once per environment:
  /// each call keeps its array for the environment's life.
  pub fn shared_u32(self, array: Raw<'env>) -> JsResult<Option<(Reference, SharedU32)>> {
    if !self.read1(sys::napi_is_typedarray, array.0, false)? {
      return Ok(None);
    }
    let TypedArray {
      kind,
      length,
      data,
      buffer,
    } = self.typed_array(array)?;
    // A typed array's buffer that is not an ArrayBuffer is a SharedArrayBuffer.
    let is_plain_buffer = self.read1(sys::napi_is_arraybuffer, buffer.0, true)?;
    let at = NonNull::new(data.cast::<AtomicU32>()).filter(|at| at.as_ptr().is_aligned());
    let at = match at {
      Some(at) if kind == sys::TypedarrayType::uint32_array && length >= 1 && !is_plain_buffer => {
        at
      }
      _ => return Ok(None),
    };
    let kept = self.keep(array)?;
    let cell = Arc::new(Mutex::new(Some(SharedCell(at))));
    let ended = cell.clone();
    napi::Env::from_raw(self.env)
      .add_env_cleanup_hook((), move |()| *ended.lock() = None)
      .map_err(Fault::internal)?;
    Ok(Some((kept, SharedU32 { cell })))
  }
}
