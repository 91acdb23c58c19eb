//! `executeService`'s decisions: whether a call may go through its
//! operation's circuit breaker, and after a failed attempt whether to retry
//! and how long to wait. Timers and calls are the binding's; the choices are
//! made here.

use super::breaker::{BreakerConfig, Breakers, Permit};
use super::retry::{JitterRandom, RetryPolicy};

/// One `executeService` call in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCall {
  pub operation: String,
  pub policy: RetryPolicy,
  /// Attempts made so far.
  pub attempts: u32,
  pub previous_delay_ms: u64,
  /// A half-open breaker's single trial: never retried, so that exactly one
  /// call tests the service.
  pub trial: bool,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
  RetryIn(u64),
  GiveUp,
}

impl ServiceCall {
  /// Asks the operation's breaker; `None` when the breaker keeps the call out.
  /// `breaker` is the call's breaker settings, which the operation's
  /// breaker takes from this call on.
  pub fn start(
    breakers: &mut Breakers,
    operation: &str,
    policy: RetryPolicy,
    breaker: BreakerConfig,
    now: u64,
  ) -> Option<Self> {
    let trial = match breakers.acquire(operation, breaker, now) {
      Permit::Allowed => false,
      Permit::Trial => true,
      Permit::Rejected => return None,
    };
    Some(Self {
      operation: operation.to_owned(),
      policy,
      attempts: 0,
      previous_delay_ms: 0,
      trial,
    })
  }

  pub fn succeeded(&mut self, breakers: &mut Breakers) {
    breakers.record_success(&self.operation);
  }

  /// After attempt number `self.attempts` failed. `retryable` is false for
  /// an error that says so; `at_least_ms` is what the error asked to wait.
  pub fn failed(
    &mut self,
    breakers: &mut Breakers,
    retryable: bool,
    at_least_ms: u64,
    random: &mut JitterRandom,
    now: u64,
  ) -> AfterFailure {
    // Other calls may have opened the breaker meanwhile: a call already
    // retrying stops then (README), as a new one would be kept out.
    if retryable
      && !self.trial
      && self.policy.allows_retry_after(self.attempts)
      && self.policy.honours_wait(at_least_ms)
      && !breakers.is_open(&self.operation, now)
    {
      let delay = self.policy.delay_ms(
        self.attempts,
        self.previous_delay_ms,
        random.next_unit(),
        at_least_ms,
      );
      self.previous_delay_ms = delay;
      return AfterFailure::RetryIn(delay);
    }
    breakers.record_failure(&self.operation, now);
    AfterFailure::GiveUp
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::breaker::{BreakerState, DEFAULT_OPEN_MS};
  use crate::core::retry::Jitter;

  fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
      max_retries,
      base_delay_ms: 10,
      max_delay_ms: 100,
      jitter: Jitter::None,
      max_retry_after_ms: 1_000,
    }
  }

  #[test]
  fn retries_then_gives_up_and_counts_one_breaker_failure() {
    let mut breakers = Breakers::default();
    let mut random = JitterRandom::new(1);
    let mut call =
      ServiceCall::start(&mut breakers, "op", policy(2), BreakerConfig::default(), 0).unwrap();
    let mut decisions = vec![];
    for _ in 0..3 {
      call.attempts += 1;
      decisions.push(call.failed(&mut breakers, true, 0, &mut random, 0));
    }
    assert_eq!(
      decisions,
      vec![
        AfterFailure::RetryIn(10),
        AfterFailure::RetryIn(20),
        AfterFailure::GiveUp
      ]
    );
    assert_eq!(breakers.status(0)[0].1.consecutive_failures, 1);
  }

  #[test]
  fn an_error_asking_past_the_cap_gives_up_at_once() {
    let mut breakers = Breakers::default();
    let mut random = JitterRandom::new(1);
    let mut call =
      ServiceCall::start(&mut breakers, "op", policy(5), BreakerConfig::default(), 0).unwrap();
    call.attempts = 1;
    assert_eq!(
      call.failed(&mut breakers, true, 1_000, &mut random, 0),
      AfterFailure::RetryIn(1_000)
    );
    call.attempts = 2;
    assert_eq!(
      call.failed(&mut breakers, true, 86_400_000, &mut random, 0),
      AfterFailure::GiveUp
    );
    assert_eq!(breakers.status(0)[0].1.consecutive_failures, 1);
  }

  #[test]
  fn a_non_retryable_error_gives_up_at_once() {
    let mut breakers = Breakers::default();
    let mut random = JitterRandom::new(1);
    let mut call =
      ServiceCall::start(&mut breakers, "op", policy(5), BreakerConfig::default(), 0).unwrap();
    call.attempts = 1;
    assert_eq!(
      call.failed(&mut breakers, false, 0, &mut random, 0),
      AfterFailure::GiveUp
    );
  }

  #[test]
  fn an_open_breaker_keeps_calls_out_and_a_trial_is_not_retried() {
    let mut breakers = Breakers::default();
    let mut random = JitterRandom::new(1);
    for _ in 0..5 {
      let mut call =
        ServiceCall::start(&mut breakers, "op", policy(0), BreakerConfig::default(), 0).unwrap();
      call.attempts = 1;
      call.failed(&mut breakers, true, 0, &mut random, 0);
    }
    assert!(
      ServiceCall::start(&mut breakers, "op", policy(3), BreakerConfig::default(), 1).is_none()
    );
    let mut trial = ServiceCall::start(
      &mut breakers,
      "op",
      policy(3),
      BreakerConfig::default(),
      DEFAULT_OPEN_MS,
    )
    .unwrap();
    assert!(trial.trial);
    assert!(ServiceCall::start(
      &mut breakers,
      "op",
      policy(3),
      BreakerConfig::default(),
      DEFAULT_OPEN_MS
    )
    .is_none());
    trial.attempts = 1;
    assert_eq!(
      trial.failed(&mut breakers, true, 0, &mut random, DEFAULT_OPEN_MS),
      AfterFailure::GiveUp
    );
    assert!(matches!(
      breakers.status(DEFAULT_OPEN_MS)[0].1.state,
      BreakerState::Open { .. }
    ));
  }

  #[test]
  fn a_call_retrying_stops_once_others_opened_the_breaker() {
    let mut breakers = Breakers::default();
    let mut random = JitterRandom::new(1);
    let config = BreakerConfig::default();
    let mut retrying = ServiceCall::start(&mut breakers, "op", policy(5), config, 0).unwrap();
    retrying.attempts = 1;
    assert_eq!(
      retrying.failed(&mut breakers, true, 0, &mut random, 0),
      AfterFailure::RetryIn(10)
    );
    for _ in 0..5 {
      let mut other = ServiceCall::start(&mut breakers, "op", policy(0), config, 1).unwrap();
      other.attempts = 1;
      other.failed(&mut breakers, true, 0, &mut random, 1);
    }
    retrying.attempts = 2;
    assert_eq!(
      retrying.failed(&mut breakers, true, 0, &mut random, 2),
      AfterFailure::GiveUp
    );
  }
}
