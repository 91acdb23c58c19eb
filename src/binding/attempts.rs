//! The attempts of one call with retries: an `executeWithFallback` call with
//! `retry`, `timeoutMs` or `signal`, or an `executeService` call. A loop on
//! tokio calls the operation through a threadsafe function (`lib/attempts.js`
//! wraps it so that it always resolves: `undefined` on success, `{ error,
//! again }` on failure), races it against `timeoutMs`, asks the core whether
//! to retry and how long to wait, and sleeps. The JavaScript side keeps the
//! values; this side keeps the count and the decisions.
//!
//! The threadsafe functions are strong: while a call is attempting or
//! waiting to retry, Node.js stays alive; when it ends they are released.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{FnArgs, Function, PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;
use tokio::sync::{oneshot, Notify};

use crate::core::retry::RetryPolicy;
use crate::core::service::{AfterFailure, ServiceCall};
use crate::core::singletons::global;

use super::boundary::boundary;
use super::errors::JsResult;
use super::js_fn::{ended, AsyncJsFn, Ended, Heard};
use super::names::Prop;
use super::raw::{Js, Raw, Settled};
use super::retry::{asked_wait_ms, retryable};

/// What decides after a failed attempt.
pub enum Schedule {
  /// `executeWithFallback`: its `retry` policy (no retries without one) and
  /// each attempt's time limit.
  Fallback {
    policy: RetryPolicy,
    timeout_ms: Option<u64>,
  },
  /// `executeService`: the call's breaker and policy.
  Service(ServiceCall),
}

/// One attempt's end, read on the JavaScript thread.
enum AttemptEnd {
  Fulfilled,
  Failed {
    /// `retryIf` said yes (or there is none).
    again: bool,
    retryable: bool,
    asked_wait_ms: u64,
    now: u64,
  },
}

fn read_attempt(js: Js, settled: Settled) -> AttemptEnd {
  let Ended::Failed { error, outcome } = ended(js, settled) else {
    return AttemptEnd::Fulfilled;
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
  /// caller; `attempt(n)` and `abort(n, timeoutMs)` make the others.
  /// `None` when there is nothing to run, or it already ran.
  pub fn run<'env>(
    &mut self,
    env: &'env Env,
    first: Raw,
    attempt: AttemptFn,
    abort: AbortFn,
  ) -> napi::Result<Option<PromiseRaw<'env, AttemptsOutcome>>> {
    let Some(schedule) = self.schedule.take() else {
      return Ok(None);
    };
    let attempts = AttemptLoop::new(&attempt, &abort, schedule, self.cancel.clone())?;
    let run = boundary(*env, |js| attempts.start(js, first))?;
    Ok(Some(env.spawn_future(async move { Ok(run.await) })?))
  }

  /// The caller's signal aborted: no further attempt, no wait left.
  pub fn cancel(&self) {
    self.cancel.notify_one();
  }
}

/// The loop of one call; `run` consumes it.
pub struct AttemptLoop {
  attempt: AsyncJsFn<u32, false>,
  abort: AsyncJsFn<FnArgs<(u32, f64)>, false>,
  schedule: Schedule,
  cancel: Arc<Notify>,
}

impl AttemptLoop {
  /// `attempt(n)` starts attempt `n`; `abort(n, timeoutMs)` fails it with a
  /// timeout error and aborts its signal, returning `{ error, again }`.
  pub fn new(
    attempt: &AttemptFn,
    abort: &AbortFn,
    schedule: Schedule,
    cancel: Arc<Notify>,
  ) -> napi::Result<Self> {
    Ok(Self {
      attempt: AsyncJsFn::new(attempt)?,
      abort: AsyncJsFn::new(abort)?,
      schedule,
      cancel,
    })
  }

  fn ended(&self, ok: bool, attempts: u32, cancelled: bool, now: u64) -> AttemptsOutcome {
    let circuit_state = match &self.schedule {
      Schedule::Service(_) if ok => Some("closed".to_string()),
      Schedule::Service(call) => Some(
        global()
          .breakers
          .lock()
          .state_of(&call.operation, now)
          .map_or("closed", |breaker| breaker.state.name())
          .to_string(),
      ),
      Schedule::Fallback { .. } => None,
    };
    AttemptsOutcome {
      ok,
      attempts,
      cancelled,
      circuit_state,
    }
  }

  /// One attempt, raced against its time limit and the caller's cancel.
  /// `None`: cancelled, or the environment went away. The first attempt
  /// was made on the JavaScript thread, where the call arrived (`first`).
  async fn attempt(
    &self,
    n: u32,
    first: Option<oneshot::Receiver<AttemptEnd>>,
  ) -> Option<AttemptEnd> {
    let timeout_ms = match self.schedule {
      Schedule::Fallback { timeout_ms, .. } => timeout_ms,
      Schedule::Service(_) => None,
    };
    // The time limit counts from when the attempt ran on the JavaScript
    // thread (the first ran before the loop began).
    let (ran, started) = oneshot::channel();
    let call = async {
      match first {
        Some(first) => {
          let _ = ran.send(());
          first.await.ok()
        }
        None => match self.attempt.send(n, read_attempt, Some(Heard::Ran(ran))) {
          Ok(receiver) => receiver.await.ok(),
          Err(_) => None,
        },
      }
    };
    let limit = async {
      match timeout_ms {
        Some(ms) if started.await.is_ok() => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => std::future::pending().await,
      }
    };
    tokio::select! {
      end = call => end,
      _ = limit => {
        // The attempt fails first: an operation that settles from its abort
        // listener is too late.
        let ms = timeout_ms.unwrap_or(0) as f64;
        self.abort.call(FnArgs::from((n, ms)), read_attempt).await.ok()
      }
      _ = self.cancel.notified() => None,
    }
  }

  /// Runs attempts until one succeeds, the schedule gives up, or the call
  /// is cancelled. `first` is the first attempt's promise, made by the
  /// caller on this thread: it is awaited from here.
  pub fn start(
    self,
    js: Js,
    first: Raw,
  ) -> JsResult<impl std::future::Future<Output = AttemptsOutcome>> {
    let (sender, receiver) = oneshot::channel();
    js.when_settled(first, move |js, settled| {
      let _ = sender.send(read_attempt(js, settled));
    })?;
    Ok(self.run(receiver))
  }

  async fn run(mut self, first: oneshot::Receiver<AttemptEnd>) -> AttemptsOutcome {
    let mut first = Some(first);
    let mut previous_delay = 0;
    let mut n = 0;
    loop {
      n += 1;
      let Some(end) = self.attempt(n, first.take()).await else {
        return self.ended(false, n, true, crate::core::clock::now_ms());
      };
      let AttemptEnd::Failed {
        again,
        retryable,
        asked_wait_ms,
        now,
      } = end
      else {
        if let Schedule::Service(call) = &mut self.schedule {
          call.succeeded(&mut global().breakers.lock());
        }
        return self.ended(true, n, false, 0);
      };
      let stores = global();
      let delay = match &mut self.schedule {
        Schedule::Fallback { policy, .. } => policy.after_failure(
          n,
          previous_delay,
          again && retryable,
          asked_wait_ms,
          &mut stores.random.lock(),
        ),
        Schedule::Service(call) => {
          call.attempts = n;
          let after = call.failed(
            &mut stores.breakers.lock(),
            retryable,
            asked_wait_ms,
            &mut stores.random.lock(),
            now,
          );
          match after {
            AfterFailure::RetryIn(delay) => Some(delay),
            AfterFailure::GiveUp => None,
          }
        }
      };
      let Some(delay) = delay else {
        return self.ended(false, n, false, now);
      };
      previous_delay = delay;
      tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
        _ = self.cancel.notified() => return self.ended(false, n, true, now),
      }
    }
  }
}
