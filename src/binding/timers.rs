//! Timers on the Rust side that resume JavaScript: a delay runs on napi-rs's
//! tokio runtime, then a threadsafe function (one per environment) brings the
//! continuation back to the JavaScript thread. While any timer is pending the
//! threadsafe function is referenced, so Node.js does not exit under a
//! retry that is still to come; with none pending it lets the process go.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::time::Duration;

use napi::sys;

use super::errors::JsResult;
use super::js::{Js, Raw};

struct EnvTimers {
  env: sys::napi_env,
  tsfn: sys::napi_threadsafe_function,
  pending: usize,
}

thread_local! {
  static TIMERS: RefCell<Option<EnvTimers>> = const { RefCell::new(None) };
}

/// The threadsafe function's handle, sent to the timer task.
struct Resume(sys::napi_threadsafe_function);
// SAFETY: N-API allows napi_call_threadsafe_function from any thread.
unsafe impl Send for Resume {}

/// What comes back to the JavaScript thread: the continuation, held by a
/// reference made (and deleted) on that thread.
struct Continuation(sys::napi_ref);
// SAFETY: the reference only travels through the queue; it is used on the
// JavaScript thread it was made on.
unsafe impl Send for Continuation {}

unsafe extern "C" fn run_continuation(
  env: sys::napi_env,
  _callback: sys::napi_value,
  _context: *mut c_void,
  data: *mut c_void,
) {
  let continuation = unsafe { Box::from_raw(data.cast::<Continuation>()) };
  if env.is_null() {
    // The environment is going away; so is the continuation.
    return;
  }
  let js = Js::new(env);
  let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    finish_pending(js);
    let mut function = ptr::null_mut();
    unsafe { sys::napi_get_reference_value(env, continuation.0, &mut function) };
    unsafe { sys::napi_delete_reference(env, continuation.0) };
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
          Some(run_continuation),
          &mut tsfn,
        )
      })?;
      js.check(unsafe { sys::napi_unref_threadsafe_function(js.env(), tsfn) })?;
      *slot = Some(EnvTimers {
        env: js.env(),
        tsfn,
        pending: 0,
      });
    }
    Ok(f(slot.as_mut().expect("set above")))
  })
}

fn finish_pending(js: Js) {
  let _ = with_timers(js, |timers| {
    timers.pending = timers.pending.saturating_sub(1);
    if timers.pending == 0 {
      unsafe { sys::napi_unref_threadsafe_function(timers.env, timers.tsfn) };
    }
  });
}

/// Calls `continuation` (a JavaScript function) on this thread after
/// `delay_ms`, timed on the Rust side.
pub fn after(js: Js, delay_ms: u64, continuation: Raw) -> JsResult<()> {
  let mut reference = ptr::null_mut();
  js.check(unsafe { sys::napi_create_reference(js.env(), continuation.0, 1, &mut reference) })?;
  let tsfn = with_timers(js, |timers| {
    if timers.pending == 0 {
      unsafe { sys::napi_ref_threadsafe_function(timers.env, timers.tsfn) };
    }
    timers.pending += 1;
    timers.tsfn
  })?;
  let resume = Resume(tsfn);
  let continuation = Continuation(reference);
  napi::bindgen_prelude::spawn(async move {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    let resume = resume;
    let data = Box::into_raw(Box::new(continuation));
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
  Ok(())
}
