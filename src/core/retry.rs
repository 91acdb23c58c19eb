//! Retry delays: exponential backoff with decorrelated jitter (the AWS
//! Architecture Blog's "decorrelated jitter": each delay is drawn between the
//! base and three times the previous one, capped), or without jitter.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
  /// `random(base, previous × 3)`, capped at `max_delay_ms`.
  Decorrelated,
  /// `base × 2^(retry − 1)`, capped: the same every time.
  None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
  /// Retries after the first attempt (so `max_retries + 1` attempts at most).
  pub max_retries: u32,
  pub base_delay_ms: u64,
  pub max_delay_ms: u64,
  pub jitter: Jitter,
}

impl Default for RetryPolicy {
  fn default() -> Self {
    Self {
      max_retries: 3,
      base_delay_ms: 1_000,
      max_delay_ms: 30_000,
      jitter: Jitter::Decorrelated,
    }
  }
}

impl RetryPolicy {
  /// Whether another attempt may follow attempt number `attempt` (1-based).
  pub fn allows_retry_after(&self, attempt: u32) -> bool {
    attempt <= self.max_retries
  }

  /// After attempt number `attempt` failed: the delay before the next one,
  /// or `None` to give up (no retries left, or the error is not retryable).
  pub fn after_failure(
    &self,
    attempt: u32,
    previous_ms: u64,
    retryable: bool,
    at_least_ms: u64,
    random: &mut JitterRandom,
  ) -> Option<u64> {
    (retryable && self.allows_retry_after(attempt))
      .then(|| self.delay_ms(attempt, previous_ms, random.next_unit(), at_least_ms))
  }

  /// The delay before retry number `retry` (1-based), given the previous
  /// delay, a random number in [0, 1) and a lower bound the error asked for
  /// (`retryAfterMs`, `Retry-After`), which wins even over the cap.
  pub fn delay_ms(&self, retry: u32, previous_ms: u64, random: f64, at_least_ms: u64) -> u64 {
    let base = self.base_delay_ms.min(self.max_delay_ms);
    let delay = match self.jitter {
      Jitter::None => {
        let factor = 1u64
          .checked_shl(retry.saturating_sub(1))
          .unwrap_or(u64::MAX);
        base.saturating_mul(factor).min(self.max_delay_ms)
      }
      Jitter::Decorrelated => {
        let upper = previous_ms
          .max(base)
          .saturating_mul(3)
          .min(self.max_delay_ms)
          .max(base);
        let span = (upper - base) as f64;
        (base + (span * random.clamp(0.0, 1.0)) as u64).min(upper)
      }
    };
    delay.max(at_least_ms)
  }
}

/// A small, fast random source for jitter (xorshift64*, seeded per process).
pub struct JitterRandom(u64);

impl JitterRandom {
  pub fn new(seed: u64) -> Self {
    Self(seed | 1)
  }

  /// A number in [0, 1).
  pub fn next_unit(&mut self) -> f64 {
    let mut x = self.0;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self.0 = x;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn policy(jitter: Jitter) -> RetryPolicy {
    RetryPolicy {
      max_retries: 4,
      base_delay_ms: 100,
      max_delay_ms: 1_000,
      jitter,
    }
  }

  #[test]
  fn exponential_without_jitter_is_capped() {
    let p = policy(Jitter::None);
    let delays: Vec<u64> = (1..=6).map(|r| p.delay_ms(r, 0, 0.5, 0)).collect();
    assert_eq!(delays, vec![100, 200, 400, 800, 1_000, 1_000]);
  }

  #[test]
  fn decorrelated_jitter_stays_between_base_and_three_times_previous() {
    let p = policy(Jitter::Decorrelated);
    let mut random = JitterRandom::new(7);
    let mut previous = 0;
    for retry in 1..=50 {
      let delay = p.delay_ms(retry, previous, random.next_unit(), 0);
      assert!(delay >= 100, "{delay}");
      assert!(
        delay <= (previous.max(100) * 3).min(1_000),
        "{delay} after {previous}"
      );
      previous = delay;
    }
    assert_eq!(p.delay_ms(1, 0, 0.0, 0), 100);
    assert_eq!(p.delay_ms(1, 0, 0.999_999, 0), 299);
  }

  #[test]
  fn an_error_asking_for_more_time_gets_it() {
    let p = policy(Jitter::None);
    assert_eq!(p.delay_ms(1, 0, 0.0, 5_000), 5_000);
    assert_eq!(p.delay_ms(3, 0, 0.0, 10), 400);
  }

  #[test]
  fn retries_are_counted_after_the_first_attempt() {
    let p = policy(Jitter::None);
    assert!(p.allows_retry_after(1));
    assert!(p.allows_retry_after(4));
    assert!(!p.allows_retry_after(5));
    let none = RetryPolicy {
      max_retries: 0,
      ..p
    };
    assert!(!none.allows_retry_after(1));
  }

  #[test]
  fn random_units_are_in_range_and_vary() {
    let mut random = JitterRandom::new(42);
    let draws: Vec<f64> = (0..1_000).map(|_| random.next_unit()).collect();
    assert!(draws.iter().all(|&u| (0.0..1.0).contains(&u)));
    let mean = draws.iter().sum::<f64>() / draws.len() as f64;
    assert!((0.4..0.6).contains(&mean), "{mean}");
  }
}
