//! The OpenTelemetry bridge's subscription (lib/telemetry.js), made once
//! per environment and holding no `vm` context.
//!
//! diagnostics_channel's channels are per thread, shared by every `vm`
//! context there (Jest and Vitest give each test file one), and a
//! subscriber made in a context keeps that whole context alive for as long
//! as it is subscribed. So the function subscribed is `relayEvent`, which
//! belongs to no context (it is this addon's), once per environment; each
//! context that starts the bridge hands its handler to `relayEventsTo`,
//! which holds it weakly: the context's own global holds it strongly, so
//! the handler lives exactly as long as its context. An event goes to the
//! newest handler still alive (one handler per event, as one subscription
//! gives), and is dropped when none is.

use napi::Env;
use napi_derive::napi;

use super::args;
use super::boundary::boundary;
use super::errors::JsResult;
use super::raw::{Js, Kind, Raw, Weak};

/// Makes `handler` the one events go to in this environment, until a newer
/// one comes or it is collected; held weakly. `true` the first time in
/// this environment: the caller subscribes `relayEvent` then, and only
/// then.
#[napi(ts_args_type = "handler: (message: unknown, name: string | symbol) => void")]
pub fn relay_events_to(env: &Env, handler: Raw<'_>) -> napi::Result<bool> {
  boundary(env, |js| {
    if js.kind(handler) != Kind::Function {
      return Err(args::type_error(js, "handler", "of type function", handler));
    }
    let held = js.held()?;
    let weak = js.weak(handler)?;
    let mut handlers = held.relay.borrow_mut();
    prune(js, &mut handlers)?;
    handlers.push(weak);
    Ok(!held.relay_subscribed.replace(true))
  })
}

/// The diagnostics_channel subscriber: calls the newest handler still
/// alive with `(message, name)`, or drops the event. Never throws (what
/// diagnostics_channel would rethrow as an uncaught exception): what the
/// handler throws, or a failure to find it, drops the event.
#[napi(ts_args_type = "message: unknown, name: string | symbol")]
pub fn relay_event(env: &Env, message: Raw<'_>, name: Raw<'_>) -> napi::Result<()> {
  boundary(env, |js| {
    if let Ok(Some(handler)) = newest_handler(js) {
      // A throw comes back cleared.
      let _ = js.call(handler, &[message, name]);
    }
    js.take_exception();
    Ok(())
  })
}

/// The newest handler still alive; the collected ones' references deleted.
fn newest_handler<'env>(js: Js<'env>) -> JsResult<Option<Raw<'env>>> {
  let mut handlers = js.held()?.relay.borrow_mut();
  prune(js, &mut handlers)?;
  match handlers.last() {
    Some(newest) => js.weak_value(newest),
    None => Ok(None),
  }
}

/// Deletes the references whose handler was collected.
fn prune(js: Js<'_>, handlers: &mut Vec<Weak>) -> JsResult<()> {
  let mut kept = Vec::with_capacity(handlers.len());
  for weak in handlers.drain(..) {
    if js.weak_value(&weak)?.is_some() {
      kept.push(weak);
    } else {
      js.forget(weak);
    }
  }
  *handlers = kept;
  Ok(())
}
