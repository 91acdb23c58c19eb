//! A JavaScript function that Rust's own tasks call and await: a typed
//! napi-rs `ThreadsafeFunction` brings each call to the JavaScript thread;
//! there the returned value (a promise or a plain value) is awaited and read
//! into a Rust value, which comes back to the task through a channel.
//!
//! napi-rs releases the threadsafe function when its environment goes away
//! (a worker thread that is terminated or exits): a call after that is
//! `Gone`, never a call into freed memory.

use napi::bindgen_prelude::{Function, JsValuesTupleIntoVec, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use tokio::sync::oneshot;

use super::names::Prop;
use super::raw::{Js, Kind, Raw, Settled};

/// What a caller of `send` wants to hear of its call.
pub enum Heard {
  /// The call ran (returned, threw, or was cut off as its environment
  /// ended).
  Ran(oneshot::Sender<()>),
  /// The function returned.
  Returned(oneshot::Sender<()>),
}

/// The environment the function belongs to has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Calls never keep Node.js alive (`WEAK`), or keep it alive for as long as
/// the function is held (`!WEAK`).
pub struct AsyncJsFn<Args: 'static + JsValuesTupleIntoVec, const WEAK: bool> {
  function: ThreadsafeFunction<Args, Unknown<'static>, Args, Status, false, WEAK, 0>,
}

impl<Args: 'static + JsValuesTupleIntoVec, const WEAK: bool> AsyncJsFn<Args, WEAK> {
  pub fn new(function: &Function<'_, Args, Unknown<'static>>) -> napi::Result<Self> {
    Ok(Self {
      function: function
        .build_threadsafe_function()
        .callee_handled::<false>()
        .weak::<WEAK>()
        .build()?,
    })
  }

  /// The function's environment has gone (napi-rs marks it when Node.js
  /// finalizes the threadsafe function).
  pub fn is_gone(&self) -> bool {
    self.function.aborted()
  }

  /// Calls the function with `args` and waits until what it returned has
  /// settled; `read` turns that into the task's value on the JavaScript
  /// thread. A synchronous throw counts as a rejection.
  pub async fn call<T: Send + 'static>(
    &self,
    args: Args,
    read: impl for<'a> FnOnce(Js<'a>, Settled<'a>) -> T + Send + 'static,
  ) -> Result<T, Gone> {
    self.send(args, read, None)?.await.map_err(|_| Gone)
  }

  /// Queues the call now (calls queued one after another reach JavaScript
  /// in that order) and returns the receiver of its value. `heard`, when
  /// given, hears when the call came back from JavaScript (a busy
  /// JavaScript thread runs it later than it was queued): `Heard::Ran`
  /// whatever it did, `Heard::Returned` only when the function returned (a
  /// call cut off by its environment ending, or one that threw, does not).
  pub fn send<T: Send + 'static>(
    &self,
    args: Args,
    read: impl for<'a> FnOnce(Js<'a>, Settled<'a>) -> T + Send + 'static,
    heard: Option<Heard>,
  ) -> Result<oneshot::Receiver<T>, Gone> {
    let (sender, receiver) = oneshot::channel();
    let status = self.function.call_with_return_value(
      args,
      ThreadsafeFunctionCallMode::NonBlocking,
      move |returned, env| {
        match heard {
          Some(Heard::Ran(ran)) => {
            let _ = ran.send(());
          }
          Some(Heard::Returned(came_back)) if returned.is_ok() => {
            let _ = came_back.send(());
          }
          _ => {}
        }
        // SAFETY: napi-rs runs this closure on the JavaScript thread, inside
        // the threadsafe function's call into JavaScript, and hands it that
        // call's `Env`; `js` borrows it, so neither `js` nor a handle read
        // through it outlives the closure (a promise's reactions get their
        // own, in `when_settled`).
        let js = unsafe { Js::new(&env) };
        let deliver = move |js: Js<'_>, settled: Settled<'_>| {
          // The task may have stopped waiting (a timeout): nothing to do.
          let _ = sender.send(read(js, settled));
        };
        match returned {
          Ok(value) => {
            if js.when_settled(value.into(), deliver).is_err() {
              js.take_exception();
            }
          }
          Err(error) => {
            let thrown = napi::JsError::from(error).into_unknown(env);
            deliver(js, Settled::Rejected(thrown.into()));
          }
        }
        Ok(())
      },
    );
    match status {
      Status::Ok => Ok(receiver),
      _ => Err(Gone),
    }
  }
}

/// How a call of one of `lib/`'s wrappers ended. The wrappers settle by one
/// rule: fulfilled with `undefined` is a success; fulfilled with
/// `{ error, ... }` is a failure (`outcome` is that object, for its other
/// fields); a rejection is a failure with what it rejected with.
pub enum Ended<'env> {
  Succeeded,
  Failed {
    error: Raw<'env>,
    outcome: Option<Raw<'env>>,
  },
}

pub fn ended<'env>(js: Js<'env>, settled: Settled<'env>) -> Ended<'env> {
  match settled {
    Settled::Fulfilled(value) if js.kind(value) == Kind::Undefined => Ended::Succeeded,
    Settled::Fulfilled(outcome) => Ended::Failed {
      error: js
        .get_name(outcome, Prop::Error)
        .unwrap_or_else(|_| js.undefined()),
      outcome: Some(outcome),
    },
    Settled::Rejected(error) => Ended::Failed {
      error,
      outcome: None,
    },
  }
}
