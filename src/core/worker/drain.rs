//! When `drain()` stops taking jobs, and what it reports. A drain takes
//! what is due now (as many at once as its concurrency allows), never waits
//! for jobs that are not due yet, and stops taking when nothing is due,
//! `maxJobs` jobs were taken, `maxMs` has passed, or the store fails
//! (another process holding the file is waited out, within the budget).

use std::time::{Duration, Instant};

use super::ends::Tally;
use super::patience::RECORD_PATIENCE;
use crate::core::storage::{StorageError, StorageErrorKind};

/// The pause before a drain asks a busy file again.
const BUSY_PAUSE: Duration = Duration::from_millis(10);

/// Why a drain stopped taking jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
  NothingDue,
  MaxJobs,
  MaxMs,
  Storage(StorageError),
  /// The environment went away (nobody is left to hear of it).
  Gone,
}

impl StopReason {
  /// The report's `stoppedBy`.
  pub fn as_str(&self) -> &'static str {
    match self {
      StopReason::NothingDue | StopReason::Gone => "nothingDue",
      StopReason::MaxJobs => "maxJobs",
      StopReason::MaxMs => "maxMs",
      StopReason::Storage(_) => "storageError",
    }
  }
}

/// What a drain does after a look at the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainStep {
  Stop(StopReason),
  /// Wait for a slot to be freed (or a renewal), then look again.
  Wait,
  /// The file is busy: ask again after this pause.
  TryAgain(Duration),
}

/// A drain's budget of time, and how long the store has been busy.
#[derive(Debug)]
pub struct Drain {
  /// When `maxMs` has passed.
  deadline: Option<Instant>,
  /// Since when every look found the file held by another process.
  busy_since: Option<Instant>,
}

impl Drain {
  pub fn new(began: Instant, max_ms: Option<u64>) -> Self {
    Self {
      deadline: max_ms.map(|ms| began + Duration::from_millis(ms)),
      busy_since: None,
    }
  }

  /// Before a look at `now`: the reason to stop, when the budget is used
  /// up (`spent`: `maxJobs` jobs were taken).
  pub fn spent(&self, spent: bool, now: Instant) -> Option<StopReason> {
    if spent {
      return Some(StopReason::MaxJobs);
    }
    let past = self.deadline.is_some_and(|deadline| now >= deadline);
    past.then_some(StopReason::MaxMs)
  }

  /// A look took jobs (`none`: it took nothing); `idle`: nothing was
  /// running when it looked, so nothing taken means nothing is due.
  pub fn took(&mut self, idle: bool, none: bool) -> DrainStep {
    self.busy_since = None;
    if idle && none {
      DrainStep::Stop(StopReason::NothingDue)
    } else {
      DrainStep::Wait
    }
  }

  /// A look failed at `now`: a busy file is asked again for
  /// `RECORD_PATIENCE`; any other error ends the drain.
  pub fn failed(&mut self, error: StorageError, now: Instant) -> DrainStep {
    if error.kind != StorageErrorKind::Busy {
      return DrainStep::Stop(StopReason::Storage(error));
    }
    let since = *self.busy_since.get_or_insert(now);
    if now.duration_since(since) >= RECORD_PATIENCE {
      return DrainStep::Stop(StopReason::Storage(error));
    }
    DrainStep::TryAgain(BUSY_PAUSE)
  }
}

/// What a drain did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainSummary {
  /// Jobs handed to a handler.
  pub processed: u64,
  pub tally: Tally,
  /// Pending jobs due now when the drain ended; `None` when the store could
  /// not say.
  pub remaining: Option<u64>,
  pub stopped_by: &'static str,
  /// The store's error that ended the drain, or else the one that kept it
  /// from counting what remains.
  pub error: Option<StorageError>,
}

impl DrainSummary {
  pub fn new(
    stopped: StopReason,
    remaining: Result<usize, StorageError>,
    tally: Tally,
    processed: u64,
  ) -> Self {
    let stopped_by = stopped.as_str();
    let (remaining, error) = match (stopped, remaining) {
      (StopReason::Storage(error), remaining) => (remaining.ok(), Some(error)),
      (_, Err(error)) => (None, Some(error)),
      (_, Ok(remaining)) => (Some(remaining), None),
    };
    Self {
      processed,
      tally,
      remaining: remaining.map(|n| n as u64),
      stopped_by,
      error,
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const MS: Duration = Duration::from_millis(1);

  fn error(kind: StorageErrorKind) -> StorageError {
    StorageError::new(kind, kind.code())
  }

  #[test]
  fn the_budget_stops_a_drain_before_its_look() {
    let began = Instant::now();
    let drain = Drain::new(began, Some(100));
    assert_eq!(drain.spent(false, began + 99 * MS), None);
    assert_eq!(
      drain.spent(false, began + 100 * MS),
      Some(StopReason::MaxMs)
    );
    assert_eq!(drain.spent(true, began), Some(StopReason::MaxJobs));
    let unbounded = Drain::new(began, None);
    assert_eq!(unbounded.spent(false, began + 3_600_000 * MS), None);
    let nothing = Drain::new(began, Some(0));
    assert_eq!(nothing.spent(false, began), Some(StopReason::MaxMs));
  }

  #[test]
  fn nothing_taken_with_nothing_running_means_nothing_due() {
    let mut drain = Drain::new(Instant::now(), None);
    assert_eq!(
      drain.took(true, true),
      DrainStep::Stop(StopReason::NothingDue)
    );
    // Running jobs may free slots for more: wait for them.
    assert_eq!(drain.took(false, true), DrainStep::Wait);
    assert_eq!(drain.took(true, false), DrainStep::Wait);
  }

  #[test]
  fn a_busy_file_is_waited_out_for_a_while() {
    let began = Instant::now();
    let mut drain = Drain::new(began, None);
    let busy = error(StorageErrorKind::Busy);
    assert_eq!(
      drain.failed(busy.clone(), began),
      DrainStep::TryAgain(10 * MS)
    );
    let later = began + RECORD_PATIENCE - MS;
    assert_eq!(
      drain.failed(busy.clone(), later),
      DrainStep::TryAgain(10 * MS)
    );
    let past = began + RECORD_PATIENCE;
    let stopped = DrainStep::Stop(StopReason::Storage(busy.clone()));
    assert_eq!(drain.failed(busy.clone(), past), stopped);
    // A look that works starts the wait afresh.
    drain.took(false, false);
    assert_eq!(
      drain.failed(busy.clone(), past),
      DrainStep::TryAgain(10 * MS)
    );
  }

  #[test]
  fn another_error_stops_a_drain_at_once() {
    let mut drain = Drain::new(Instant::now(), None);
    let away = error(StorageErrorKind::Unavailable);
    let stopped = DrainStep::Stop(StopReason::Storage(away.clone()));
    assert_eq!(drain.failed(away, Instant::now()), stopped);
  }

  #[test]
  fn stop_reasons_read_as_the_report_says_them() {
    let storage = StopReason::Storage(error(StorageErrorKind::Busy));
    let reasons = [
      StopReason::NothingDue,
      StopReason::MaxJobs,
      StopReason::MaxMs,
      storage,
      StopReason::Gone,
    ];
    let read: Vec<&str> = reasons.iter().map(StopReason::as_str).collect();
    let said = [
      "nothingDue",
      "maxJobs",
      "maxMs",
      "storageError",
      "nothingDue",
    ];
    assert_eq!(read, said);
  }

  #[test]
  fn the_summary_names_the_error_that_stopped_it_first() {
    let tally = Tally::default();
    let busy = error(StorageErrorKind::Busy);
    let away = error(StorageErrorKind::Unavailable);
    let clean = DrainSummary::new(StopReason::NothingDue, Ok(3), tally, 2);
    assert_eq!((clean.remaining, clean.error), (Some(3), None));
    assert_eq!(clean.stopped_by, "nothingDue");
    let uncounted = DrainSummary::new(StopReason::MaxJobs, Err(away.clone()), tally, 2);
    assert_eq!(uncounted.remaining, None);
    assert_eq!(uncounted.error, Some(away.clone()));
    let stopped = StopReason::Storage(busy.clone());
    let both = DrainSummary::new(stopped, Err(away), tally, 0);
    assert_eq!((both.remaining, both.error), (None, Some(busy.clone())));
    let counted = DrainSummary::new(StopReason::Storage(busy.clone()), Ok(5), tally, 0);
    assert_eq!((counted.remaining, counted.error), (Some(5), Some(busy)));
    assert_eq!(counted.stopped_by, "storageError");
  }
}
