//! The attempts of one call with retries: an `executeWithFallback` call with
//! `retry`, `timeoutMs` or `signal`, or an `executeService` call. The loop
//! is the core's (`core::attempts`); here its attempts are made: the
//! operation is called through a threadsafe function (`lib/invoke.js` wraps
//! it so that it always resolves: `undefined` on success, `{ error, again }`
//! on failure), and how it settled is read into what the loop decides on.
//! The JavaScript side keeps the values; the loop keeps the count and the
//! decisions.
//!
//! The threadsafe functions are strong: while a call is attempting or
//! waiting to retry, Node.js stays alive; when it ends they are released.

use std::future::Future;
use std::sync::Arc;

use napi::bindgen_prelude::{FnArgs, Function, PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;
use tokio::sync::{oneshot, Notify};

use crate::core::attempts::{self, Attempt, AttemptEnd, AttemptLoop, Attempts, Deciding, Schedule};

use super::boundary::boundary;
use super::js_fn::{ended, AsyncJsFn, Ended, Heard};
use super::names::Prop;
use super::raw::{Js, Raw, Settled};
use super::retry::{asked_wait_ms, retryable};

/// One attempt's end, read on the JavaScript thread.
fn read_attempt(js: Js<'_>, settled: Settled<'_>) -> AttemptEnd {
  let Ended::Failed { error, outcome } = ended(js, settled) else {
    return AttemptEnd::Succeeded;
  };
  // `retryIf`'s answer, when the wrapper had one to give.
  let again = outcome
    .and_then(|outcome| js.get_name(outcome, Prop::Again).ok())
    .is_none_or(|flag| js.read_bool(flag));
  let now = js.now_ms();
  AttemptEnd::Failed {
    again,
    retryable: retryable(js, error),
    asked_wait_ms: asked_wait_ms(js, error, now),
    now,
  }
}

/// How the attempts ended.
#[napi(object)]
pub struct AttemptsOutcome {
  /// The last attempt succeeded.
  pub ok: bool,
  pub attempts: u32,
  /// Cancelled by the caller, or the environment went away.
  pub cancelled: bool,
  /// `executeService`: the breaker's state as the call ended.
  pub circuit_state: Option<String>,
}

impl From<attempts::Outcome> for AttemptsOutcome {
  fn from(outcome: attempts::Outcome) -> Self {
    Self {
      ok: outcome.ok,
      attempts: outcome.attempts,
      cancelled: outcome.cancelled,
      circuit_state: outcome.circuit_state.map(str::to_string),
    }
  }
}

pub type AttemptFn<'env> = Function<'env, u32, Unknown<'static>>;
pub type AbortFn<'env> = Function<'env, FnArgs<(u32, f64)>, Unknown<'static>>;

/// A call's attempts, not started yet: what decides, and how to cancel. The
/// loop and its threadsafe functions (which keep Node.js alive) are made
/// only when the attempts run, so a call that never runs them (a signal
/// already aborted, a call that joins a shared one) holds nothing.
pub struct PendingAttempts {
  schedule: Option<Schedule>,
  cancel: Arc<Notify>,
}

impl PendingAttempts {
  pub fn new(schedule: Option<Schedule>) -> Self {
    Self {
      schedule,
      cancel: Arc::new(Notify::new()),
    }
  }

  /// Runs the attempts: `first` is the first attempt's promise, made by the
  /// caller on this thread; `attempt(n)` and `abort(n, timeoutMs)` make the
  /// others. `None` when there is nothing to run, or it already ran.
  pub fn run<'env>(
    &mut self,
    env: &'env Env,
    first: Raw<'_>,
    attempt: AttemptFn,
    abort: AbortFn,
  ) -> napi::Result<Option<PromiseRaw<'env, AttemptsOutcome>>> {
    let Some(schedule) = self.schedule.take() else {
      return Ok(None);
    };
    let calls = JsAttempts::new(&attempt, &abort)?;
    let attempts = AttemptLoop::new(schedule, self.cancel.clone(), Deciding::global());
    let (sender, receiver) = oneshot::channel();
    boundary(env, |js| {
      js.when_settled(first, move |js, settled| {
        let _ = sender.send(read_attempt(js, settled));
      })
    })?;
    let first = Attempt::made(async { receiver.await.ok() });
    Ok(Some(env.spawn_future(async move {
      Ok(AttemptsOutcome::from(attempts.run(calls, first).await))
    })?))
  }

  /// The caller's signal aborted: no further attempt, no wait left.
  pub fn cancel(&self) {
    self.cancel.notify_one();
  }
}

/// The attempts after the first, made in JavaScript: `attempt(n)` starts
/// attempt `n`; `abort(n, timeoutMs)` fails it with a timeout error and
/// aborts its signal, returning `{ error, again }`. The threadsafe functions
/// are strong: while a call is attempting or waiting to retry, Node.js stays
/// alive; when the loop ends they are released.
struct JsAttempts {
  attempt: AsyncJsFn<u32, false>,
  abort: AsyncJsFn<FnArgs<(u32, f64)>, false>,
}

impl JsAttempts {
  fn new(attempt: &AttemptFn, abort: &AbortFn) -> napi::Result<Self> {
    Ok(Self {
      attempt: AsyncJsFn::new(attempt)?,
      abort: AsyncJsFn::new(abort)?,
    })
  }
}

impl Attempts for JsAttempts {
  fn attempt(&self, n: u32) -> Attempt<impl Future<Output = Option<AttemptEnd>> + Send> {
    // The time limit counts from when the attempt ran on the JavaScript
    // thread.
    let (ran, heard) = oneshot::channel();
    let sent = self.attempt.send(n, read_attempt, Some(Heard::Ran(ran)));
    Attempt {
      ran: Some(heard),
      end: async {
        match sent {
          Ok(receiver) => receiver.await.ok(),
          Err(_) => None,
        }
      },
    }
  }

  fn time_out(&self, n: u32, timeout_ms: u64) -> impl Future<Output = Option<AttemptEnd>> + Send {
    let args = FnArgs::from((n, timeout_ms as f64));
    async move { self.abort.call(args, read_attempt).await.ok() }
  }
}
