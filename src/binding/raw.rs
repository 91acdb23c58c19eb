//! The one module that calls N-API directly: a small safe face over the raw
//! calls the measured hot paths need (reading options and strings without
//! napi-rs's per-value conversions, making the few values we return). Every
//! other binding module is safe code on top of this one and of napi-rs.
//!
//! The invariant every `unsafe` block here relies on: a `Js` is only made
//! from the `napi_env` of the callback (or threadsafe-function call) that is
//! running on this thread, and a `Raw` only holds a handle made in that same
//! callback's handle scope, so both are valid for as long as they are used.

use std::ffi::CStr;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, Unknown, ValidateNapiValue};
use napi::{sys, JsValue, ValueType};

use super::errors::{ErrorClass, Fault, JsResult};

/// A JavaScript value handle, as received from or returned to JavaScript.
/// `repr(transparent)`: a slice of `Raw` is passed to N-API as a slice of
/// `napi_value`.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw(pub sys::napi_value);

// SAFETY (both impls): the handle is passed through unchanged, never
// dereferenced here; napi-rs's generated glue calls these with a live handle
// of the running callback, which is the module invariant.
impl FromNapiValue for Raw {
  unsafe fn from_napi_value(_env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
    Ok(Raw(value))
  }
}

impl ToNapiValue for Raw {
  unsafe fn to_napi_value(_env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
    Ok(value.0)
  }
}

impl TypeName for Raw {
  fn type_name() -> &'static str {
    "unknown"
  }
  fn value_type() -> ValueType {
    ValueType::Unknown
  }
}

impl ValidateNapiValue for Raw {}

impl From<Unknown<'_>> for Raw {
  fn from(value: Unknown<'_>) -> Self {
    Raw(value.raw())
  }
}

/// A strong reference to a value, kept across callbacks of one environment
/// (never sent to another thread).
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct Reference(sys::napi_ref);

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

#[derive(Clone, Copy)]
pub struct Js {
  env: sys::napi_env,
}

impl Js {
  pub fn new(env: sys::napi_env) -> Self {
    Self { env }
  }

  pub fn env(self) -> sys::napi_env {
    self.env
  }

  /// Length in UTF-16 code units, without reading the string.
  pub fn string_length(self, value: Raw) -> usize {
    let mut units = 0;
    // SAFETY: module invariant; `napi_get_value_string_latin1` writes only to the local out-pointer.
    unsafe { sys::napi_get_value_string_latin1(self.env, value.0, ptr::null_mut(), 0, &mut units) };
    units
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
    let mut pending = false;
    // SAFETY: module invariant; `napi_is_exception_pending` writes only to the local out-pointer.
    unsafe { sys::napi_is_exception_pending(self.env, &mut pending) };
    pending
  }

  /// Takes the pending exception off the environment.
  pub fn take_exception(self) -> Option<Raw> {
    if !self.exception_pending() {
      return None;
    }
    let mut value = ptr::null_mut();
    // SAFETY: module invariant; `napi_get_and_clear_last_exception` writes only to the local out-pointer.
    let status = unsafe { sys::napi_get_and_clear_last_exception(self.env, &mut value) };
    (status == sys::Status::napi_ok).then_some(Raw(value))
  }

  pub fn throw(self, error: Raw) {
    // SAFETY: module invariant: `error` is a live handle of this callback;
    // `napi_throw` takes no pointer of ours and only sets the environment's
    // pending exception, which the callback then returns into.
    unsafe { sys::napi_throw(self.env, error.0) };
  }

  pub fn kind(self, value: Raw) -> Kind {
    let mut kind = 0;
    // SAFETY: module invariant; `napi_typeof` writes only to the local out-pointer.
    unsafe { sys::napi_typeof(self.env, value.0, &mut kind) };
    match kind {
      sys::ValueType::napi_undefined => Kind::Undefined,
      sys::ValueType::napi_null => Kind::Null,
      sys::ValueType::napi_boolean => Kind::Boolean,
      sys::ValueType::napi_number => Kind::Number,
      sys::ValueType::napi_string => Kind::String,
      sys::ValueType::napi_symbol => Kind::Symbol,
      sys::ValueType::napi_function => Kind::Function,
      sys::ValueType::napi_external => Kind::External,
      sys::ValueType::napi_bigint => Kind::BigInt,
      _ => Kind::Object,
    }
  }

  pub fn is_nullish(self, value: Raw) -> bool {
    matches!(self.kind(value), Kind::Undefined | Kind::Null)
  }

  fn flag(self, test: impl FnOnce(*mut bool) -> sys::napi_status) -> bool {
    let mut result = false;
    test(&mut result) == sys::Status::napi_ok && result
  }

  pub fn is_array(self, value: Raw) -> bool {
    // SAFETY: module invariant; `napi_is_array` writes only to the local out-pointer.
    self.flag(|out| unsafe { sys::napi_is_array(self.env, value.0, out) })
  }

  /// An `Error` by brand (`napi_is_error`, any realm).
  pub fn has_error_brand(self, value: Raw) -> bool {
    // SAFETY: module invariant; `napi_is_error` writes only to the local out-pointer.
    self.flag(|out| unsafe { sys::napi_is_error(self.env, value.0, out) })
  }

  /// `value instanceof constructor`; a throwing `Symbol.hasInstance` is
  /// left pending.
  pub fn instance_of(self, value: Raw, constructor: Raw) -> bool {
    // SAFETY: module invariant; `napi_instanceof` writes only to the local out-pointer.
    self.flag(|out| unsafe { sys::napi_instanceof(self.env, value.0, constructor.0, out) })
  }

  /// The value's prototype (`Object.getPrototypeOf`).
  pub fn prototype_of(self, value: Raw) -> JsResult<Raw> {
    let mut prototype = ptr::null_mut();
    // SAFETY: module invariant; `napi_get_prototype` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_get_prototype(self.env, value.0, &mut prototype) })?;
    Ok(Raw(prototype))
  }

  /// Whether a string holds a lone surrogate, which UTF-8 cannot hold (its
  /// UTF-8 reading shows U+FFFD there). Reads the UTF-16 units.
  pub fn has_lone_surrogate(self, value: Raw) -> JsResult<bool> {
    let length = self.string_length(value);
    let mut units: Vec<u16> = Vec::with_capacity(length + 1);
    let mut written = 0;
    // SAFETY: module invariant; the buffer has room for `length + 1` units,
    // the size passed, and N-API writes at most that many.
    let status = unsafe {
      sys::napi_get_value_string_utf16(
        self.env,
        value.0,
        units.as_mut_ptr(),
        length + 1,
        &mut written,
      )
    };
    self.check(status)?;
    // SAFETY: N-API wrote `written` units (at most `length`) into the buffer.
    unsafe { units.set_len(written.min(length)) };
    Ok(char::decode_utf16(units.iter().copied()).any(|unit| unit.is_err()))
  }

  /// `a === b`.
  pub fn strict_equals(self, a: Raw, b: Raw) -> JsResult<bool> {
    let mut equal = false;
    // SAFETY: module invariant; `napi_strict_equals` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_strict_equals(self.env, a.0, b.0, &mut equal) })?;
    Ok(equal)
  }

  pub fn is_promise(self, value: Raw) -> bool {
    // SAFETY: module invariant; `napi_is_promise` writes only to the local out-pointer.
    self.flag(|out| unsafe { sys::napi_is_promise(self.env, value.0, out) })
  }

  pub fn is_date(self, value: Raw) -> bool {
    // SAFETY: module invariant; `napi_is_date` writes only to the local out-pointer.
    self.flag(|out| unsafe { sys::napi_is_date(self.env, value.0, out) })
  }

  // --- making values ---

  pub fn undefined(self) -> Raw {
    let mut value = ptr::null_mut();
    // SAFETY: module invariant; `napi_get_undefined` writes only to the local out-pointer.
    unsafe { sys::napi_get_undefined(self.env, &mut value) };
    Raw(value)
  }

  pub fn number(self, number: f64) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    // SAFETY: module invariant; `napi_create_double` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_create_double(self.env, number, &mut value) })?;
    Ok(Raw(value))
  }

  pub fn string(self, text: &str) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    // SAFETY: module invariant; `napi_create_string_utf8` writes only to the local out-pointer.
    self.check(unsafe {
      sys::napi_create_string_utf8(
        self.env,
        text.as_ptr().cast(),
        text.len() as isize,
        &mut value,
      )
    })?;
    Ok(Raw(value))
  }

  pub fn array<T>(self, items: &[T], mut make: impl FnMut(&T) -> JsResult<Raw>) -> JsResult<Raw> {
    let mut array = ptr::null_mut();
    // SAFETY: module invariant; `napi_create_array_with_length` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_create_array_with_length(self.env, items.len(), &mut array) })?;
    for (index, item) in items.iter().enumerate() {
      let element = make(item)?;
      // SAFETY: module invariant: `array` was made just above and `element`
      // by `make` in this callback; `napi_set_element` takes no pointer of ours.
      self.check(unsafe { sys::napi_set_element(self.env, array, index as u32, element.0) })?;
    }
    Ok(Raw(array))
  }

  pub fn new_error(self, class: ErrorClass, code: Option<&str>, message: &str) -> Raw {
    let make = || -> JsResult<Raw> {
      let message = self.string(message)?;
      let code = match code {
        Some(code) => self.string(code)?.0,
        None => ptr::null_mut(),
      };
      let mut error = ptr::null_mut();
      // SAFETY: module invariant; `napi_create_error` writes only to the local out-pointer.
      self.check(unsafe {
        match class {
          ErrorClass::Error => sys::napi_create_error(self.env, code, message.0, &mut error),
          ErrorClass::TypeError => {
            sys::napi_create_type_error(self.env, code, message.0, &mut error)
          }
          ErrorClass::RangeError => {
            sys::napi_create_range_error(self.env, code, message.0, &mut error)
          }
        }
      })?;
      Ok(Raw(error))
    };
    make().unwrap_or_else(|_| self.undefined())
  }

  // --- properties ---

  pub fn get(self, object: Raw, key: &CStr) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    // SAFETY: module invariant; `napi_get_named_property` writes only to the local out-pointer.
    self.check(unsafe {
      sys::napi_get_named_property(self.env, object.0, key.as_ptr(), &mut value)
    })?;
    Ok(Raw(value))
  }

  /// Own enumerable string keys, as `Object.keys` gives them.
  pub fn own_keys(self, object: Raw) -> JsResult<Vec<String>> {
    let mut names = ptr::null_mut();
    // SAFETY: module invariant; `napi_get_all_property_names` writes only to the local out-pointer.
    self.check(unsafe {
      sys::napi_get_all_property_names(
        self.env,
        object.0,
        sys::KeyCollectionMode::own_only,
        sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
        sys::KeyConversion::numbers_to_strings,
        &mut names,
      )
    })?;
    let mut length = 0;
    // SAFETY: module invariant; `napi_get_array_length` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_get_array_length(self.env, names, &mut length) })?;
    (0..length)
      .map(|index| {
        let mut name = ptr::null_mut();
        // SAFETY: module invariant; `napi_get_element` writes only to the local out-pointer.
        self.check(unsafe { sys::napi_get_element(self.env, names, index, &mut name) })?;
        self.read_string(Raw(name))
      })
      .collect()
  }

  // --- reading values (the caller has checked the kind) ---

  pub fn read_string(self, value: Raw) -> JsResult<String> {
    let mut text = String::new();
    self.read_string_into(value, &mut text)?;
    Ok(text)
  }

  /// Appends a string's UTF-8 to `text` (lone surrogates become U+FFFD).
  pub fn read_string_into(self, value: Raw, text: &mut String) -> JsResult<()> {
    // Each UTF-16 unit takes at most 3 bytes of UTF-8, and the unit count is
    // O(1) to get (the latin1 length query), so one pass into a buffer that
    // large is enough; asking for the UTF-8 length would walk the string.
    let capacity = self.string_length(value) * 3 + 1;
    let mut buffer = std::mem::take(text).into_bytes();
    let start = buffer.len();
    buffer.reserve(capacity);
    let mut written = 0;
    // SAFETY: module invariant; the buffer has `capacity` writable bytes
    // reserved after `start`, and N-API writes at most that many.
    let status = unsafe {
      sys::napi_get_value_string_utf8(
        self.env,
        value.0,
        buffer.as_mut_ptr().add(start).cast(),
        capacity,
        &mut written,
      )
    };
    // SAFETY: N-API wrote `written` bytes of valid UTF-8 after `start`, within the reserved capacity.
    unsafe { buffer.set_len(start + written.min(capacity)) };
    *text = String::from_utf8(buffer).map_err(Fault::internal)?;
    self.check(status)
  }

  pub fn read_number(self, value: Raw) -> f64 {
    let mut number = f64::NAN;
    // SAFETY: module invariant; `napi_get_value_double` writes only to the local out-pointer.
    unsafe { sys::napi_get_value_double(self.env, value.0, &mut number) };
    number
  }

  pub fn read_bool(self, value: Raw) -> bool {
    let mut flag = false;
    // SAFETY: module invariant; `napi_get_value_bool` writes only to the local out-pointer.
    unsafe { sys::napi_get_value_bool(self.env, value.0, &mut flag) };
    flag
  }

  pub fn read_date(self, value: Raw) -> f64 {
    let mut ms = f64::NAN;
    // SAFETY: module invariant; `napi_get_date_value` writes only to the local out-pointer.
    unsafe { sys::napi_get_date_value(self.env, value.0, &mut ms) };
    ms
  }

  pub fn global(self) -> JsResult<Raw> {
    let mut global = ptr::null_mut();
    // SAFETY: module invariant; `napi_get_global` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_get_global(self.env, &mut global) })?;
    Ok(Raw(global))
  }

  // --- calling JavaScript ---

  /// Calls `function` with `this` undefined. A throw comes back as
  /// `Err(thrown value)`, with the exception cleared.
  pub fn call(self, function: Raw, args: &[Raw]) -> JsResult<Result<Raw, Raw>> {
    self.call_on(self.undefined(), function, args)
  }

  /// Calls `function` with `this`; a throw as in `call`.
  pub fn call_on(self, this: Raw, function: Raw, args: &[Raw]) -> JsResult<Result<Raw, Raw>> {
    let mut result = ptr::null_mut();
    // SAFETY: module invariant; `Raw` is `repr(transparent)` over
    // `napi_value`, so `args` is a valid array of `args.len()` handles.
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
  pub fn construct(self, constructor: Raw, args: &[Raw]) -> JsResult<Result<Raw, Raw>> {
    let mut result = ptr::null_mut();
    // SAFETY: module invariant; `Raw` is `repr(transparent)` over
    // `napi_value`, so `args` is a valid array of `args.len()` handles.
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
  ) -> JsResult<Result<Raw, Raw>> {
    if status == sys::Status::napi_ok {
      return Ok(Ok(Raw(result)));
    }
    match self.take_exception() {
      Some(thrown) => Ok(Err(thrown)),
      None => Err(Fault::internal(format!(
        "{what} failed with status {status}"
      ))),
    }
  }

  /// `array[index] = value`.
  pub fn set_element(self, array: Raw, index: u32, value: Raw) -> JsResult<()> {
    // SAFETY: module invariant: `array` and `value` are live handles of
    // this callback, and `napi_set_element` takes no pointer of ours.
    self.check(unsafe { sys::napi_set_element(self.env, array.0, index, value.0) })
  }

  /// `object[key] = value` (an ordinary assignment).
  pub fn set(self, object: Raw, key: &CStr, value: Raw) -> JsResult<()> {
    // SAFETY: module invariant; `key` is a NUL-terminated C string.
    self.check(unsafe { sys::napi_set_named_property(self.env, object.0, key.as_ptr(), value.0) })
  }

  /// Copies `values` into the start of a `Float64Array` (as much as fits);
  /// anything else is an error.
  pub fn write_f64s(self, array: Raw, values: &[f64]) -> JsResult<()> {
    let TypedArray {
      kind, length, data, ..
    } = self.typed_array(array)?;
    if kind != sys::TypedarrayType::float64_array || data.is_null() {
      return Err(Fault::internal("numbers must go into a Float64Array"));
    }
    let count = values.len().min(length);
    // SAFETY: N-API says `data` points at `length` f64s of this array, alive
    // for this callback; `count <= length`, and `values` is a Rust slice that
    // cannot overlap JavaScript's buffer.
    unsafe { ptr::copy_nonoverlapping(values.as_ptr(), data.cast::<f64>(), count) };
    Ok(())
  }

  /// What N-API says of a typed array (an error for any other value).
  fn typed_array(self, array: Raw) -> JsResult<TypedArray> {
    let mut kind = 0;
    let mut length = 0;
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut offset = 0;
    // SAFETY: module invariant; `napi_get_typedarray_info` writes only to the
    // local out-pointers (and fails for a value that is not a typed array).
    self.check(unsafe {
      sys::napi_get_typedarray_info(
        self.env,
        array.0,
        &mut kind,
        &mut length,
        &mut data,
        &mut buffer,
        &mut offset,
      )
    })?;
    Ok(TypedArray {
      kind,
      length,
      data,
      buffer,
    })
  }

  // --- properties by handle, references ---

  pub fn get_by(self, object: Raw, key: Raw) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    // SAFETY: module invariant; `napi_get_property` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_get_property(self.env, object.0, key.0, &mut value) })?;
    Ok(Raw(value))
  }

  pub fn element(self, array: Raw, index: u32) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    // SAFETY: module invariant; `napi_get_element` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_get_element(self.env, array.0, index, &mut value) })?;
    Ok(Raw(value))
  }

  /// A strong reference, for values kept in the environment's instance data.
  pub fn keep(self, value: Raw) -> JsResult<Reference> {
    let mut reference = ptr::null_mut();
    // SAFETY: module invariant; `napi_create_reference` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_create_reference(self.env, value.0, 1, &mut reference) })?;
    Ok(Reference(reference))
  }

  /// The value behind a reference made with `keep` in this environment.
  pub fn value_of(self, reference: Reference) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    // SAFETY: module invariant, and `reference` was made by `keep` in this
    // environment (instance data is per environment) and never deleted.
    self.check(unsafe { sys::napi_get_reference_value(self.env, reference.0, &mut value) })?;
    Ok(Raw(value))
  }
}

/// A weak reference (a count of 0): it does not keep its value alive, and
/// says `None` once the value is collected. Made and used in one
/// environment, on its thread; deleted by `Js::forget`, which takes it.
#[derive(Debug)]
pub struct Weak(sys::napi_ref);

impl Js {
  pub fn weak(self, value: Raw) -> JsResult<Weak> {
    let mut reference = ptr::null_mut();
    // SAFETY: module invariant; `napi_create_reference` writes only to the local out-pointer.
    self.check(unsafe { sys::napi_create_reference(self.env, value.0, 0, &mut reference) })?;
    Ok(Weak(reference))
  }

  /// The value behind `weak`, or `None` once it was collected.
  pub fn weak_value(self, weak: &Weak) -> JsResult<Option<Raw>> {
    let mut value = ptr::null_mut();
    // SAFETY: module invariant, and `weak` was made by `Js::weak` in this
    // environment and not deleted (`forget` takes it by value).
    self.check(unsafe { sys::napi_get_reference_value(self.env, weak.0, &mut value) })?;
    Ok((!value.is_null()).then_some(Raw(value)))
  }

  /// Deletes `weak`.
  pub fn forget(self, weak: Weak) {
    // SAFETY: module invariant, and `weak` was made by `Js::weak` in this
    // environment; taken by value, it is deleted once and never used again.
    unsafe { sys::napi_delete_reference(self.env, weak.0) };
  }
}

/// A typed array's element type, length, first element and buffer.
struct TypedArray {
  kind: sys::napi_typedarray_type,
  length: usize,
  data: *mut std::ffi::c_void,
  buffer: sys::napi_value,
}

/// How a value handed back by JavaScript ended: a promise's outcome, or a
/// plain value (which counts as fulfilled).
#[derive(Clone, Copy, Debug)]
pub enum Settled {
  Fulfilled(Raw),
  Rejected(Raw),
}

impl Js {
  /// Runs `on_settled` on this thread once `value` settles: at once for a
  /// plain value, from the promise's reactions for a promise.
  pub fn when_settled(
    self,
    value: Raw,
    on_settled: impl FnOnce(Js, Settled) + 'static,
  ) -> JsResult<()> {
    use napi::bindgen_prelude::PromiseRaw;
    use std::cell::Cell;
    use std::rc::Rc;

    if !self.is_promise(value) {
      on_settled(self, Settled::Fulfilled(value));
      return Ok(());
    }
    // SAFETY: module invariant, and `value` was just checked to be a promise,
    // which is what `PromiseRaw` wraps.
    let promise = unsafe { PromiseRaw::<Unknown>::from_napi_value(self.env, value.0) }?;
    // Both reactions share the one continuation; only one of them runs.
    let slot = Rc::new(Cell::new(Some(on_settled)));
    let on_rejected = slot.clone();
    promise
      .then(move |context| {
        if let Some(settle) = slot.take() {
          settle(
            Js::new(context.env.raw()),
            Settled::Fulfilled(context.value.into()),
          );
        }
        Ok(())
      })?
      .catch(
        move |context: napi::bindgen_prelude::CallbackContext<Unknown>| {
          if let Some(settle) = on_rejected.take() {
            settle(
              Js::new(context.env.raw()),
              Settled::Rejected(context.value.into()),
            );
          }
          Ok(())
        },
      )?;
    Ok(())
  }
}

/// The first element of a `Uint32Array` over a `SharedArrayBuffer`, which
/// native code on any thread writes and JavaScript reads without a call,
/// until the array's environment goes (then writes do nothing).
pub struct SharedU32 {
  /// `None` once the environment is gone; taken for each write, so that a
  /// write never runs while the environment tears the buffer down.
  cell: std::sync::Arc<parking_lot::Mutex<Option<SharedCell>>>,
}

struct SharedCell(ptr::NonNull<std::sync::atomic::AtomicU32>);

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
      unsafe { cell.0.as_ref() }.store(value, std::sync::atomic::Ordering::Release);
    }
  }
}

impl Js {
  /// `array` as a `SharedU32`, when it is a `Uint32Array` of at least one
  /// element over a `SharedArrayBuffer`, with the strong reference that
  /// keeps it alive: never deleted (`Reference` has no way to delete), so
  /// the cell lives until the environment goes, and is written no more then.
  /// `None` for any other value. For an array made once per environment:
  /// each call keeps its array for the environment's life.
  pub fn shared_u32(self, array: Raw) -> JsResult<Option<(Reference, SharedU32)>> {
    let mut is_typed = false;
    // SAFETY: module invariant; writes only to the local out-pointer.
    self.check(unsafe { sys::napi_is_typedarray(self.env, array.0, &mut is_typed) })?;
    if !is_typed {
      return Ok(None);
    }
    let TypedArray {
      kind,
      length,
      data,
      buffer,
    } = self.typed_array(array)?;
    // A typed array's buffer that is not an ArrayBuffer is a SharedArrayBuffer.
    let mut is_plain_buffer = true;
    // SAFETY: module invariant; writes only to the local out-pointer.
    self.check(unsafe { sys::napi_is_arraybuffer(self.env, buffer, &mut is_plain_buffer) })?;
    let at = ptr::NonNull::new(data.cast::<std::sync::atomic::AtomicU32>())
      .filter(|at| at.as_ptr().is_aligned());
    let at = match at {
      Some(at) if kind == sys::TypedarrayType::uint32_array && length >= 1 && !is_plain_buffer => {
        at
      }
      _ => return Ok(None),
    };
    let kept = self.keep(array)?;
    let cell = std::sync::Arc::new(parking_lot::Mutex::new(Some(SharedCell(at))));
    let ended = cell.clone();
    napi::Env::from_raw(self.env)
      .add_env_cleanup_hook((), move |()| *ended.lock() = None)
      .map_err(Fault::internal)?;
    Ok(Some((kept, SharedU32 { cell })))
  }
}
