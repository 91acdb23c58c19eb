//! How long a worker's store call waits, and how long it is tried again: a
//! call holds the queue's lock (which the JavaScript thread may be waiting
//! for), so it waits for another process's lock only briefly, and waits
//! longer by trying again with the lock let go in between.

use std::time::{Duration, Instant};

use crate::core::storage::{QueueStore, StorageError, StorageErrorKind};

/// How long one of the worker's calls waits for another process's lock
/// while it holds the queue.
pub const WORKER_TRY_MS: u64 = 10;

/// How long a worker keeps trying a store call while another process holds
/// the file (off the JavaScript thread); recording an outcome tries for the
/// lease's length if that is longer.
pub const RECORD_PATIENCE: Duration = Duration::from_secs(10);

/// The first pause between tries, and the longest: doubled after each.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// Runs `call` on the queue with the worker's short busy timeout (never
/// longer than the store's own), the store's own put back after it.
pub fn briefly<T>(queue: &mut dyn QueueStore, call: impl FnOnce(&mut dyn QueueStore) -> T) -> T {
  let usual = queue.busy_timeout_ms();
  let _ = queue.set_busy_timeout(WORKER_TRY_MS.min(usual));
  let result = call(&mut *queue);
  let _ = queue.set_busy_timeout(usual);
  result
}

/// How long recording a job's outcome is tried: for as long as the lease
/// could still be this worker's (`lease_ms`), and at least
/// `RECORD_PATIENCE`; past that, another worker may hold the job.
pub fn record_patience(lease_ms: u64) -> Duration {
  Duration::from_millis(lease_ms).max(RECORD_PATIENCE)
}

/// The errors recording an outcome waits out: a file held by another
/// process, a server away for a while. A job that ran is not run again for
/// want of its outcome (a retry finds it recorded if the first try landed).
pub const RECORD_AGAIN: &[StorageErrorKind] =
  &[StorageErrorKind::Busy, StorageErrorKind::Unavailable];

/// The errors counting what remains after a drain waits out: only a busy
/// file; a server that is away says so at once.
pub const COUNT_AGAIN: &[StorageErrorKind] = &[StorageErrorKind::Busy];

/// Whether a failed call is tried again, and after what pause.
#[derive(Debug)]
pub struct Patience {
  again: &'static [StorageErrorKind],
  until: Instant,
  pause: Duration,
}

impl Patience {
  /// Tries calls failing with one of the errors `again` names, for
  /// `patience` from `started`.
  pub fn new(again: &'static [StorageErrorKind], patience: Duration, started: Instant) -> Self {
    Self {
      again,
      until: started + patience,
      pause: FIRST_PAUSE,
    }
  }

  /// After a try failed with `error` at `now`: the pause before the next
  /// try, or `None` when the error is given up on (not one to wait out, or
  /// the patience has run out).
  pub fn retry_after(&mut self, error: &StorageError, now: Instant) -> Option<Duration> {
    if !self.again.contains(&error.kind) || now >= self.until {
      return None;
    }
    let pause = self.pause;
    self.pause = (pause * 2).min(LONGEST_PAUSE);
    Some(pause)
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::queue::QueueConfig;
  use crate::core::storage::{open_queue, Backend};

  fn error(kind: StorageErrorKind) -> StorageError {
    StorageError::new(kind, "test")
  }

  #[test]
  fn only_the_named_errors_are_tried_again() {
    let start = Instant::now();
    let mut patience = Patience::new(COUNT_AGAIN, RECORD_PATIENCE, start);
    assert!(patience
      .retry_after(&error(StorageErrorKind::Unavailable), start)
      .is_none());
    assert!(patience
      .retry_after(&error(StorageErrorKind::Busy), start)
      .is_some());
    let mut patience = Patience::new(RECORD_AGAIN, RECORD_PATIENCE, start);
    assert!(patience
      .retry_after(&error(StorageErrorKind::Unavailable), start)
      .is_some());
  }

  #[test]
  fn pauses_double_up_to_a_tenth_of_a_second() {
    let start = Instant::now();
    let mut patience = Patience::new(RECORD_AGAIN, RECORD_PATIENCE, start);
    let busy = error(StorageErrorKind::Busy);
    let pauses: Vec<u64> = (0..7)
      .map(|_| patience.retry_after(&busy, start).unwrap().as_millis() as u64)
      .collect();
    assert_eq!(pauses, vec![5, 10, 20, 40, 80, 100, 100]);
  }

  #[test]
  fn patience_runs_out() {
    let start = Instant::now();
    let patience_for = Duration::from_millis(50);
    let mut patience = Patience::new(RECORD_AGAIN, patience_for, start);
    let busy = error(StorageErrorKind::Busy);
    let just_before = start + patience_for - Duration::from_millis(1);
    assert!(patience.retry_after(&busy, just_before).is_some());
    assert!(patience.retry_after(&busy, start + patience_for).is_none());
  }

  #[test]
  fn recording_is_tried_for_the_lease_or_ten_seconds() {
    assert_eq!(record_patience(1_000), RECORD_PATIENCE);
    assert_eq!(record_patience(60_000), Duration::from_secs(60));
  }

  #[test]
  fn a_brief_call_puts_the_busy_timeout_back() {
    let dir = crate::core::storage::sqlite::test_dir("patience");
    let file = Backend::File(&dir.join("q.db"), Default::default());
    let mut queue = open_queue(file, QueueConfig::default()).unwrap();
    let usual = queue.busy_timeout_ms();
    assert!(usual > WORKER_TRY_MS);
    let inside = briefly(&mut *queue, |queue| queue.busy_timeout_ms());
    assert_eq!(inside, WORKER_TRY_MS);
    assert_eq!(queue.busy_timeout_ms(), usual);
  }
}
