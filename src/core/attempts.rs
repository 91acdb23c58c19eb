//! The attempts of one call with retries (`executeWithFallback` with
//! `retry`, `timeoutMs` or `signal`, or `executeService`): each attempt
//! raced against its time limit and the caller's cancel, the retry decision
//! after a failure, the wait before the next one. How an attempt is made is
//! the caller's (`Attempts`): the binding calls JavaScript, the tests fake
//! it. Time is tokio's, so that tests can pause it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};

use super::breaker::Breakers;
use super::retry::{JitterRandom, RetryPolicy};
use super::service::{AfterFailure, ServiceCall};

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

/// How one attempt ended: what the decision needs to know of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
  Succeeded,
  Failed {
    /// `retryIf` said yes (or there is none).
    again: bool,
    /// The error did not say `retryable: false`.
    retryable: bool,
    /// What the error asked to wait (0: nothing).
    asked_wait_ms: u64,
    /// When it failed, by the caller's clock.
    now: u64,
  },
}

/// One attempt on its way. `ran` hears when it was actually made (its time
/// limit counts from then: a busy caller makes it later than it was asked);
/// `None` when it was made already. `end` is how it ended, `None` when it
/// never will (the caller's environment went away).
pub struct Attempt<E> {
  pub ran: Option<oneshot::Receiver<()>>,
  pub end: E,
}

impl<E> Attempt<E> {
  /// An attempt that was made before the loop began.
  pub fn made(end: E) -> Self {
    Self { ran: None, end }
  }
}

/// How the attempts after the first are made and timed out.
pub trait Attempts {
  /// Makes attempt `n` (2 and on).
  fn attempt(&self, n: u32) -> Attempt<impl Future<Output = Option<AttemptEnd>> + Send>;

  /// Attempt `n` ran past `timeout_ms`: fails it with a timeout error and
  /// says how it ended (one that settled first keeps its own end). `None`:
  /// the caller's environment went away.
  fn time_out(&self, n: u32, timeout_ms: u64) -> impl Future<Output = Option<AttemptEnd>> + Send;
}

/// The shared state the decisions read and write: the breakers (of
/// `executeService`), the jitter's randomness, and the clock the final
/// breaker state is read at when no attempt said the time.
pub struct Deciding<'a> {
  pub breakers: &'a Mutex<Breakers>,
  pub random: &'a Mutex<JitterRandom>,
  pub now: fn() -> u64,
}

impl Deciding<'static> {
  /// The process-wide breakers and randomness, and the wall clock.
  pub fn global() -> Self {
    let stores = super::singletons::global();
    Self {
      breakers: &stores.breakers,
      random: &stores.random,
      now: super::clock::now_ms,
    }
  }
}

/// How the attempts ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
  /// The last attempt succeeded.
  pub ok: bool,
  pub attempts: u32,
  /// Cancelled by the caller, or the environment went away.
  pub cancelled: bool,
  /// `executeService`: the breaker's state as the call ended.
  pub circuit_state: Option<&'static str>,
}

/// The loop of one call; `run` consumes it.
pub struct AttemptLoop<'a> {
  schedule: Schedule,
  cancel: Arc<Notify>,
  deciding: Deciding<'a>,
}

impl<'a> AttemptLoop<'a> {
  /// `cancel` notified (once) ends the loop: no further attempt, no wait
  /// left.
  pub fn new(schedule: Schedule, cancel: Arc<Notify>, deciding: Deciding<'a>) -> Self {
    Self {
      schedule,
      cancel,
      deciding,
    }
  }

  fn ended(&self, ok: bool, attempts: u32, cancelled: bool, now: Option<u64>) -> Outcome {
    let circuit_state = match &self.schedule {
      Schedule::Service(_) if ok => Some("closed"),
      Schedule::Service(call) => Some(
        self
          .deciding
          .breakers
          .lock()
          .state_of(&call.operation, now.unwrap_or_else(self.deciding.now))
          .map_or("closed", |breaker| breaker.state.name()),
      ),
      Schedule::Fallback { .. } => None,
    };
    Outcome {
      ok,
      attempts,
      cancelled,
      circuit_state,
    }
  }

  /// One attempt, raced against its time limit and the caller's cancel.
  /// `None`: cancelled, or the environment went away.
  async fn race(
    &self,
    attempts: &impl Attempts,
    n: u32,
    attempt: Attempt<impl Future<Output = Option<AttemptEnd>>>,
  ) -> Option<AttemptEnd> {
    let timeout_ms = match self.schedule {
      Schedule::Fallback { timeout_ms, .. } => timeout_ms,
      Schedule::Service(_) => None,
    };
    let limit = async {
      let made = match attempt.ran {
        Some(ran) => ran.await.is_ok(),
        None => true,
      };
      match timeout_ms {
        Some(ms) if made => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => std::future::pending().await,
      }
    };
    tokio::select! {
      end = attempt.end => end,
      _ = limit => {
        // The attempt fails first: an operation that settles from its abort
        // listener is too late.
        attempts.time_out(n, timeout_ms.unwrap_or(0)).await
      }
      _ = self.cancel.notified() => None,
    }
  }

  /// Runs attempts until one succeeds, the schedule gives up, or the call
  /// is cancelled. `first` is the first attempt, made by the caller.
  pub async fn run(
    mut self,
    attempts: impl Attempts,
    first: Attempt<impl Future<Output = Option<AttemptEnd>>>,
  ) -> Outcome {
    let mut previous_delay = 0;
    let mut n = 1;
    let mut end = self.race(&attempts, n, first).await;
    loop {
      let Some(this) = end else {
        return self.ended(false, n, true, None);
      };
      let AttemptEnd::Failed {
        again,
        retryable,
        asked_wait_ms,
        now,
      } = this
      else {
        if let Schedule::Service(call) = &mut self.schedule {
          call.succeeded(&mut self.deciding.breakers.lock());
        }
        return self.ended(true, n, false, None);
      };
      let delay = match &mut self.schedule {
        Schedule::Fallback { policy, .. } => policy.after_failure(
          n,
          previous_delay,
          again && retryable,
          asked_wait_ms,
          &mut self.deciding.random.lock(),
        ),
        Schedule::Service(call) => {
          call.attempts = n;
          let after = call.failed(
            &mut self.deciding.breakers.lock(),
            retryable,
            asked_wait_ms,
            &mut self.deciding.random.lock(),
            now,
          );
          match after {
            AfterFailure::RetryIn(delay) => Some(delay),
            AfterFailure::GiveUp => None,
          }
        }
      };
      let Some(delay) = delay else {
        return self.ended(false, n, false, Some(now));
      };
      previous_delay = delay;
      tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
        _ = self.cancel.notified() => return self.ended(false, n, true, Some(now)),
      }
      n += 1;
      end = self.race(&attempts, n, attempts.attempt(n)).await;
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::breaker::BreakerConfig;
  use crate::core::retry::Jitter;
  use tokio::time::Instant;

  /// What a fake attempt does.
  #[derive(Debug, Clone, Copy)]
  enum Fake {
    Ok,
    Fail {
      retryable: bool,
      asked_wait_ms: u64,
    },
    /// `retryIf` says no.
    Refused,
    /// Never ends; made after this many ms.
    Hang {
      made_after_ms: u64,
    },
    /// Never ends, and never made (its call was lost on the way).
    Lost,
    /// The environment went away.
    Gone,
  }

  const FAIL: Fake = Fake::Fail {
    retryable: true,
    asked_wait_ms: 0,
  };
  const HANG: Fake = Fake::Hang { made_after_ms: 0 };

  /// Attempts that follow a script, and what the loop asked of them.
  struct Script {
    plan: Vec<Fake>,
    made: Mutex<Vec<u32>>,
    timed_out: Mutex<Vec<(u32, u64, Instant)>>,
  }

  impl Script {
    fn new(plan: Vec<Fake>) -> Self {
      Self {
        plan,
        made: Mutex::new(vec![]),
        timed_out: Mutex::new(vec![]),
      }
    }

    fn make(&self, n: u32) -> Attempt<impl Future<Output = Option<AttemptEnd>> + Send> {
      let fake = self.plan[n as usize - 1];
      let (ran, heard) = oneshot::channel();
      match fake {
        Fake::Lost => drop(ran),
        Fake::Hang { made_after_ms } if made_after_ms > 0 => {
          tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(made_after_ms)).await;
            let _ = ran.send(());
          });
        }
        _ => {
          let _ = ran.send(());
        }
      }
      let end = async move {
        match fake {
          Fake::Ok => Some(AttemptEnd::Succeeded),
          Fake::Fail {
            retryable,
            asked_wait_ms,
          } => Some(AttemptEnd::Failed {
            again: true,
            retryable,
            asked_wait_ms,
            now: 0,
          }),
          Fake::Refused => Some(AttemptEnd::Failed {
            again: false,
            retryable: true,
            asked_wait_ms: 0,
            now: 0,
          }),
          Fake::Hang { .. } | Fake::Lost => std::future::pending().await,
          Fake::Gone => None,
        }
      };
      Attempt {
        ran: Some(heard),
        end,
      }
    }

    fn made(&self) -> Vec<u32> {
      self.made.lock().clone()
    }
  }

  impl Attempts for &Script {
    fn attempt(&self, n: u32) -> Attempt<impl Future<Output = Option<AttemptEnd>> + Send> {
      self.made.lock().push(n);
      self.make(n)
    }

    fn time_out(&self, n: u32, timeout_ms: u64) -> impl Future<Output = Option<AttemptEnd>> + Send {
      self.timed_out.lock().push((n, timeout_ms, Instant::now()));
      std::future::ready(Some(AttemptEnd::Failed {
        again: true,
        retryable: true,
        asked_wait_ms: 0,
        now: 0,
      }))
    }
  }

  struct Shared {
    breakers: Mutex<Breakers>,
    random: Mutex<JitterRandom>,
  }

  impl Shared {
    fn new() -> Self {
      Self {
        breakers: Mutex::new(Breakers::default()),
        random: Mutex::new(JitterRandom::new(1)),
      }
    }

    fn deciding(&self) -> Deciding<'_> {
      Deciding {
        breakers: &self.breakers,
        random: &self.random,
        now: || 0,
      }
    }
  }

  /// Delays of 100, 200, 400 ... ms (no jitter), at most 1 s asked.
  fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
      max_retries,
      base_delay_ms: 100,
      max_delay_ms: 10_000,
      jitter: Jitter::None,
      max_retry_after_ms: 1_000,
    }
  }

  fn fallback(max_retries: u32, timeout_ms: Option<u64>) -> Schedule {
    Schedule::Fallback {
      policy: policy(max_retries),
      timeout_ms,
    }
  }

  /// Runs `schedule` over `plan` (with a cancel that nothing notifies);
  /// how it ended (`None`: still on after an hour), what it made, and how
  /// long it took.
  async fn run(schedule: Schedule, plan: Vec<Fake>) -> (Option<Outcome>, Script, u64) {
    run_on(&Shared::new(), schedule, plan).await
  }

  /// `run`, on the breakers and randomness of `shared`.
  async fn run_on(
    shared: &Shared,
    schedule: Schedule,
    plan: Vec<Fake>,
  ) -> (Option<Outcome>, Script, u64) {
    let script = Script::new(plan);
    let started = Instant::now();
    let outcome = AttemptLoop::new(schedule, Arc::new(Notify::new()), shared.deciding())
      .run(&script, script.make(1));
    let outcome = tokio::time::timeout(Duration::from_secs(3_600), outcome)
      .await
      .ok();
    (outcome, script, started.elapsed().as_millis() as u64)
  }

  fn ended(ok: bool, attempts: u32, cancelled: bool) -> Option<Outcome> {
    Some(Outcome {
      ok,
      attempts,
      cancelled,
      circuit_state: None,
    })
  }

  #[tokio::test(start_paused = true)]
  async fn retries_up_to_the_maximum_then_fails() {
    let (outcome, script, took) = run(fallback(2, None), vec![FAIL; 5]).await;
    assert_eq!(outcome, ended(false, 3, false));
    assert_eq!(script.made(), vec![2, 3]);
    assert_eq!(took, 100 + 200, "the backoff was waited");
  }

  #[tokio::test(start_paused = true)]
  async fn a_success_on_attempt_k_stops() {
    let (outcome, script, took) = run(fallback(5, None), vec![FAIL, FAIL, Fake::Ok, FAIL]).await;
    assert_eq!(outcome, ended(true, 3, false));
    assert_eq!(script.made(), vec![2, 3]);
    assert_eq!(took, 300);
  }

  #[tokio::test(start_paused = true)]
  async fn an_attempt_that_never_ends_times_out_and_is_retried() {
    let (outcome, script, took) = run(fallback(1, Some(250)), vec![HANG, Fake::Ok]).await;
    assert_eq!(outcome, ended(true, 2, false));
    let timed_out: Vec<_> = script
      .timed_out
      .lock()
      .iter()
      .map(|&(n, ms, _)| (n, ms))
      .collect();
    assert_eq!(timed_out, vec![(1, 250)]);
    assert_eq!(took, 250 + 100);
  }

  #[tokio::test(start_paused = true)]
  async fn the_time_limit_counts_from_when_the_attempt_was_made() {
    let late = Fake::Hang { made_after_ms: 40 };
    let (outcome, script, took) = run(fallback(1, Some(250)), vec![FAIL, late]).await;
    assert_eq!(outcome, ended(false, 2, false));
    let timed_out = script.timed_out.lock().clone();
    assert_eq!(timed_out.len(), 1);
    assert_eq!((timed_out[0].0, timed_out[0].1), (2, 250));
    assert_eq!(took, 100 + 40 + 250);
  }

  #[tokio::test(start_paused = true)]
  async fn without_a_time_limit_an_attempt_is_waited_for() {
    let (outcome, script, _) = run(fallback(3, None), vec![FAIL, HANG]).await;
    assert_eq!(outcome, None, "the loop ended");
    assert!(script.timed_out.lock().is_empty());
  }

  #[tokio::test(start_paused = true)]
  async fn an_attempt_never_made_is_not_timed_out() {
    let (outcome, script, _) = run(fallback(3, Some(250)), vec![FAIL, Fake::Lost]).await;
    assert_eq!(outcome, None, "the loop ended");
    assert!(script.timed_out.lock().is_empty());
  }

  #[tokio::test(start_paused = true)]
  async fn a_cancel_during_the_wait_ends_the_loop_as_cancelled() {
    let shared = Shared::new();
    let script = Script::new(vec![FAIL; 4]);
    let cancel = Arc::new(Notify::new());
    let mut schedule = fallback(3, None);
    if let Schedule::Fallback { policy, .. } = &mut schedule {
      policy.base_delay_ms = 1_000;
    }
    let started = Instant::now();
    let (outcome, ()) = tokio::join!(
      AttemptLoop::new(schedule, cancel.clone(), shared.deciding()).run(&script, script.make(1)),
      async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.notify_one();
      }
    );
    assert_eq!(Some(outcome), ended(false, 1, true));
    assert_eq!(
      script.made(),
      Vec::<u32>::new(),
      "no attempt after the cancel"
    );
    assert_eq!(started.elapsed(), Duration::from_millis(500));
  }

  #[tokio::test(start_paused = true)]
  async fn a_cancel_during_an_attempt_ends_the_loop_as_cancelled() {
    let shared = Shared::new();
    let script = Script::new(vec![FAIL, HANG, Fake::Ok]);
    let cancel = Arc::new(Notify::new());
    let (outcome, ()) = tokio::join!(
      AttemptLoop::new(fallback(3, Some(10_000)), cancel.clone(), shared.deciding())
        .run(&script, script.make(1)),
      async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.notify_one();
      }
    );
    assert_eq!(Some(outcome), ended(false, 2, true));
    assert!(script.timed_out.lock().is_empty());
  }

  #[tokio::test(start_paused = true)]
  async fn an_environment_gone_ends_the_loop_as_cancelled() {
    let (outcome, script, took) = run(fallback(3, None), vec![FAIL, Fake::Gone, Fake::Ok]).await;
    assert_eq!(outcome, ended(false, 2, true));
    assert_eq!(script.made(), vec![2]);
    assert_eq!(took, 100);
  }

  #[tokio::test(start_paused = true)]
  async fn a_wait_past_max_retry_after_ms_is_not_honoured() {
    let asking = |asked_wait_ms| Fake::Fail {
      retryable: true,
      asked_wait_ms,
    };
    let (outcome, script, took) = run(fallback(3, None), vec![asking(1_001), Fake::Ok]).await;
    assert_eq!(outcome, ended(false, 1, false));
    assert_eq!(script.made(), Vec::<u32>::new());
    assert_eq!(took, 0, "gave up at once, without waiting");
    // At the cap, the wait is honoured: the ask wins over the backoff.
    let (outcome, _, took) = run(fallback(3, None), vec![asking(1_000), Fake::Ok]).await;
    assert_eq!(outcome, ended(true, 2, false));
    assert_eq!(took, 1_000);
  }

  #[tokio::test(start_paused = true)]
  async fn a_failure_not_to_retry_stops_at_once() {
    let not_retryable = Fake::Fail {
      retryable: false,
      asked_wait_ms: 0,
    };
    for first in [not_retryable, Fake::Refused] {
      let (outcome, script, took) = run(fallback(3, None), vec![first, Fake::Ok]).await;
      assert_eq!(outcome, ended(false, 1, false), "{first:?}");
      assert_eq!(script.made(), Vec::<u32>::new());
      assert_eq!(took, 0);
    }
  }

  #[tokio::test(start_paused = true)]
  async fn a_service_call_reports_its_breaker() {
    let shared = Shared::new();
    let config = BreakerConfig {
      failure_threshold: 1,
      ..BreakerConfig::default()
    };
    let start = |shared: &Shared| {
      Schedule::Service(
        ServiceCall::start(&mut shared.breakers.lock(), "op", policy(1), config, 0).unwrap(),
      )
    };
    // A give-up with threshold 1 opens the breaker; a success leaves it closed.
    for (plan, ok, state) in [
      (vec![FAIL, Fake::Refused], false, "open"),
      (vec![FAIL, Fake::Ok], true, "closed"),
    ] {
      shared.breakers.lock().reset(None);
      let (outcome, _, _) = run_on(&shared, start(&shared), plan).await;
      let expected = ended(ok, 2, false).map(|outcome| Outcome {
        circuit_state: Some(state),
        ..outcome
      });
      assert_eq!(outcome, expected);
    }
  }
}
