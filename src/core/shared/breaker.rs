//! A circuit breaker every instance shares: the outcomes of recent calls
//! (the last `size` calls, or the calls of the last `size` ms) decide when
//! it opens; after `half_open_after_ms` exactly one probe runs across the
//! cluster, held as a lease of that length (a probe whose instance died is
//! replaced when it runs out); the probe's success closes it, its failure
//! opens it again.

use serde::{Deserialize, Serialize};

/// How long a breaker's record is kept after its last change.
pub const KEEP_MS: u64 = 24 * 60 * 60 * 1000;
/// Buckets of a time window.
const TIME_BUCKETS: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
  Count,
  Time,
}

/// `BreakerOptions` of the API (`window`, `size`, `failureRatio`, ...); as
/// JSON, checked and completed by lib/guards.js.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerOptions {
  pub window: Window,
  /// Calls (`Count`) or ms (`Time`).
  pub size: u64,
  pub failure_ratio: f64,
  pub minimum_calls: u64,
  /// A call slower than this counts as slow (`None`: none does).
  pub slow_call_ms: Option<u64>,
  pub slow_call_ratio: f64,
  pub half_open_after_ms: u64,
}

impl Default for BreakerOptions {
  fn default() -> Self {
    Self {
      window: Window::Count,
      size: 20,
      failure_ratio: 0.5,
      minimum_calls: 10,
      slow_call_ms: None,
      slow_call_ratio: 1.0,
      half_open_after_ms: 30_000,
    }
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Phase {
  #[default]
  Closed,
  Open,
  HalfOpen,
}

impl Phase {
  pub fn name(self) -> &'static str {
    match self {
      Phase::Closed => "closed",
      Phase::Open => "open",
      Phase::HalfOpen => "half-open",
    }
  }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
  pub holder: String,
  pub since: u64,
}

/// A breaker as the store keeps it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BreakerRecord {
  pub phase: Phase,
  /// When it last opened.
  #[serde(default)]
  pub opened_at: Option<u64>,
  /// While open: when it turns half-open.
  #[serde(default)]
  pub until: u64,
  #[serde(default)]
  pub probe: Option<Probe>,
  /// Count window: the outcomes, oldest first: `o` ok, `f` failed, `s`
  /// slow, `x` slow and failed.
  #[serde(default)]
  pub outcomes: String,
  /// Time window: `[start ms, calls, failures, slow]` per bucket.
  #[serde(default)]
  pub buckets: Vec<[u64; 4]>,
}

/// What a call may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
  Allowed,
  /// The one probe of a half-open breaker.
  Probe,
  /// Open (or its probe is held elsewhere): do not call before `until`
  /// (`None`: when the probe says).
  Rejected {
    until: Option<u64>,
  },
}

/// How a call that was let through went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
  pub failed: bool,
  pub duration_ms: u64,
  /// It ran as the breaker's probe.
  pub probe: bool,
}

/// May a call go through now? The record to write, when the answer
/// changes it (a probe taken).
pub fn admit(
  record: Option<BreakerRecord>,
  options: &BreakerOptions,
  now: u64,
  holder: &str,
) -> (Entry, Option<BreakerRecord>) {
  let Some(mut record) = record else {
    return (Entry::Allowed, None);
  };
  match record.phase {
    Phase::Closed => (Entry::Allowed, None),
    Phase::Open if now < record.until => (
      Entry::Rejected {
        until: Some(record.until),
      },
      None,
    ),
    Phase::HalfOpen
      if record
        .probe
        .as_ref()
        .is_some_and(|probe| now < probe.since.saturating_add(options.half_open_after_ms)) =>
    {
      (Entry::Rejected { until: None }, None)
    }
    Phase::Open | Phase::HalfOpen => {
      record.phase = Phase::HalfOpen;
      record.probe = Some(Probe {
        holder: holder.to_owned(),
        since: now,
      });
      (Entry::Probe, Some(record))
    }
  }
}

/// Records how a call went; the record to write (`None`: no change, as for
/// the outcome of a call that was let through before another instance
/// opened the breaker).
pub fn settle(
  record: Option<BreakerRecord>,
  options: &BreakerOptions,
  outcome: Outcome,
  now: u64,
  holder: &str,
) -> Option<BreakerRecord> {
  let mut record = record.unwrap_or_default();
  match record.phase {
    Phase::HalfOpen if outcome.probe => {
      let ours = record
        .probe
        .as_ref()
        .is_some_and(|probe| probe.holder == holder);
      if !ours {
        return None;
      }
      if outcome.failed {
        open(&mut record, options, now);
      } else {
        record = BreakerRecord::default();
      }
      Some(record)
    }
    Phase::Open | Phase::HalfOpen => None,
    Phase::Closed => {
      let slow = options
        .slow_call_ms
        .is_some_and(|limit| outcome.duration_ms >= limit);
      push(&mut record, options, outcome.failed, slow, now);
      let (calls, failures, slows) = counts(&record, options, now);
      let ratio = |part: u64| part as f64 / calls as f64;
      let trips = calls > 0
        && calls >= options.minimum_calls
        && (ratio(failures) >= options.failure_ratio
          || (options.slow_call_ms.is_some() && ratio(slows) >= options.slow_call_ratio));
      if trips {
        open(&mut record, options, now);
      }
      Some(record)
    }
  }
}

fn open(record: &mut BreakerRecord, options: &BreakerOptions, now: u64) {
  *record = BreakerRecord {
    phase: Phase::Open,
    opened_at: Some(now),
    until: now.saturating_add(options.half_open_after_ms),
    ..BreakerRecord::default()
  };
}

fn push(record: &mut BreakerRecord, options: &BreakerOptions, failed: bool, slow: bool, now: u64) {
  match options.window {
    Window::Count => {
      record.outcomes.push(match (failed, slow) {
        (false, false) => 'o',
        (true, false) => 'f',
        (false, true) => 's',
        (true, true) => 'x',
      });
      let size = options.size.max(1) as usize;
      if record.outcomes.len() > size {
        record.outcomes.drain(..record.outcomes.len() - size);
      }
      record.buckets.clear();
    }
    Window::Time => {
      record.outcomes.clear();
      let width = (options.size / TIME_BUCKETS).max(1);
      let start = now - now % width;
      let from = now.saturating_sub(options.size);
      record.buckets.retain(|bucket| bucket[0] + width > from);
      match record.buckets.last_mut() {
        Some(bucket) if bucket[0] == start => add(bucket, failed, slow),
        _ => {
          let mut bucket = [start, 0, 0, 0];
          add(&mut bucket, failed, slow);
          record.buckets.push(bucket);
        }
      }
    }
  }
}

fn add(bucket: &mut [u64; 4], failed: bool, slow: bool) {
  bucket[1] += 1;
  bucket[2] += u64::from(failed);
  bucket[3] += u64::from(slow);
}

/// Calls, failures and slow calls in the window at `now`.
pub fn counts(record: &BreakerRecord, options: &BreakerOptions, now: u64) -> (u64, u64, u64) {
  match options.window {
    Window::Count => record.outcomes.chars().fold((0, 0, 0), |(c, f, s), o| {
      (
        c + 1,
        f + u64::from(matches!(o, 'f' | 'x')),
        s + u64::from(matches!(o, 's' | 'x')),
      )
    }),
    Window::Time => {
      let width = (options.size / TIME_BUCKETS).max(1);
      let from = now.saturating_sub(options.size);
      record
        .buckets
        .iter()
        .filter(|bucket| bucket[0] + width > from)
        .fold((0, 0, 0), |(c, f, s), b| (c + b[1], f + b[2], s + b[3]))
    }
  }
}

/// The phase as of `now`: an open breaker whose wait is over reads as
/// half-open.
pub fn phase_at(record: &BreakerRecord, now: u64) -> Phase {
  match record.phase {
    Phase::Open if now >= record.until => Phase::HalfOpen,
    phase => phase,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const O: BreakerOptions = BreakerOptions {
    window: Window::Count,
    size: 4,
    failure_ratio: 0.5,
    minimum_calls: 4,
    slow_call_ms: None,
    slow_call_ratio: 1.0,
    half_open_after_ms: 1_000,
  };

  fn run(
    record: Option<BreakerRecord>,
    failed: bool,
    now: u64,
    options: &BreakerOptions,
  ) -> Option<BreakerRecord> {
    let outcome = Outcome {
      failed,
      duration_ms: 10,
      probe: false,
    };
    settle(record.clone(), options, outcome, now, "me").or(record)
  }

  #[test]
  fn opens_at_the_failure_ratio_once_minimum_calls_are_seen() {
    let mut record = None;
    record = run(record, true, 0, &O);
    record = run(record, true, 0, &O);
    record = run(record, false, 0, &O);
    assert_eq!(
      record.as_ref().unwrap().phase,
      Phase::Closed,
      "3 calls < minimum"
    );
    record = run(record, false, 5, &O);
    let open = record.unwrap();
    assert_eq!(open.phase, Phase::Open, "2 of 4 failed");
    assert_eq!(open.until, 1_005);
    assert_eq!(
      admit(Some(open), &O, 6, "b").0,
      Entry::Rejected { until: Some(1_005) }
    );
  }

  #[test]
  fn the_count_window_keeps_the_last_size_calls() {
    let mut record = None;
    for failed in [true, true, false, false] {
      record = run(record, failed, 0, &O);
    }
    assert_eq!(record.as_ref().unwrap().phase, Phase::Open);
    let mut record = None;
    for failed in [true, false, false, false, false, true] {
      record = run(record, failed, 0, &O);
    }
    assert_eq!(record.as_ref().unwrap().outcomes, "ooof");
    assert_eq!(record.unwrap().phase, Phase::Closed, "1 of the last 4");
  }

  #[test]
  fn one_probe_cluster_wide_and_a_lost_probe_is_replaced() {
    let mut record = None;
    for _ in 0..4 {
      record = run(record, true, 0, &O);
    }
    let (entry, taken) = admit(record, &O, 1_000, "a");
    assert_eq!(entry, Entry::Probe);
    let held = taken.unwrap();
    assert_eq!(held.probe.as_ref().unwrap().holder, "a");
    assert_eq!(
      admit(Some(held.clone()), &O, 1_500, "b").0,
      Entry::Rejected { until: None }
    );
    let (entry, taken) = admit(Some(held.clone()), &O, 2_000, "b");
    assert_eq!(entry, Entry::Probe, "a's lease ran out");
    let held_by_b = taken.unwrap();
    let late = Outcome {
      failed: false,
      duration_ms: 1,
      probe: true,
    };
    assert_eq!(
      settle(Some(held_by_b.clone()), &O, late, 2_001, "a"),
      None,
      "a's outcome is not b's"
    );
    let closed = settle(Some(held_by_b), &O, late, 2_001, "b").unwrap();
    assert_eq!(closed, BreakerRecord::default());
  }

  #[test]
  fn a_failed_probe_opens_it_again() {
    let mut record = None;
    for _ in 0..4 {
      record = run(record, true, 0, &O);
    }
    let (_, taken) = admit(record, &O, 1_000, "a");
    let failed = Outcome {
      failed: true,
      duration_ms: 1,
      probe: true,
    };
    let again = settle(taken, &O, failed, 1_010, "a").unwrap();
    assert_eq!((again.phase, again.until), (Phase::Open, 2_010));
  }

  #[test]
  fn slow_calls_open_it_too() {
    let options = BreakerOptions {
      slow_call_ms: Some(100),
      slow_call_ratio: 0.75,
      ..O
    };
    let mut record = None;
    for ms in [150, 150, 150, 10] {
      let outcome = Outcome {
        failed: false,
        duration_ms: ms,
        probe: false,
      };
      record = settle(record, &options, outcome, 0, "me");
    }
    assert_eq!(record.unwrap().phase, Phase::Open);
  }

  #[test]
  fn the_time_window_forgets_old_calls() {
    let options = BreakerOptions {
      window: Window::Time,
      size: 1_000,
      ..O
    };
    let mut record = None;
    for _ in 0..3 {
      record = run(record, true, 0, &options);
    }
    record = run(record, true, 2_000, &options);
    let record = record.unwrap();
    assert_eq!(counts(&record, &options, 2_000), (1, 1, 0));
    assert_eq!(record.phase, Phase::Closed);
  }

  #[test]
  fn outcomes_of_calls_let_through_before_it_opened_change_nothing() {
    let mut record = None;
    for _ in 0..4 {
      record = run(record, true, 0, &O);
    }
    let outcome = Outcome {
      failed: false,
      duration_ms: 1,
      probe: false,
    };
    assert_eq!(settle(record, &O, outcome, 1, "me"), None);
  }
}
