//! How a job run by a worker ends: what is recorded for it, which event
//! reports what was recorded, what the worker does next, why a handler is
//! aborted, and which running jobs count a stall when the worker's
//! environment goes away under them.

use std::sync::Arc;

use super::Recorded;
use crate::core::queue::JobStatus;

/// A job's end, as its handler's call came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
  /// The environment went away under the handler.
  Gone,
  Completed {
    now: u64,
  },
  Failed {
    message: String,
    now: u64,
  },
}

impl JobEnd {
  /// What to record: the error (`None`: completed) and when; `None` when
  /// there is nothing to record (the environment went away: the job goes
  /// back to pending instead).
  pub fn outcome(&self) -> Option<(Option<&str>, u64)> {
    match self {
      JobEnd::Gone => None,
      JobEnd::Completed { now } => Some((None, *now)),
      JobEnd::Failed { message, now } => Some((Some(message.as_str()), *now)),
    }
  }
}

/// Why a running job's handler is aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
  /// It ran longer than `jobTimeoutMs`: a failed attempt.
  TimedOut { ms: u64 },
  /// `stop()`'s grace ran out: the job goes back untried.
  Stopped,
}

impl Abort {
  /// The code its abort signal's reason carries.
  pub fn code(self) -> &'static str {
    match self {
      Abort::TimedOut { .. } => "TIMEOUT",
      Abort::Stopped => "WORKER_STOPPED",
    }
  }

  pub fn message(self) -> String {
    match self {
      Abort::TimedOut { ms } => format!("The job timed out after {ms} ms"),
      Abort::Stopped => "The worker stopped".to_string(),
    }
  }
}

/// The event that reports a recorded outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
  Completed,
  /// A failed attempt that will be retried.
  Failed,
  /// A failed attempt that was the last: a dead letter.
  Dead,
}

impl Event {
  pub fn as_str(self) -> &'static str {
    match self {
      Event::Completed => "completed",
      Event::Failed => "failed",
      Event::Dead => "dead",
    }
  }
}

/// Outcomes recorded by a worker, as its events report them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
  pub completed: u32,
  /// Failed attempts, the dead letters among them.
  pub failed: u32,
  pub dead: u32,
}

impl Tally {
  /// Counts the outcome a job's status says was recorded and names its
  /// event; `None` for a job still processing (nothing was recorded).
  pub fn count(&mut self, status: JobStatus) -> Option<Event> {
    let event = match status {
      JobStatus::Completed => Event::Completed,
      JobStatus::Failed => Event::Dead,
      JobStatus::Pending => Event::Failed,
      JobStatus::Processing => return None,
    };
    match event {
      Event::Completed => self.completed += 1,
      Event::Failed => self.failed += 1,
      Event::Dead => {
        self.failed += 1;
        self.dead += 1;
      }
    }
    Some(event)
  }
}

/// What a job's task does once its outcome is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
  /// The next job was taken in the same step: run it.
  RunNext,
  /// A next job was asked for and none was ready: the worker's loop waits
  /// for work (a full worker for a slot).
  WaitForWork,
  /// None was asked for (a drain, a per-user limit, a stopping worker): the
  /// worker's loop decides, now.
  LookAgain,
}

impl Recorded {
  pub fn then(&self) -> Then {
    match (&self.next, self.asked) {
      (Some(_), _) => Then::RunNext,
      (None, true) => Then::WaitForWork,
      (None, false) => Then::LookAgain,
    }
  }
}

/// What was heard of a job's handler call when its environment ended: its
/// place in the order calls were handed to the JavaScript thread, and
/// whether it came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallHeard {
  pub order: u64,
  pub returned: bool,
}

/// The environment went away: for each job running here (and what was
/// heard of its call; `None`: it was never handed), whether its handler ran
/// (a stall is counted) or not (it goes back untried). Calls reach the
/// JavaScript thread in the order they were handed to it: the jobs whose
/// handler returned were running (a promise in flight), the first whose
/// call did not return is the one the thread ended in (its handler exited,
/// or was cut off), and the calls after it never ran.
pub fn stalls(heard: Vec<(Arc<str>, Option<CallHeard>)>) -> Vec<(Arc<str>, bool)> {
  let cut_off = heard
    .iter()
    .filter_map(|(_, call)| call.filter(|call| !call.returned))
    .map(|call| call.order)
    .min();
  heard
    .into_iter()
    .map(|(id, call)| {
      let ran = call.is_some_and(|call| call.returned || Some(call.order) == cut_off);
      (id, ran)
    })
    .collect()
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::queue::{Job, QueueConfig};
  use crate::core::storage::{open_queue, Backend};
  use crate::core::worker::tests::job as new_job;

  /// A job as a worker holds it: leased.
  fn job() -> Job {
    let mut queue = open_queue(Backend::Memory, QueueConfig::default()).unwrap();
    queue.enqueue(new_job("u"), 0).unwrap();
    queue.dequeue_up_to(1, 1).unwrap().remove(0)
  }

  #[test]
  fn an_end_records_its_error_or_nothing() {
    assert_eq!(JobEnd::Gone.outcome(), None);
    assert_eq!(JobEnd::Completed { now: 7 }.outcome(), Some((None, 7)));
    let failed = JobEnd::Failed {
      message: "boom".into(),
      now: 9,
    };
    assert_eq!(failed.outcome(), Some((Some("boom"), 9)));
  }

  #[test]
  fn aborts_carry_their_code_and_message() {
    let timed_out = Abort::TimedOut { ms: 250 };
    assert_eq!(timed_out.code(), "TIMEOUT");
    assert_eq!(timed_out.message(), "The job timed out after 250 ms");
    assert_eq!(Abort::Stopped.code(), "WORKER_STOPPED");
    assert_eq!(Abort::Stopped.message(), "The worker stopped");
  }

  #[test]
  fn the_tally_follows_the_recorded_status() {
    let mut tally = Tally::default();
    assert_eq!(tally.count(JobStatus::Completed), Some(Event::Completed));
    assert_eq!(tally.count(JobStatus::Pending), Some(Event::Failed));
    assert_eq!(tally.count(JobStatus::Failed), Some(Event::Dead));
    assert_eq!(tally.count(JobStatus::Processing), None);
    let counted = Tally {
      completed: 1,
      failed: 2,
      dead: 1,
    };
    assert_eq!(tally, counted, "a dead letter is a failed attempt too");
    let names: Vec<&str> = [Event::Completed, Event::Failed, Event::Dead]
      .iter()
      .map(|event| event.as_str())
      .collect();
    assert_eq!(names, ["completed", "failed", "dead"]);
  }

  #[test]
  fn after_a_record_the_task_runs_the_next_or_hands_back_to_the_loop() {
    let chained = Recorded {
      job: None,
      next: Some(job()),
      asked: true,
    };
    assert_eq!(chained.then(), Then::RunNext);
    let none_ready = Recorded {
      asked: true,
      ..Recorded::default()
    };
    assert_eq!(none_ready.then(), Then::WaitForWork);
    assert_eq!(Recorded::default().then(), Then::LookAgain);
  }

  fn heard(order: u64, returned: bool) -> Option<CallHeard> {
    Some(CallHeard { order, returned })
  }

  #[test]
  fn the_first_call_that_did_not_return_ran_and_the_later_ones_did_not() {
    // b returned, c is where the thread ended, a came after it; d was
    // never handed.
    let calls = vec![
      (Arc::from("a"), heard(4, false)),
      (Arc::from("b"), heard(1, true)),
      (Arc::from("c"), heard(2, false)),
      (Arc::from("d"), None),
      (Arc::from("e"), heard(3, true)),
    ];
    let ran: Vec<(String, bool)> = stalls(calls)
      .into_iter()
      .map(|(id, ran)| (id.to_string(), ran))
      .collect();
    let expected = [
      ("a", false),
      ("b", true),
      ("c", true),
      ("d", false),
      ("e", true),
    ];
    assert_eq!(ran, expected.map(|(id, ran)| (id.to_string(), ran)));
  }

  #[test]
  fn with_every_call_returned_every_job_ran() {
    let calls = vec![
      (Arc::from("a"), heard(0, true)),
      (Arc::from("b"), heard(1, true)),
    ];
    assert!(stalls(calls).iter().all(|(_, ran)| *ran));
  }
}
