//! A small safe face over the raw N-API calls the binding needs. Values are
//! `Raw` handles valid for the current callback; every call that can run
//! JavaScript reports a thrown exception as `Fault::Pending`.

use std::ffi::CStr;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, ValueType};

use super::env::{Builtin, Prop};
use super::errors::{ErrorClass, Fault, JsResult};

/// A JavaScript value handle, as received from or returned to JavaScript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw(pub sys::napi_value);

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
    unsafe { sys::napi_is_exception_pending(self.env, &mut pending) };
    pending
  }

  /// Takes the pending exception off the environment.
  pub fn take_exception(self) -> Option<Raw> {
    if !self.exception_pending() {
      return None;
    }
    let mut value = ptr::null_mut();
    let status = unsafe { sys::napi_get_and_clear_last_exception(self.env, &mut value) };
    (status == sys::Status::napi_ok).then_some(Raw(value))
  }

  pub fn throw(self, error: Raw) {
    unsafe { sys::napi_throw(self.env, error.0) };
  }

  pub fn kind(self, value: Raw) -> Kind {
    let mut kind = 0;
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
    self.flag(|out| unsafe { sys::napi_is_array(self.env, value.0, out) })
  }

  /// An `Error` by brand (any realm) or by prototype (`instanceof Error`).
  pub fn is_error(self, value: Raw) -> bool {
    if self.flag(|out| unsafe { sys::napi_is_error(self.env, value.0, out) }) {
      return true;
    }
    if !matches!(self.kind(value), Kind::Object | Kind::Function) {
      return false;
    }
    let Ok(error) = self.builtin(Builtin::Error) else {
      return false;
    };
    let is_instance =
      self.flag(|out| unsafe { sys::napi_instanceof(self.env, value.0, error.0, out) });
    // A hostile Symbol.hasInstance may throw; that only means "not an Error".
    self.take_exception();
    is_instance
  }

  pub fn is_promise(self, value: Raw) -> bool {
    self.flag(|out| unsafe { sys::napi_is_promise(self.env, value.0, out) })
  }

  pub fn is_date(self, value: Raw) -> bool {
    self.flag(|out| unsafe { sys::napi_is_date(self.env, value.0, out) })
  }

  // --- making values ---

  pub fn undefined(self) -> Raw {
    let mut value = ptr::null_mut();
    unsafe { sys::napi_get_undefined(self.env, &mut value) };
    Raw(value)
  }

  pub fn null(self) -> Raw {
    let mut value = ptr::null_mut();
    unsafe { sys::napi_get_null(self.env, &mut value) };
    Raw(value)
  }

  pub fn boolean(self, flag: bool) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    self.check(unsafe { sys::napi_get_boolean(self.env, flag, &mut value) })?;
    Ok(Raw(value))
  }

  pub fn number(self, number: f64) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    self.check(unsafe { sys::napi_create_double(self.env, number, &mut value) })?;
    Ok(Raw(value))
  }

  pub fn string(self, text: &str) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
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

  pub fn object(self) -> JsResult<Raw> {
    let mut value = ptr::null_mut();
    self.check(unsafe { sys::napi_create_object(self.env, &mut value) })?;
    Ok(Raw(value))
  }

  pub fn array<T>(self, items: &[T], mut make: impl FnMut(&T) -> JsResult<Raw>) -> JsResult<Raw> {
    let mut array = ptr::null_mut();
    self.check(unsafe { sys::napi_create_array_with_length(self.env, items.len(), &mut array) })?;
    for (index, item) in items.iter().enumerate() {
      let element = make(item)?;
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
    self.check(unsafe {
      sys::napi_get_named_property(self.env, object.0, key.as_ptr(), &mut value)
    })?;
    Ok(Raw(value))
  }

  /// A property by one of the names kept per environment (no key string is
  /// made or interned per call).
  pub fn get_name(self, object: Raw, name: Prop) -> JsResult<Raw> {
    let key = self.name(name)?;
    let mut value = ptr::null_mut();
    self.check(unsafe { sys::napi_get_property(self.env, object.0, key.0, &mut value) })?;
    Ok(Raw(value))
  }

  /// Defines an own, plain data property: unlike assignment it never runs a
  /// setter, so a key such as `__proto__` stays an ordinary property.
  pub fn define(self, object: Raw, key: &str, value: Raw) -> JsResult<()> {
    use sys::PropertyAttributes::{configurable, enumerable, writable};
    let name = self.string(key)?;
    let descriptor = sys::napi_property_descriptor {
      utf8name: ptr::null(),
      name: name.0,
      method: None,
      getter: None,
      setter: None,
      value: value.0,
      attributes: writable | enumerable | configurable,
      data: ptr::null_mut(),
    };
    self.check(unsafe { sys::napi_define_properties(self.env, object.0, 1, &descriptor) })
  }

  /// Own enumerable string keys, as `Object.keys` gives them.
  pub fn own_keys(self, object: Raw) -> JsResult<Vec<String>> {
    let mut names = ptr::null_mut();
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
    self.check(unsafe { sys::napi_get_array_length(self.env, names, &mut length) })?;
    (0..length)
      .map(|index| {
        let mut name = ptr::null_mut();
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
    let status = unsafe {
      sys::napi_get_value_string_utf8(
        self.env,
        value.0,
        buffer.as_mut_ptr().add(start).cast(),
        capacity,
        &mut written,
      )
    };
    // SAFETY: N-API wrote `written` bytes of valid UTF-8 after `start`.
    unsafe { buffer.set_len(start + written.min(capacity)) };
    *text = String::from_utf8(buffer).map_err(Fault::internal)?;
    self.check(status)
  }

  pub fn read_number(self, value: Raw) -> f64 {
    let mut number = f64::NAN;
    unsafe { sys::napi_get_value_double(self.env, value.0, &mut number) };
    number
  }

  pub fn read_bool(self, value: Raw) -> bool {
    let mut flag = false;
    unsafe { sys::napi_get_value_bool(self.env, value.0, &mut flag) };
    flag
  }

  pub fn read_date(self, value: Raw) -> f64 {
    let mut ms = f64::NAN;
    unsafe { sys::napi_get_date_value(self.env, value.0, &mut ms) };
    ms
  }

  /// The JavaScript clock, `Date.now()`, looked up on each call so that a
  /// test's fake timers (which replace the global `Date`) move our clock
  /// too; the system clock if that fails.
  pub fn now_ms(self) -> u64 {
    let read = || -> JsResult<f64> {
      let date = self.get_name(self.global()?, Prop::Date)?;
      let now = self.get_name(date, Prop::Now)?;
      let mut result = ptr::null_mut();
      self.check(unsafe {
        sys::napi_call_function(self.env, date.0, now.0, 0, ptr::null(), &mut result)
      })?;
      Ok(self.read_number(Raw(result)))
    };
    match read() {
      Ok(ms) if ms.is_finite() && ms >= 0.0 => (ms as u64).min(crate::core::clock::MAX_DATE_MS),
      _ => {
        self.take_exception();
        crate::core::clock::now_ms()
      }
    }
  }

  pub fn global(self) -> JsResult<Raw> {
    let mut global = ptr::null_mut();
    self.check(unsafe { sys::napi_get_global(self.env, &mut global) })?;
    Ok(Raw(global))
  }

  // --- calling JavaScript ---

  /// Calls `function` with `this` undefined. A throw comes back as
  /// `Err(thrown value)`, with the exception cleared.
  pub fn call(self, function: Raw, args: &[Raw]) -> JsResult<Result<Raw, Raw>> {
    let this = self.undefined();
    let mut result = ptr::null_mut();
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
    if status == sys::Status::napi_ok {
      return Ok(Ok(Raw(result)));
    }
    match self.take_exception() {
      Some(thrown) => Ok(Err(thrown)),
      None => Err(Fault::internal(format!(
        "calling a function failed with status {status}"
      ))),
    }
  }

  /// `String(value)`, which (unlike ToString) also works for symbols.
  pub fn to_display_string(self, value: Raw) -> String {
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

  pub fn json_stringify(self, value: Raw) -> JsResult<Result<Raw, Raw>> {
    let stringify = self.builtin(Builtin::JsonStringify)?;
    self.call(stringify, &[value])
  }

  pub fn json_parse(self, text: &str) -> JsResult<Raw> {
    let parse = self.builtin(Builtin::JsonParse)?;
    let text = self.string(text)?;
    match self.call(parse, &[text])? {
      Ok(value) => Ok(value),
      Err(thrown) => {
        self.throw(thrown);
        Err(Fault::Pending)
      }
    }
  }

  /// The first `N` arguments of a raw callback (missing ones undefined).
  pub fn callback_args<const N: usize>(self, info: sys::napi_callback_info) -> JsResult<[Raw; N]> {
    let mut argv = [ptr::null_mut(); N];
    let mut argc = N;
    self.check(unsafe {
      sys::napi_get_cb_info(
        self.env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        ptr::null_mut(),
        ptr::null_mut(),
      )
    })?;
    Ok(argv.map(Raw))
  }

  /// A function made in native code, with no data attached.
  pub fn native_function(
    self,
    name: &str,
    callback: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value,
  ) -> JsResult<Raw> {
    let mut function = ptr::null_mut();
    self.check(unsafe {
      sys::napi_create_function(
        self.env,
        name.as_ptr().cast(),
        name.len() as isize,
        Some(callback),
        ptr::null_mut(),
        &mut function,
      )
    })?;
    Ok(Raw(function))
  }

  /// Evaluates a script in the global scope (used once per environment to
  /// make small glue functions).
  pub fn run_script(self, source: &str) -> JsResult<Raw> {
    let source = self.string(source)?;
    let mut result = ptr::null_mut();
    self.check(unsafe { sys::napi_run_script(self.env, source.0, &mut result) })?;
    Ok(Raw(result))
  }

  // --- promises ---

  pub fn resolved(self, value: Raw) -> JsResult<Raw> {
    self.settled(value, true)
  }

  pub fn rejected(self, error: Raw) -> JsResult<Raw> {
    self.settled(error, false)
  }

  fn settled(self, value: Raw, fulfilled: bool) -> JsResult<Raw> {
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    self.check(unsafe { sys::napi_create_promise(self.env, &mut deferred, &mut promise) })?;
    let status = if fulfilled {
      unsafe { sys::napi_resolve_deferred(self.env, deferred, value.0) }
    } else {
      unsafe { sys::napi_reject_deferred(self.env, deferred, value.0) }
    };
    self.check(status)?;
    Ok(Raw(promise))
  }
}
