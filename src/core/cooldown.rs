//! Cooldowns ("benched models"): a model that answered with a rate limit or
//! an overload is left out of every call, on every instance, until the wait
//! it asked for (or a default) has passed. This module decides, from what
//! the binding read off the error, whether and how long to bench; the
//! failure stores keep the cooldowns next to the history
//! (`FailureStore::bench`), and `Bench` is the memory store's table.

use std::collections::HashMap;
use std::sync::Arc;

use super::limits;

/// The most bytes of UTF-8 a cooldown's reason keeps.
pub const MAX_REASON_BYTES: usize = 1024;

/// The HTTP statuses that bench a model without a Retry-After: 429 (Too
/// Many Requests), 503 (Service Unavailable), 529 (Anthropic's
/// "overloaded").
pub const THROTTLE_STATUSES: [u16; 3] = [429, 503, 529];

/// One benched name: since when, until when (ms since the epoch), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cooldown {
  pub name: Arc<str>,
  pub since: u64,
  pub until: u64,
  pub reason: String,
}

/// How long to bench a model whose call failed with HTTP `status` (if
/// one was read) after asking to wait `asked_ms` (0: it asked nothing):
/// what it asked, else `default_ms` for a throttling status, capped at
/// `max_ms`. `None` when it is not to be benched, or for 0 ms (a
/// `default_ms` or `max_ms` of 0 means "never bench").
pub fn bench_ms(status: Option<u16>, asked_ms: u64, default_ms: u64, max_ms: u64) -> Option<u64> {
  let ms = if asked_ms > 0 {
    asked_ms
  } else if status.is_some_and(|status| THROTTLE_STATUSES.contains(&status)) {
    default_ms
  } else {
    return None;
  };
  Some(ms.min(max_ms)).filter(|&ms| ms > 0)
}

/// An HTTP status from a number: a whole number from 100 to 999.
pub fn status_from_number(n: f64) -> Option<u16> {
  (n.fract() == 0.0 && (100.0..=999.0).contains(&n)).then_some(n as u16)
}

/// An HTTP status from text: three digits (spaces around allowed).
pub fn status_from_text(text: &str) -> Option<u16> {
  let digits = text.trim();
  if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
    return None;
  }
  digits
    .parse()
    .ok()
    .and_then(|n: u16| status_from_number(n.into()))
}

/// A reason as the stores keep it: cut to `MAX_REASON_BYTES`.
pub fn reason(text: &str) -> String {
  limits::clip_to(text, MAX_REASON_BYTES)
}

/// The memory store's cooldowns, by name. Every store follows the same
/// rules: a cooldown ends at the later of its old and new ends (the reason
/// is the one of the bench that set the end; `since` stays); one that has
/// ended is never reported; at most `max` are held, and a new name that
/// finds them full drops the ended ones, then the one ending soonest.
#[derive(Debug, Default)]
pub struct Bench {
  by_name: HashMap<Arc<str>, Cooldown>,
  /// Whether anything was ever benched here.
  used: bool,
  /// The latest end of any cooldown benched since the last full clear: none
  /// runs once `now` has passed it.
  latest_until: u64,
}

impl Bench {
  /// Benches `name` until `until` (nothing when `until <= now`).
  pub fn bench(&mut self, name: &str, until: u64, reason_text: &str, now: u64, max: usize) {
    if until <= now {
      return;
    }
    self.used = true;
    self.latest_until = self.latest_until.max(until);
    if let Some(held) = self.by_name.get_mut(name).filter(|c| c.until > now) {
      if until > held.until {
        held.until = until;
        held.reason = reason(reason_text);
      }
      return;
    }
    self.by_name.remove(name);
    if self.by_name.len() >= max {
      self.by_name.retain(|_, cooldown| cooldown.until > now);
    }
    while self.by_name.len() >= max {
      let soonest = self
        .by_name
        .values()
        .min_by(|a, b| (a.until, &a.name).cmp(&(b.until, &b.name)))
        .map(|cooldown| cooldown.name.clone());
      match soonest {
        Some(name) => self.by_name.remove(&name),
        None => return,
      };
    }
    let name: Arc<str> = name.into();
    let cooldown = Cooldown {
      name: name.clone(),
      since: now,
      until,
      reason: reason(reason_text),
    };
    self.by_name.insert(name, cooldown);
  }

  /// What is left of `name`'s cooldown at `now`, if it has one.
  pub fn remaining(&self, name: &str, now: u64) -> Option<u64> {
    let cooldown = self.by_name.get(name)?;
    (cooldown.until > now).then(|| cooldown.until - now)
  }

  /// The cooldowns still running at `now`, ending soonest first.
  pub fn active(&self, now: u64) -> Vec<Cooldown> {
    let mut active: Vec<Cooldown> = self
      .by_name
      .values()
      .filter(|cooldown| cooldown.until > now)
      .cloned()
      .collect();
    sort(&mut active);
    active
  }

  /// Forgets one name's cooldown, or all; true when any was held (ended
  /// or not).
  pub fn clear(&mut self, name: Option<&str>) -> bool {
    match name {
      Some(name) => self.by_name.remove(name).is_some(),
      None => {
        let had_any = !self.by_name.is_empty();
        self.by_name.clear();
        self.latest_until = 0;
        had_any
      }
    }
  }

  pub fn used(&self) -> bool {
    self.used
  }

  /// The time from which no cooldown runs (until another is benched), in
  /// O(1): a call's chain need not look its models up one by one.
  pub fn quiet_from(&self) -> u64 {
    self.latest_until
  }
}

/// The order every store lists cooldowns in: ending soonest first, then
/// by name.
pub fn sort(cooldowns: &mut [Cooldown]) {
  cooldowns.sort_by(|a, b| (a.until, &a.name).cmp(&(b.until, &b.name)));
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn throttling_statuses_bench_for_the_default_capped() {
    for status in THROTTLE_STATUSES {
      assert_eq!(bench_ms(Some(status), 0, 30_000, 300_000), Some(30_000));
      assert_eq!(bench_ms(Some(status), 0, 30_000, 10_000), Some(10_000));
    }
    for status in [None, Some(500), Some(400), Some(200), Some(502)] {
      assert_eq!(bench_ms(status, 0, 30_000, 300_000), None);
    }
  }

  #[test]
  fn an_asked_wait_wins_whatever_the_status_capped() {
    assert_eq!(bench_ms(None, 5_000, 30_000, 300_000), Some(5_000));
    assert_eq!(bench_ms(Some(500), 5_000, 30_000, 300_000), Some(5_000));
    assert_eq!(bench_ms(Some(429), 5_000, 30_000, 300_000), Some(5_000));
    assert_eq!(bench_ms(None, u64::MAX, 30_000, 300_000), Some(300_000));
  }

  #[test]
  fn idle_until_benched_and_again_once_every_cooldown_ended() {
    let idle = |bench: &Bench, now: u64| bench.quiet_from() <= now;
    let mut bench = Bench::default();
    assert!(idle(&bench, 0));
    bench.bench("claude", 1_000, "429", 0, 10);
    bench.bench("haiku", 500, "503", 0, 10);
    assert!(!idle(&bench, 999), "claude still runs");
    assert!(idle(&bench, 1_000));
    bench.bench("claude", 3_000, "429", 2_000, 10);
    bench.clear(Some("claude"));
    assert!(
      !idle(&bench, 2_500),
      "one name cleared: still asked, never wrongly idle"
    );
    bench.clear(None);
    assert!(idle(&bench, 2_500));
  }

  #[test]
  fn zero_means_never_bench() {
    assert_eq!(bench_ms(Some(429), 0, 0, 300_000), None);
    assert_eq!(bench_ms(Some(429), 0, 30_000, 0), None);
    assert_eq!(bench_ms(None, 5_000, 30_000, 0), None);
    assert_eq!(bench_ms(Some(429), 5_000, 0, 300_000), Some(5_000));
  }

  #[test]
  fn statuses_from_numbers_and_text() {
    assert_eq!(status_from_number(429.0), Some(429));
    assert_eq!(status_from_number(429.5), None);
    assert_eq!(status_from_number(f64::NAN), None);
    assert_eq!(status_from_number(99.0), None);
    assert_eq!(status_from_number(1000.0), None);
    assert_eq!(status_from_text("529"), Some(529));
    assert_eq!(status_from_text(" 503 "), Some(503));
    for text in ["", "42", "4290", "+429", "4e2", "abc", "42.9"] {
      assert_eq!(status_from_text(text), None, "{text:?}");
    }
  }

  #[test]
  fn reasons_are_cut() {
    assert_eq!(reason("429"), "429");
    let cut = reason(&"é".repeat(MAX_REASON_BYTES));
    assert!(cut.len() <= MAX_REASON_BYTES);
  }
}
