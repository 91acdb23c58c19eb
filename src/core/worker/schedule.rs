//! When `process()` looks at the queue: every `pollIntervalMs`, when the
//! store said a job may come due, when a slot is freed, and on a store with
//! a work signal (Redis) when the signal says a job was made pending. An
//! idle worker blocks on the signal a second at a time at most, and after a
//! look the signal did not ask for, or a wait that failed, pauses a second
//! before it waits on the signal again: it sends one command a second at
//! most. A full worker waits for a slot: a signal popped then would be one
//! another worker could have used. The leases of its running jobs are
//! renewed every half lease.

use std::time::{Duration, Instant};

use crate::core::storage::Heard;

/// `pollIntervalMs` by default, on a store without a work signal.
pub const POLL_MS: u64 = 1_000;
/// How often an idle worker on a store with a work signal looks at the
/// queue by default even when no signal came: a lost signal costs this much
/// latency at most.
pub const LOOK_ANYWAY_MS: u64 = 30_000;
/// The longest one wait on a work signal blocks, and the pause after a
/// look the signal did not ask for or a wait that failed.
pub const SIGNAL_TURN: Duration = Duration::from_secs(1);

/// How often the leases of a worker's running jobs are renewed: every half
/// lease, so one renewal that fails leaves time for the next.
pub fn renew_every(lease_ms: u64) -> Duration {
  Duration::from_millis((lease_ms / 2).max(1))
}

/// How an idle worker waits until its next look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
  /// Look now, without waiting.
  LookNow,
  /// For a slot, a stop or a renewal, with no deadline.
  ForSlot,
  /// Until then (a look is due), or a slot, a stop, a renewal before it.
  Until(Instant),
  /// On the work signal, for this long at most, or a slot, a stop, a
  /// renewal before it.
  Signal(Duration),
}

/// Why an idle worker's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
  /// Look at the queue now.
  Look,
  /// Decide again how to wait (a slot was freed with nothing to take, a
  /// lease renewed, a wait that heard nothing).
  Again,
  /// The time waited for came: look if a look is due.
  Deadline,
}

/// What a wait on the work signal comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSignal {
  Woke(Woke),
  /// The wait failed: pause until then (or a slot, a stop, a renewal),
  /// then look, as often as without a signal.
  PauseThenLook(Instant),
}

/// A polling worker's clock of looks.
#[derive(Debug)]
pub struct Schedule {
  look_every: Duration,
  signal: bool,
  looked_at: Instant,
  /// When the next look is due without being asked for.
  look_at: Instant,
  /// No wait on the signal before then.
  quiet_until: Instant,
}

impl Schedule {
  /// A worker starting at `now` that looks every `poll_ms` (`None`: by
  /// default, `POLL_MS`, or `LOOK_ANYWAY_MS` with a work `signal`).
  pub fn new(poll_ms: Option<u64>, signal: bool, now: Instant) -> Self {
    let default_ms = if signal { LOOK_ANYWAY_MS } else { POLL_MS };
    let look_every = Duration::from_millis(poll_ms.unwrap_or(default_ms));
    Self {
      look_every,
      signal,
      looked_at: now,
      look_at: now + look_every,
      quiet_until: now,
    }
  }

  pub fn look_every(&self) -> Duration {
    self.look_every
  }

  /// The worker has just looked at the queue.
  pub fn looked(&mut self, now: Instant) {
    self.looked_at = now;
  }

  /// How to wait after a step at `now` (`now_ms` by the wall clock):
  /// `full` when every slot is taken, `due` when the store said a job may
  /// come due (a retry's time, a lease's end).
  pub fn wait(&mut self, full: bool, due: Option<u64>, now: Instant, now_ms: u64) -> Wait {
    self.look_at = self.looked_at + self.look_every;
    if let Some(due) = due {
      let due_in = Duration::from_millis(due.saturating_sub(now_ms));
      self.look_at = self.look_at.min(now + due_in);
    }
    if full {
      return Wait::ForSlot;
    }
    if !self.signal {
      return Wait::Until(self.look_at);
    }
    if now >= self.look_at {
      self.quiet_until = now + SIGNAL_TURN;
      Wait::LookNow
    } else if now < self.quiet_until {
      Wait::Until(self.quiet_until.min(self.look_at))
    } else {
      Wait::Signal((self.look_at - now).min(SIGNAL_TURN))
    }
  }

  /// What the work signal said at `now`.
  pub fn heard(&mut self, heard: Heard, now: Instant) -> AfterSignal {
    match heard {
      Heard::Work => AfterSignal::Woke(Woke::Look),
      Heard::Nothing => AfterSignal::Woke(Woke::Again),
      Heard::Failed => {
        self.quiet_until = now + SIGNAL_TURN;
        AfterSignal::PauseThenLook(self.quiet_until.min(self.look_at))
      }
    }
  }

  /// Whether a wait that ended as `woke` at `now` is followed by a look.
  pub fn looks_after(&self, woke: Woke, now: Instant) -> bool {
    match woke {
      Woke::Look => true,
      Woke::Again => false,
      Woke::Deadline => now >= self.look_at,
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const MS: Duration = Duration::from_millis(1);

  #[test]
  fn looks_every_poll_interval_by_default_and_rarely_with_a_signal() {
    let now = Instant::now();
    assert_eq!(Schedule::new(None, false, now).look_every(), 1_000 * MS);
    assert_eq!(Schedule::new(None, true, now).look_every(), 30_000 * MS);
    assert_eq!(Schedule::new(Some(50), true, now).look_every(), 50 * MS);
  }

  #[test]
  fn without_a_signal_it_sleeps_until_the_next_look() {
    let start = Instant::now();
    let mut schedule = Schedule::new(Some(200), false, start);
    schedule.looked(start + 10 * MS);
    let wait = schedule.wait(false, None, start + 20 * MS, 0);
    assert_eq!(wait, Wait::Until(start + 210 * MS));
    assert!(!schedule.looks_after(Woke::Deadline, start + 209 * MS));
    assert!(schedule.looks_after(Woke::Deadline, start + 210 * MS));
    assert!(schedule.looks_after(Woke::Look, start + 20 * MS));
    assert!(!schedule.looks_after(Woke::Again, start + 500 * MS));
  }

  #[test]
  fn a_job_coming_due_brings_the_look_forward() {
    let start = Instant::now();
    let mut schedule = Schedule::new(Some(1_000), false, start);
    let wait = schedule.wait(false, Some(5_050), start, 5_000);
    assert_eq!(wait, Wait::Until(start + 50 * MS));
    // A due time already past: look at once.
    let wait = schedule.wait(false, Some(4_000), start, 5_000);
    assert_eq!(wait, Wait::Until(start));
    // One later than the poll interval changes nothing.
    let wait = schedule.wait(false, Some(9_000), start, 5_000);
    assert_eq!(wait, Wait::Until(start + 1_000 * MS));
  }

  #[test]
  fn a_full_worker_waits_for_a_slot_and_not_on_the_signal() {
    let start = Instant::now();
    for signal in [false, true] {
      let mut schedule = Schedule::new(Some(100), signal, start);
      assert_eq!(schedule.wait(true, None, start, 0), Wait::ForSlot);
      assert_eq!(
        schedule.wait(true, None, start + 500 * MS, 0),
        Wait::ForSlot
      );
    }
  }

  #[test]
  fn with_a_signal_it_blocks_a_second_at_a_time_at_most() {
    let start = Instant::now();
    let mut schedule = Schedule::new(None, true, start);
    assert_eq!(
      schedule.wait(false, None, start, 0),
      Wait::Signal(SIGNAL_TURN)
    );
    let near = start + 29_500 * MS;
    assert_eq!(schedule.wait(false, None, near, 0), Wait::Signal(500 * MS));
  }

  #[test]
  fn a_look_the_signal_did_not_ask_for_quiets_it_for_a_turn() {
    let start = Instant::now();
    let mut schedule = Schedule::new(Some(100), true, start);
    let due = start + 100 * MS;
    assert_eq!(schedule.wait(false, None, due, 0), Wait::LookNow);
    schedule.looked(due);
    // Quiet until a turn after that look, or the next look if sooner.
    let after = due + 10 * MS;
    assert_eq!(
      schedule.wait(false, None, after, 0),
      Wait::Until(due + 100 * MS)
    );
    let mut slow = Schedule::new(Some(5_000), true, start);
    let due = start + 5_000 * MS;
    assert_eq!(slow.wait(false, None, due, 0), Wait::LookNow);
    slow.looked(due);
    let after = due + 10 * MS;
    assert_eq!(
      slow.wait(false, None, after, 0),
      Wait::Until(due + SIGNAL_TURN)
    );
    let turned = due + SIGNAL_TURN;
    assert!(matches!(slow.wait(false, None, turned, 0), Wait::Signal(_)));
  }

  #[test]
  fn what_the_signal_says_decides_the_look() {
    let start = Instant::now();
    let mut schedule = Schedule::new(None, true, start);
    schedule.wait(false, None, start, 0);
    assert_eq!(
      schedule.heard(Heard::Work, start),
      AfterSignal::Woke(Woke::Look)
    );
    assert_eq!(
      schedule.heard(Heard::Nothing, start),
      AfterSignal::Woke(Woke::Again)
    );
    let failed = start + 10 * MS;
    let pause = AfterSignal::PauseThenLook(failed + SIGNAL_TURN);
    assert_eq!(schedule.heard(Heard::Failed, failed), pause);
    // And no wait on the signal during that pause.
    let during = failed + 500 * MS;
    let wait = schedule.wait(false, None, during, 0);
    assert_eq!(wait, Wait::Until(failed + SIGNAL_TURN));
  }

  #[test]
  fn leases_are_renewed_every_half_lease() {
    assert_eq!(renew_every(30_000), 15_000 * MS);
    assert_eq!(renew_every(1), MS, "never a zero interval");
  }
}
