//! Timers on the Rust side that resume JavaScript: a delay runs on napi-rs's
//! tokio runtime, then a threadsafe function (one per environment) brings the
//! timer's id back to the JavaScript thread, where its continuation runs.
//! While any timer is pending the threadsafe function is referenced, so
//! Node.js does not exit under a retry that is still to come; with none
//! pending it lets the process go. A timer can be cancelled (a timeout whose
//! attempt settled in time), which also stops it keeping the process alive.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use std::time::Duration;

use napi::sys;

use super::errors::{callback, JsResult};
use super::js::{Js, Raw};

struct Pending {
  continuation: sys::napi_ref,
  task: tokio::task::JoinHandle<()>,
}

struct EnvTimers {
  env: sys::napi_env,
  tsfn: sys::napi_threadsafe_function,
  next_id: u64,
  pending: HashMap<u64, Pending>,
}

thread_local! {
  static TIMERS: RefCell<Option<EnvTimers>> = const { RefCell::new(None) };
}

/// The threadsafe function's handle, sent to the timer task.
struct Resume(sys::napi_threadsafe_function);
// SAFETY: N-API allows napi_call_threadsafe_function from any thread.
unsafe impl Send for Resume {}

unsafe extern "C" fn fire(
  env: sys::napi_env,
  _callback: sys::napi_value,
  _context: *mut c_void,
  data: *mut c_void,
) {
  let id = unsafe { Box::from_raw(data.cast::<u64>()) };
  if env.is_null() {
    // The environment is going away, and its timers with it.
    return;
  }
  let js = Js::new(env);
  let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    // A cancelled timer's id finds nothing.
    let Some(continuation) = take(js, *id) else {
      return;
    };
    let mut function = ptr::null_mut();
    unsafe { sys::napi_get_reference_value(env, continuation, &mut function) };
    unsafe { sys::napi_delete_reference(env, continuation) };
    if !function.is_null() {
      // A throw here is the continuation's own bug; keep it from the loop.
      if let Ok(Err(_)) = js.call(Raw(function), &[]) {}
    }
  }));
}

fn with_timers<T>(js: Js, f: impl FnOnce(&mut EnvTimers) -> T) -> JsResult<T> {
  TIMERS.with(|cell| {
    let mut slot = cell.borrow_mut();
    if slot.as_ref().is_none_or(|t| t.env != js.env()) {
      let name = js.string("fallback-mechanisms timers")?;
      let mut tsfn = ptr::null_mut();
      js.check(unsafe {
        sys::napi_create_threadsafe_function(
          js.env(),
          ptr::null_mut(),
          ptr::null_mut(),
          name.0,
          0,
          1,
          ptr::null_mut(),
          None,
          ptr::null_mut(),
          Some(fire),
          &mut tsfn,
        )
      })?;
      js.check(unsafe { sys::napi_unref_threadsafe_function(js.env(), tsfn) })?;
      *slot = Some(EnvTimers {
        env: js.env(),
        tsfn,
        next_id: 1,
        pending: HashMap::new(),
      });
    }
    Ok(f(slot.as_mut().expect("set above")))
  })
}

/// Removes a pending timer, letting the process go when it was the last.
fn take(js: Js, id: u64) -> Option<sys::napi_ref> {
  with_timers(js, |timers| {
    let pending = timers.pending.remove(&id)?;
    if timers.pending.is_empty() {
      unsafe { sys::napi_unref_threadsafe_function(timers.env, timers.tsfn) };
    }
    pending.task.abort();
    Some(pending.continuation)
  })
  .ok()
  .flatten()
}

/// Calls `continuation` (a JavaScript function) on this thread after
/// `delay_ms`, timed on the Rust side. Returns the timer's id.
pub fn after(js: Js, delay_ms: u64, continuation: Raw) -> JsResult<u64> {
  let mut reference = ptr::null_mut();
  js.check(unsafe { sys::napi_create_reference(js.env(), continuation.0, 1, &mut reference) })?;
  with_timers(js, |timers| {
    if timers.pending.is_empty() {
      unsafe { sys::napi_ref_threadsafe_function(timers.env, timers.tsfn) };
    }
    let id = timers.next_id;
    timers.next_id += 1;
    let resume = Resume(timers.tsfn);
    let task = napi::bindgen_prelude::spawn(async move {
      tokio::time::sleep(Duration::from_millis(delay_ms)).await;
      let resume = resume;
      let data = Box::into_raw(Box::new(id));
      let status = unsafe {
        sys::napi_call_threadsafe_function(
          resume.0,
          data.cast(),
          sys::ThreadsafeFunctionCallMode::nonblocking,
        )
      };
      if status != sys::Status::napi_ok {
        // The environment is closing: nothing will run it.
        drop(unsafe { Box::from_raw(data) });
      }
    });
    timers.pending.insert(
      id,
      Pending {
        continuation: reference,
        task,
      },
    );
    id
  })
}

/// Cancels a timer made by `after`; false when it already ran or was
/// cancelled.
pub fn cancel(js: Js, id: u64) -> bool {
  match take(js, id) {
    Some(continuation) => {
      unsafe { sys::napi_delete_reference(js.env(), continuation) };
      true
    }
    None => false,
  }
}

callback!(
  /// `timers.after(ms, continuation)` for `glue.js`: returns the timer's id.
  fn after_callback(js, [delay, continuation]) {
    let id = after(js, js.read_number(delay).max(0.0) as u64, continuation)?;
    js.number(id as f64)
  }
);

callback!(
  /// `timers.cancel(id)` for `glue.js`.
  fn cancel_callback(js, [id]) {
    js.boolean(cancel(js, js.read_number(id) as u64))
  }
);
