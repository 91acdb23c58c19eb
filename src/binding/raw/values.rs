//! Reading and making values: kinds, strings, numbers, properties, arrays.

use std::ffi::CStr;
use std::ptr;

use napi::sys;

use super::js::{Js, Kind, Raw};
use crate::binding::errors::{ErrorClass, Fault, JsResult};

impl<'env> Js<'env> {
  /// Length in UTF-16 code units, without reading the string.
  pub fn string_length(self, value: Raw<'env>) -> usize {
    let mut units = 0;
    // SAFETY: `self.env` is the running callback's environment (`Js::new`'s
    // contract) and `value` a live handle of it (the `Raw` invariant); with
    // a null buffer of size 0, `napi_get_value_string_latin1` copies nothing
    // and writes only the length, to the local `units`.
    unsafe { sys::napi_get_value_string_latin1(self.env, value.0, ptr::null_mut(), 0, &mut units) };
    units
  }

  pub fn kind(self, value: Raw<'env>) -> Kind {
    match self.out1(sys::napi_typeof, value.0, 0).1 {
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

  pub fn is_nullish(self, value: Raw<'env>) -> bool {
    matches!(self.kind(value), Kind::Undefined | Kind::Null)
  }

  pub fn is_array(self, value: Raw<'env>) -> bool {
    self.flag(sys::napi_is_array, value)
  }

  /// An `Error` by brand (`napi_is_error`, any realm).
  pub fn has_error_brand(self, value: Raw<'env>) -> bool {
    self.flag(sys::napi_is_error, value)
  }

  /// `value instanceof constructor`; a throwing `Symbol.hasInstance` is
  /// left pending.
  pub fn instance_of(self, value: Raw<'env>, constructor: Raw<'env>) -> bool {
    let (status, yes) = self.out2(sys::napi_instanceof, value.0, constructor.0, false);
    status == sys::Status::napi_ok && yes
  }

  pub fn is_promise(self, value: Raw<'env>) -> bool {
    self.flag(sys::napi_is_promise, value)
  }

  pub fn is_date(self, value: Raw<'env>) -> bool {
    self.flag(sys::napi_is_date, value)
  }

  /// The value's prototype (`Object.getPrototypeOf`).
  pub fn prototype_of(self, value: Raw<'env>) -> JsResult<Raw<'env>> {
    self
      .read1(sys::napi_get_prototype, value.0, ptr::null_mut())
      .map(Raw::of)
  }

  /// `a === b`.
  pub fn strict_equals(self, a: Raw<'env>, b: Raw<'env>) -> JsResult<bool> {
    self.read2(sys::napi_strict_equals, a.0, b.0, false)
  }

  /// Whether a string holds a lone surrogate, which UTF-8 cannot hold (its
  /// UTF-8 reading shows U+FFFD there). Reads the UTF-16 units. Only asked
  /// after a UTF-8 reading showed U+FFFD, so the zeroed buffer costs nothing
  /// that matters.
  pub fn has_lone_surrogate(self, value: Raw<'env>) -> JsResult<bool> {
    let length = self.string_length(value);
    let mut units = vec![0u16; length + 1];
    let mut written = 0;
    // SAFETY: `self.env` is the running callback's environment and `value`
    // a live handle of it (module invariants); `units` holds `length + 1`
    // initialized units, the size passed, and N-API writes at most that
    // many into it and the count into the local `written`, keeping neither.
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
    units.truncate(written.min(length));
    Ok(char::decode_utf16(units.iter().copied()).any(|unit| unit.is_err()))
  }

  // --- making values ---

  pub fn number(self, number: f64) -> JsResult<Raw<'env>> {
    self
      .read1(sys::napi_create_double, number, ptr::null_mut())
      .map(Raw::of)
  }

  pub fn string(self, text: &str) -> JsResult<Raw<'env>> {
    let mut value = ptr::null_mut();
    // SAFETY: `self.env` is the running callback's environment (`Js::new`'s
    // contract); `text` is `text.len()` bytes of UTF-8, borrowed for the
    // call, which N-API copies into a new string (writing its handle to the
    // local `value`) and does not keep.
    self.check(unsafe {
      sys::napi_create_string_utf8(
        self.env,
        text.as_ptr().cast(),
        text.len() as isize,
        &mut value,
      )
    })?;
    Ok(Raw::of(value))
  }

  pub fn array<T>(
    self,
    items: &[T],
    mut make: impl FnMut(&T) -> JsResult<Raw<'env>>,
  ) -> JsResult<Raw<'env>> {
    let array = Raw::of(self.read1(
      sys::napi_create_array_with_length,
      items.len(),
      ptr::null_mut(),
    )?);
    for (index, item) in items.iter().enumerate() {
      self.set_element(array, index as u32, make(item)?)?;
    }
    Ok(array)
  }

  pub fn new_error(self, class: ErrorClass, code: Option<&str>, message: &str) -> Raw<'env> {
    let create: super::js::Out2<sys::napi_value, sys::napi_value, sys::napi_value> = match class {
      ErrorClass::Error => sys::napi_create_error,
      ErrorClass::TypeError => sys::napi_create_type_error,
      ErrorClass::RangeError => sys::napi_create_range_error,
    };
    let make = || -> JsResult<Raw<'env>> {
      let message = self.string(message)?;
      // A null code makes an error without a `code` property.
      let code = match code {
        Some(code) => self.string(code)?.0,
        None => ptr::null_mut(),
      };
      self
        .read2(create, code, message.0, ptr::null_mut())
        .map(Raw::of)
    };
    make().unwrap_or_else(|_| self.undefined())
  }

  // --- properties ---

  pub fn get(self, object: Raw<'env>, key: &CStr) -> JsResult<Raw<'env>> {
    let mut value = ptr::null_mut();
    // SAFETY: `self.env` is the running callback's environment and `object`
    // a live handle of it (module invariants); `key` is a NUL-terminated
    // string borrowed for the call, which N-API reads and does not keep,
    // writing the property's handle to the local `value`.
    self.check(unsafe {
      sys::napi_get_named_property(self.env, object.0, key.as_ptr(), &mut value)
    })?;
    Ok(Raw::of(value))
  }

  pub fn get_by(self, object: Raw<'env>, key: Raw<'env>) -> JsResult<Raw<'env>> {
    self
      .read2(sys::napi_get_property, object.0, key.0, ptr::null_mut())
      .map(Raw::of)
  }

  pub fn element(self, array: Raw<'env>, index: u32) -> JsResult<Raw<'env>> {
    self
      .read2(sys::napi_get_element, array.0, index, ptr::null_mut())
      .map(Raw::of)
  }

  /// `object[key] = value` (an ordinary assignment).
  pub fn set(self, object: Raw<'env>, key: &CStr, value: Raw<'env>) -> JsResult<()> {
    // SAFETY: `self.env` is the running callback's environment, `object`
    // and `value` live handles of it (module invariants); `key` is a
    // NUL-terminated string borrowed for the call, which N-API reads and
    // does not keep; nothing is written to memory of ours.
    self.check(unsafe { sys::napi_set_named_property(self.env, object.0, key.as_ptr(), value.0) })
  }

  /// `array[index] = value`.
  pub fn set_element(self, array: Raw<'env>, index: u32, value: Raw<'env>) -> JsResult<()> {
    // SAFETY: `self.env` is the running callback's environment, `array`
    // and `value` live handles of it (module invariants), and
    // `napi_set_element` takes no pointer of ours.
    self.check(unsafe { sys::napi_set_element(self.env, array.0, index, value.0) })
  }

  /// Own enumerable string keys, as `Object.keys` gives them.
  pub fn own_keys(self, object: Raw<'env>) -> JsResult<Vec<String>> {
    let mut names = ptr::null_mut();
    // SAFETY: `self.env` is the running callback's environment and `object`
    // a live handle of it (module invariants); the mode, filter and
    // conversion are napi-sys's constants, and the call writes only the
    // array's handle, to the local `names`.
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
    let length = self.read1(sys::napi_get_array_length, names, 0)?;
    (0..length)
      .map(|index| self.read_string(self.element(Raw::of(names), index)?))
      .collect()
  }

  // --- reading values (the caller has checked the kind) ---

  pub fn read_string(self, value: Raw<'env>) -> JsResult<String> {
    let mut text = String::new();
    self.read_string_into(value, &mut text)?;
    Ok(text)
  }

  /// Appends a string's UTF-8 to `text` (lone surrogates become U+FFFD).
  pub fn read_string_into(self, value: Raw<'env>, text: &mut String) -> JsResult<()> {
    // Each UTF-16 unit takes at most 3 bytes of UTF-8, and the unit count is
    // O(1) to get (the latin1 length query), so one pass into a buffer that
    // large is enough; asking for the UTF-8 length would walk the string.
    let capacity = self.string_length(value) * 3 + 1;
    let mut buffer = std::mem::take(text).into_bytes();
    let start = buffer.len();
    buffer.reserve(capacity);
    let mut written = 0;
    // SAFETY: `self.env` is the running callback's environment and `value`
    // a live handle of it (module invariants); `reserve` left `capacity`
    // writable bytes after `start`, the size passed, and N-API writes at
    // most that many there (NUL included) and the count into the local
    // `written`, keeping neither pointer.
    let status = unsafe {
      sys::napi_get_value_string_utf8(
        self.env,
        value.0,
        buffer.as_mut_ptr().add(start).cast(),
        capacity,
        &mut written,
      )
    };
    // SAFETY: N-API wrote `written` bytes of valid UTF-8 after `start`
    // (none if it failed), within the reserved capacity.
    unsafe { buffer.set_len(start + written.min(capacity)) };
    *text = String::from_utf8(buffer).map_err(Fault::internal)?;
    self.check(status)
  }

  pub fn read_number(self, value: Raw<'env>) -> f64 {
    self.out1(sys::napi_get_value_double, value.0, f64::NAN).1
  }

  pub fn read_bool(self, value: Raw<'env>) -> bool {
    self.out1(sys::napi_get_value_bool, value.0, false).1
  }

  pub fn read_date(self, value: Raw<'env>) -> f64 {
    self.out1(sys::napi_get_date_value, value.0, f64::NAN).1
  }

  // --- typed arrays ---

  /// Copies `values` into the start of a `Float64Array` (as much as fits);
  /// anything else is an error.
  pub fn write_f64s(self, array: Raw<'env>, values: &[f64]) -> JsResult<()> {
    let TypedArray {
      kind, length, data, ..
    } = self.typed_array(array)?;
    if kind != sys::TypedarrayType::float64_array || data.is_null() {
      return Err(Fault::internal("numbers must go into a Float64Array"));
    }
    let count = values.len().min(length);
    // SAFETY: N-API said `data` points at `length` f64s of this array
    // (checked to be a Float64Array, so aligned for f64), alive for this
    // callback; `count <= length`, and `values` is a Rust slice that cannot
    // overlap JavaScript's buffer.
    unsafe { ptr::copy_nonoverlapping(values.as_ptr(), data.cast::<f64>(), count) };
    Ok(())
  }

  /// What N-API says of a typed array (an error for any other value).
  pub(super) fn typed_array(self, array: Raw<'env>) -> JsResult<TypedArray<'env>> {
    let mut kind = 0;
    let mut length = 0;
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut offset = 0;
    // SAFETY: `self.env` is the running callback's environment and `array`
    // a live handle of it (module invariants); `napi_get_typedarray_info`
    // writes only to the five local out-pointers (and fails for a value
    // that is not a typed array).
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
      buffer: Raw::of(buffer),
    })
  }
}

/// A typed array's element type, length, first element and buffer.
pub(super) struct TypedArray<'env> {
  pub kind: sys::napi_typedarray_type,
  pub length: usize,
  pub data: *mut std::ffi::c_void,
  pub buffer: Raw<'env>,
}
