//! Circuit breakers, one per operation name: open after a run of
//! consecutive failures, half-open after a cool-down (exactly one trial call
//! goes through), closed again when that trial succeeds.
//!
//! Each breaker keeps its own settings (threshold, cool-down): those of the
//! latest call that asked for it (`acquire`), so the settings a call passes
//! apply from that call on; an open breaker keeps the end of its cool-down
//! as it was when it opened.

use std::collections::BTreeMap;

pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_OPEN_MS: u64 = 60_000;
/// Operations tracked at most; past it the closed breaker used least
/// recently goes first (an open one is kept: it is protecting something).
pub const MAX_OPERATIONS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
  Closed,
  Open {
    until: u64,
  },
  /// The cool-down is over; one trial call is (or may be) in flight, since
  /// `since`.
  HalfOpen {
    trial_in_flight: bool,
    since: u64,
  },
}

impl BreakerState {
  pub fn name(&self) -> &'static str {
    match self {
      BreakerState::Closed => "closed",
      BreakerState::Open { .. } => "open",
      BreakerState::HalfOpen { .. } => "half-open",
    }
  }
}

/// What a call may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
  Allowed,
  /// The one call that tests a half-open breaker.
  Trial,
  /// The breaker is open (or its trial is in flight): do not call.
  Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
  pub state: BreakerState,
  pub consecutive_failures: u32,
  pub opened_at: Option<u64>,
  /// The settings of the latest call that asked for this breaker.
  pub config: BreakerConfig,
}

impl Default for Breaker {
  fn default() -> Self {
    Self {
      state: BreakerState::Closed,
      consecutive_failures: 0,
      opened_at: None,
      config: BreakerConfig::default(),
    }
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
  /// Consecutive failed calls that open the breaker (at least 1).
  pub failure_threshold: u32,
  /// How long it stays open before a half-open trial; also how long a trial
  /// may stay unanswered before it is taken as lost.
  pub open_ms: u64,
}

impl Default for BreakerConfig {
  fn default() -> Self {
    Self {
      failure_threshold: DEFAULT_FAILURE_THRESHOLD,
      open_ms: DEFAULT_OPEN_MS,
    }
  }
}

/// The breakers of every operation seen.
#[derive(Debug, Default)]
pub struct Breakers {
  by_operation: BTreeMap<String, Breaker>,
  /// When each breaker was last asked for, in calls.
  last_used: BTreeMap<String, u64>,
  uses: u64,
}

impl Breakers {
  fn breaker(&mut self, operation: &str) -> &mut Breaker {
    self.uses += 1;
    if !self.by_operation.contains_key(operation) {
      if self.by_operation.len() >= MAX_OPERATIONS {
        self.forget_least_recently_used();
      }
      self
        .by_operation
        .insert(operation.to_owned(), Breaker::default());
    }
    self.last_used.insert(operation.to_owned(), self.uses);
    self
      .by_operation
      .get_mut(operation)
      .expect("inserted above")
  }

  /// Past the bound: the closed breaker used least recently (O(n), once per
  /// new operation beyond `MAX_OPERATIONS`).
  fn forget_least_recently_used(&mut self) {
    let victim = self
      .last_used
      .iter()
      .filter(|(name, _)| {
        matches!(
          self.by_operation.get(*name).map(|b| b.state),
          Some(BreakerState::Closed)
        )
      })
      .min_by_key(|(_, used)| **used)
      .map(|(name, _)| name.clone());
    if let Some(name) = victim {
      self.by_operation.remove(&name);
      self.last_used.remove(&name);
    }
  }

  /// Asks to call `operation` now, with the call's settings (which the
  /// breaker keeps from now on).
  pub fn acquire(&mut self, operation: &str, config: BreakerConfig, now: u64) -> Permit {
    let open_ms = config.open_ms;
    let breaker = self.breaker(operation);
    breaker.config = config;
    match breaker.state {
      BreakerState::Closed => Permit::Allowed,
      BreakerState::Open { until } if now < until => Permit::Rejected,
      // A trial that has not reported back within a cool-down is taken as
      // lost (a hung call), and the next call may try again.
      BreakerState::HalfOpen {
        trial_in_flight: true,
        since,
      } if now < since.saturating_add(open_ms) => Permit::Rejected,
      BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => {
        breaker.state = BreakerState::HalfOpen {
          trial_in_flight: true,
          since: now,
        };
        Permit::Trial
      }
    }
  }

  /// Whether the breaker is open (and still cooling down) now.
  pub fn is_open(&self, operation: &str, now: u64) -> bool {
    matches!(
      self.state_of(operation, now).map(|b| b.state),
      Some(BreakerState::Open { .. })
    )
  }

  /// A call that was let through succeeded.
  pub fn record_success(&mut self, operation: &str) {
    let breaker = self.breaker(operation);
    *breaker = Breaker {
      config: breaker.config,
      ..Breaker::default()
    };
  }

  /// A call that was let through failed (after its retries).
  pub fn record_failure(&mut self, operation: &str, now: u64) {
    let breaker = self.breaker(operation);
    let config = breaker.config;
    breaker.consecutive_failures = breaker.consecutive_failures.saturating_add(1);
    let trial_failed = matches!(breaker.state, BreakerState::HalfOpen { .. });
    if trial_failed || breaker.consecutive_failures >= config.failure_threshold {
      breaker.state = BreakerState::Open {
        until: now.saturating_add(config.open_ms),
      };
      breaker.opened_at = Some(now);
    }
  }

  /// The state of every breaker, by operation name, as of `now` (an open
  /// breaker whose cool-down is over reads as half-open).
  pub fn status(&self, now: u64) -> Vec<(String, Breaker)> {
    self
      .by_operation
      .iter()
      .map(|(name, breaker)| (name.clone(), as_of(breaker, now)))
      .collect()
  }

  /// One operation's breaker as of `now`, as `status` shows it.
  pub fn state_of(&self, operation: &str, now: u64) -> Option<Breaker> {
    self
      .by_operation
      .get(operation)
      .map(|breaker| as_of(breaker, now))
  }

  pub fn reset(&mut self, operation: Option<&str>) {
    match operation {
      Some(name) => {
        self.by_operation.remove(name);
        self.last_used.remove(name);
      }
      None => {
        self.by_operation.clear();
        self.last_used.clear();
      }
    }
  }
}

/// A breaker as of `now`: an open one whose cool-down is over reads as
/// half-open, with no trial yet.
fn as_of(breaker: &Breaker, now: u64) -> Breaker {
  let mut shown = *breaker;
  if let BreakerState::Open { until } = breaker.state {
    if now >= until {
      shown.state = BreakerState::HalfOpen {
        trial_in_flight: false,
        since: until,
      };
    }
  }
  shown
}

#[cfg(test)]
mod tests {
  use super::*;

  const OPEN: u64 = DEFAULT_OPEN_MS;
  const D: BreakerConfig = BreakerConfig {
    failure_threshold: DEFAULT_FAILURE_THRESHOLD,
    open_ms: DEFAULT_OPEN_MS,
  };

  #[test]
  fn opens_after_five_consecutive_failures() {
    let mut b = Breakers::default();
    for _ in 0..4 {
      assert_eq!(b.acquire("op", D, 0), Permit::Allowed);
      b.record_failure("op", 0);
    }
    assert_eq!(b.acquire("op", D, 0), Permit::Allowed);
    b.record_failure("op", 10);
    assert_eq!(b.acquire("op", D, 11), Permit::Rejected);
    assert_eq!(
      b.status(11)[0].1.state,
      BreakerState::Open { until: 10 + OPEN }
    );
  }

  #[test]
  fn a_success_resets_the_count() {
    let mut b = Breakers::default();
    for _ in 0..4 {
      b.record_failure("op", 0);
    }
    b.record_success("op");
    for _ in 0..4 {
      b.record_failure("op", 0);
    }
    assert_eq!(b.acquire("op", D, 0), Permit::Allowed);
  }

  #[test]
  fn half_open_lets_exactly_one_trial_through() {
    let mut b = Breakers::default();
    for _ in 0..5 {
      b.record_failure("op", 0);
    }
    assert_eq!(b.acquire("op", D, OPEN - 1), Permit::Rejected);
    assert_eq!(b.status(OPEN)[0].1.state.name(), "half-open");
    assert_eq!(b.acquire("op", D, OPEN), Permit::Trial);
    assert_eq!(b.acquire("op", D, OPEN), Permit::Rejected, "only one trial");
    b.record_success("op");
    assert_eq!(b.acquire("op", D, OPEN), Permit::Allowed);
    assert_eq!(b.status(OPEN)[0].1.consecutive_failures, 0);
  }

  #[test]
  fn a_trial_that_never_reports_back_is_replaced_after_a_cool_down() {
    let mut b = Breakers::default();
    for _ in 0..5 {
      b.record_failure("op", 0);
    }
    assert_eq!(b.acquire("op", D, OPEN), Permit::Trial);
    assert_eq!(b.acquire("op", D, 2 * OPEN - 1), Permit::Rejected);
    assert_eq!(b.acquire("op", D, 2 * OPEN), Permit::Trial);
  }

  /// Another call opening the breaker stops a call's retries.
  #[test]
  fn is_open_reports_an_open_breaker() {
    let mut b = Breakers::default();
    assert!(!b.is_open("op", 0));
    for _ in 0..5 {
      b.record_failure("op", 0);
    }
    assert!(b.is_open("op", 1));
    assert!(!b.is_open("op", OPEN));
  }

  #[test]
  fn a_failed_trial_opens_the_breaker_again() {
    let mut b = Breakers::default();
    for _ in 0..5 {
      b.record_failure("op", 0);
    }
    assert_eq!(b.acquire("op", D, OPEN), Permit::Trial);
    b.record_failure("op", OPEN + 5);
    assert_eq!(b.acquire("op", D, OPEN + 6), Permit::Rejected);
    assert_eq!(b.acquire("op", D, 2 * OPEN + 5), Permit::Trial);
  }

  #[test]
  fn the_number_of_breakers_is_bounded_keeping_open_ones() {
    let mut b = Breakers::default();
    for _ in 0..5 {
      b.record_failure("open-one", 0);
    }
    b.acquire("old", D, 0);
    for i in 0..MAX_OPERATIONS {
      b.acquire(&format!("op{i}"), D, 0);
    }
    let names: Vec<String> = b.status(1).into_iter().map(|(name, _)| name).collect();
    assert_eq!(names.len(), MAX_OPERATIONS);
    assert!(
      names.iter().any(|n| n == "open-one"),
      "an open breaker is kept"
    );
    assert!(
      !names.iter().any(|n| n == "old"),
      "the least recently used closed one went"
    );
  }

  #[test]
  fn breakers_are_per_operation() {
    let mut b = Breakers::default();
    for _ in 0..5 {
      b.record_failure("a", 0);
    }
    assert_eq!(b.acquire("a", D, 1), Permit::Rejected);
    assert_eq!(b.acquire("b", D, 1), Permit::Allowed);
    b.reset(Some("a"));
    assert_eq!(b.acquire("a", D, 1), Permit::Allowed);
  }

  #[test]
  fn each_breaker_takes_the_settings_of_its_latest_call() {
    let mut b = Breakers::default();
    let two = BreakerConfig {
      failure_threshold: 2,
      open_ms: 1_000,
    };
    assert_eq!(b.acquire("a", two, 0), Permit::Allowed);
    b.record_failure("a", 0);
    assert_eq!(b.acquire("a", two, 0), Permit::Allowed);
    b.record_failure("a", 10);
    assert_eq!(b.acquire("a", two, 11), Permit::Rejected, "open after 2");
    assert_eq!(
      b.acquire("b", D, 11),
      Permit::Allowed,
      "b keeps the defaults"
    );
    assert_eq!(b.acquire("a", two, 1_010), Permit::Trial, "after 1 s");
    b.record_success("a");
    assert_eq!(
      b.state_of("a", 1_010).unwrap().config,
      two,
      "kept after a success"
    );
    // A later call with other settings: they apply from it on.
    for _ in 0..4 {
      assert_eq!(b.acquire("a", D, 2_000), Permit::Allowed);
      b.record_failure("a", 2_000);
    }
    assert_eq!(b.acquire("a", D, 2_000), Permit::Allowed, "5 now");
    b.record_failure("a", 2_000);
    assert_eq!(b.acquire("a", two, 2_001), Permit::Rejected);
    assert_eq!(
      b.state_of("a", 2_001).unwrap().state,
      BreakerState::Open {
        until: 2_000 + DEFAULT_OPEN_MS
      },
      "the cool-down set when it opened stays"
    );
  }
}
