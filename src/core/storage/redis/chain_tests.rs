//! A worker's fewer round trips, against a real `redis-server`: a job's
//! outcome and the next lease in one command run (exactly once under two
//! instances, revoked when its reply is lost), the wake signal an idle
//! worker blocks on, and the due time an empty lease tells.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queue::RedisQueue;
use super::test_server::TestServer;
use crate::core::queue::{Job, JobPriority, JobStatus, JobType, NewJob, QueueConfig};
use crate::core::storage::error::StorageErrorKind;
use crate::core::storage::traits::{Heard, QueueStore};

fn new_job(next_retry_at: Option<u64>) -> NewJob {
  NewJob {
    job_type: JobType::Ai,
    operation: "op".into(),
    payload: Some("{\"a\":1}".into()),
    user_id: "u".into(),
    priority: JobPriority::Medium,
    retry_count: 0,
    max_retries: 3,
    next_retry_at,
  }
}

fn queue(server: &TestServer, prefix: &str) -> RedisQueue {
  RedisQueue::open(server.link(prefix), QueueConfig::default()).unwrap()
}

/// Runs jobs the way a worker of concurrency 1 does: one lease, then each
/// outcome recorded with the next lease in the same step. The ids run.
fn run_chain(q: &mut RedisQueue, now: u64) -> Vec<Arc<str>> {
  let mut ran = Vec::new();
  // A worker's first take fills its slots in one step; here, with one
  // slot, the jobs beyond the first go back as a worker stopping would.
  let mut first = q.dequeue_up_to(now, 3).unwrap().into_iter();
  let mut job: Option<Job> = first.next();
  for extra in first {
    assert!(q.release(&extra.id, now).unwrap());
  }
  while let Some(running) = job {
    ran.push(running.id.clone());
    let lease = running.lease_held();
    let finished = q
      .finish_and_take(&running.id, &lease, None, true, now)
      .unwrap();
    assert!(finished.recorded, "recorded under its own lease");
    let read = finished.job.unwrap();
    assert_eq!(read.status, JobStatus::Completed, "read back as recorded");
    job = finished.next;
  }
  ran
}

#[test]
fn completing_and_leasing_the_next_in_one_step_hands_each_job_out_once() {
  let server = TestServer::start();
  let mut q = queue(&server, "chain");
  for _ in 0..300 {
    q.enqueue(new_job(None), 0).unwrap();
  }
  let ran: Vec<Vec<Arc<str>>> = std::thread::scope(|scope| {
    let workers: Vec<_> = (0..2)
      .map(|_| {
        let mut mine = queue(&server, "chain");
        scope.spawn(move || run_chain(&mut mine, 1))
      })
      .collect();
    workers.into_iter().map(|w| w.join().unwrap()).collect()
  });
  assert!(ran.iter().all(|mine| !mine.is_empty()), "both took part");
  let mut all: Vec<_> = ran.into_iter().flatten().collect();
  assert_eq!(all.len(), 300);
  all.sort();
  all.dedup();
  assert_eq!(all.len(), 300, "every job run exactly once");
  let stats = q.stats(2).unwrap();
  assert_eq!(
    (stats.completed, stats.processing, stats.pending),
    (300, 0, 0)
  );
}

#[test]
fn a_step_whose_reply_was_lost_keeps_its_outcome_and_gives_the_next_lease_back() {
  let server = TestServer::start();
  let link = server.link_with("lost-step", 200, None);
  let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
  let ids: Vec<_> = (0..3)
    .map(|_| q.enqueue(new_job(None), 0).unwrap())
    .collect();
  // One step as usual first: the server knows the script (a pop of a
  // script it does not know would be sent again only with a reply).
  let first = q.dequeue(1).unwrap().unwrap();
  let step = q
    .finish_and_take(&first.id, &first.lease_held(), None, true, 1)
    .unwrap();
  let running = step.next.unwrap();
  assert_eq!(running.id, ids[1]);
  server.pause();
  let error = q
    .finish_and_take(&running.id, &running.lease_held(), None, true, 2)
    .unwrap_err();
  assert_eq!(error.kind, StorageErrorKind::Unavailable);
  std::thread::sleep(Duration::from_millis(300));
  // The server now runs the step it was sent, then the revoke.
  server.resume();
  let deadline = Instant::now() + Duration::from_secs(20);
  while link.outbox().waiting() > 0 {
    assert!(Instant::now() < deadline, "the revoke was not sent");
    std::thread::sleep(Duration::from_millis(20));
  }
  let done = q.get(&running.id, 3).unwrap().unwrap();
  assert_eq!(done.status, JobStatus::Completed, "the outcome landed");
  let next = q.get(&ids[2], 3).unwrap().unwrap();
  assert_eq!(
    (next.status, next.retry_count, next.lease_until),
    (JobStatus::Pending, 0, None),
    "the next job went back untried, not left leased to nobody"
  );
  // Asked again (the worker's retry), the outcome is not recorded twice.
  let again = q
    .finish_and_take(&running.id, &running.lease_held(), None, false, 4)
    .unwrap();
  assert!(!again.recorded);
  assert_eq!(again.job.unwrap().status, JobStatus::Completed);
  assert_eq!(q.dequeue(5).unwrap().unwrap().id, ids[2]);
}

/// Waits on `signal` until it hears work; false if it only ever heard
/// nothing in `turns` waits of a second.
fn hears_work(
  server: &TestServer,
  signal: &mut dyn crate::core::storage::traits::WorkSignal,
  turns: usize,
) -> bool {
  (0..turns).any(|_| {
    let heard = server.runtime.block_on(signal.wait(Duration::from_secs(1)));
    assert_ne!(heard, Heard::Failed);
    heard == Heard::Work
  })
}

#[test]
fn an_idle_worker_hears_of_a_job_another_instance_enqueued() {
  let server = TestServer::start();
  let mut idle = queue(&server, "wake");
  let mut other = queue(&server, "wake");
  let mut signal = idle.work_signal().unwrap();
  // Signals left from before are stale once a lease finds nothing ready.
  other.enqueue(new_job(None), 0).unwrap();
  assert!(idle.dequeue(1).unwrap().is_some());
  assert!(idle.dequeue(1).unwrap().is_none());
  let heard = server
    .runtime
    .block_on(signal.wait(Duration::from_millis(200)));
  assert_eq!(heard, Heard::Nothing, "no signal while nothing is pending");
  // The wait is under way (blocked on the server) when the job comes.
  let waiting = std::thread::scope(|scope| {
    let waiter = scope.spawn(|| hears_work(&server, &mut *signal, 30));
    std::thread::sleep(Duration::from_millis(100));
    other.enqueue(new_job(None), 2).unwrap();
    waiter.join().unwrap()
  });
  assert!(waiting, "the enqueue woke the idle worker");
  assert!(idle.dequeue(3).unwrap().is_some());
}

#[test]
fn an_empty_lease_tells_when_a_delayed_job_is_due_and_signals_it() {
  let server = TestServer::start();
  let mut idle = queue(&server, "due");
  let mut signal = idle.work_signal().unwrap();
  assert!(idle.dequeue(0).unwrap().is_none());
  assert_eq!(idle.next_due(), None, "nothing held, nothing due");
  let mut other = queue(&server, "due");
  let id = other.enqueue(new_job(Some(5_000)), 10).unwrap();
  // A delayed job wakes idle workers too: they learn when it is due.
  assert!(hears_work(&server, &mut *signal, 30));
  assert!(idle.dequeue(20).unwrap().is_none(), "not due yet");
  assert_eq!(idle.next_due(), Some(5_000));
  assert_eq!(idle.dequeue(5_000).unwrap().unwrap().id, id);
}
