//! The core's coded warnings (`core::notices`: a kept write set aside, jobs
//! found gone, a server's eviction policy), raised on Rust's own threads,
//! shown as `process.emitWarning(message, { code })`. Each environment that
//! loads the package hands over one function (`lib/warnings.js`); a notice
//! goes to the oldest environment still alive, through a weak threadsafe
//! function (it never keeps Node.js alive). An environment's function is
//! dropped when the environment ends, and a second one from the same
//! environment (the package evaluated again) is not taken.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

use napi::bindgen_prelude::{FnArgs, Function, Unknown};
use napi::Env;
use napi_derive::napi;
use parking_lot::Mutex;

use super::boundary::boundary;
use super::errors::Fault;
use super::js_fn::AsyncJsFn;
use crate::core::notices::{self, Notice};

type Listener = AsyncJsFn<FnArgs<(String, String)>, true>;

/// By environment (its N-API handle, as a number), oldest first.
static LISTENERS: LazyLock<Mutex<Vec<(usize, Listener)>>> =
  LazyLock::new(|| Mutex::new(Vec::new()));
static SINK_SET: AtomicBool = AtomicBool::new(false);

/// `listener(code, message)` shows a notice in this environment.
#[napi(ts_args_type = "listener: (code: string, message: string) => void")]
pub fn on_notice(
  env: Env,
  listener: Function<'_, FnArgs<(String, String)>, Unknown<'static>>,
) -> napi::Result<()> {
  let key = env.raw() as usize;
  boundary(env, |_js| {
    let mut listeners = LISTENERS.lock();
    if listeners.iter().any(|(held, _)| *held == key) {
      return Ok(());
    }
    listeners.push((key, Listener::new(&listener)?));
    drop(listeners);
    env
      .add_env_cleanup_hook(key, |key| LISTENERS.lock().retain(|(held, _)| *held != key))
      .map_err(Fault::internal)?;
    if !SINK_SET.swap(true, Ordering::AcqRel) {
      notices::set_sink(deliver);
    }
    Ok(())
  })
}

fn deliver(notice: Notice) {
  let listeners = LISTENERS.lock();
  let args = (notice.code.to_string(), notice.message);
  for (_, listener) in listeners.iter().filter(|(_, l)| !l.is_gone()) {
    if listener
      .send(FnArgs::from(args.clone()), |_, _| (), None)
      .is_ok()
    {
      return;
    }
  }
}
