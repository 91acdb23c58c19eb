//! The core's coded warnings (`core::notices`: a kept write set aside, jobs
//! found gone, a server's eviction policy), raised on Rust's own threads,
//! shown as `process.emitWarning(message, 'Warning', code)`. Each
//! environment that loads the package asks for them once
//! (`lib/warnings.js`): its own realm's `process.emitWarning` is held (never
//! a function of a `vm` context that loaded the package, which it would
//! keep alive); a notice goes to the oldest environment still alive,
//! through a weak threadsafe function (it never keeps Node.js alive). An
//! environment's function is dropped when the environment ends, and asking
//! again from the same environment (the package evaluated again, in the
//! same or another context) changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

use napi::bindgen_prelude::{FnArgs, Function, JsObjectValue, Object, Unknown};
use napi::Env;
use napi_derive::napi;
use parking_lot::Mutex;

use super::boundary::boundary;
use super::errors::Fault;
use super::js_fn::AsyncJsFn;
use crate::core::notices::{self, Notice};

/// `process.emitWarning(message, type, code)`.
type EmitWarning<'env> = Function<'env, FnArgs<(String, String, String)>, Unknown<'static>>;
type Listener = AsyncJsFn<FnArgs<(String, String, String)>, true>;

/// By environment (its N-API handle, as a number), oldest first.
static LISTENERS: LazyLock<Mutex<Vec<(usize, Listener)>>> =
  LazyLock::new(|| Mutex::new(Vec::new()));
static SINK_SET: AtomicBool = AtomicBool::new(false);

/// Shows the notices in this environment, with its own realm's
/// `process.emitWarning`, as `fallback-mechanisms: <message>` with the
/// notice's code.
#[napi]
pub fn on_notice(env: &Env) -> napi::Result<()> {
  let key = env.raw() as usize;
  boundary(env, |_js| {
    let mut listeners = LISTENERS.lock();
    if listeners.iter().any(|(held, _)| *held == key) {
      return Ok(());
    }
    let emit_warning: EmitWarning = env
      .get_global()?
      .get_named_property::<Object>("process")?
      .get_named_property("emitWarning")?;
    listeners.push((key, Listener::new(&emit_warning)?));
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
  let args = (
    format!("fallback-mechanisms: {}", notice.message),
    "Warning".to_string(),
    notice.code.to_string(),
  );
  for (_, listener) in listeners.iter().filter(|(_, l)| !l.is_gone()) {
    if listener
      .send(FnArgs::from(args.clone()), |_, _| (), None)
      .is_ok()
    {
      return;
    }
  }
}
