//! Stalls (`maxStalls`) and lost leases, tested on every store with the
//! same scenarios: a job whose worker ends each time it runs it is handed
//! back untried a few times, then fails like any failed attempt; an expired
//! lease counts too; and the late outcome of a worker whose lease was lost
//! changes nothing.

use std::sync::Arc;

use super::byte_bounds::for_each_backend;
use super::open::{open_queue, Backend};
use super::traits::QueueStore;
use crate::core::queue::{
  stalled_error, Backoff, JobPriority, JobStatus, JobType, NewJob, QueueConfig, LEASE_EXPIRED,
};

fn queue(backend: Backend, max_stalls: u32) -> Box<dyn QueueStore> {
  let config = QueueConfig {
    max_stalls,
    lease_ms: 1_000,
    ..Default::default()
  };
  open_queue(backend, config).unwrap()
}

fn enqueue(queue: &mut dyn QueueStore, max_retries: u32) -> Arc<str> {
  let job = NewJob {
    job_type: JobType::Ai,
    operation: "op".into(),
    payload: None,
    user_id: "u".into(),
    priority: JobPriority::Medium,
    retry_count: 0,
    max_retries,
    next_retry_at: None,
  };
  queue.enqueue(job, 0).unwrap()
}

#[test]
fn a_job_whose_worker_ends_every_time_fails_past_max_stalls() {
  for_each_backend("stalls-ended", |backend| {
    let mut q = queue(backend, 2);
    let id = enqueue(&mut *q, 1);
    for now in [1, 2] {
      assert_eq!(q.dequeue(now).unwrap().unwrap().id, id);
      assert!(q.stalled(&id, now).unwrap());
      let job = q.get(&id, now).unwrap().unwrap();
      // Untried: back to pending, ready now, its retry count unchanged.
      assert_eq!(
        (job.status, job.retry_count, job.next_retry_at),
        (JobStatus::Pending, 0, None)
      );
    }
    q.dequeue(3).unwrap().unwrap();
    assert!(q.stalled(&id, 3).unwrap());
    let job = q.get(&id, 3).unwrap().unwrap();
    assert_eq!((job.status, job.retry_count), (JobStatus::Failed, 1));
    assert_eq!(
      job.last_error.as_deref(),
      Some(stalled_error(3, 2).as_str())
    );
    assert!(!q.stalled(&id, 4).unwrap(), "only a processing job stalls");
    // A dead letter revived starts its stalls afresh.
    assert_eq!(q.retry_failed(Some(&id), 5).unwrap(), 1);
    q.dequeue(6).unwrap().unwrap();
    assert!(q.stalled(&id, 6).unwrap());
    assert_eq!(q.get(&id, 6).unwrap().unwrap().status, JobStatus::Pending);
  });
}

#[test]
fn an_expired_lease_is_a_stall_and_a_failed_attempt() {
  for_each_backend("stalls-expired", |backend| {
    let mut q = queue(backend, 1);
    let id = enqueue(&mut *q, 5);
    q.dequeue(0).unwrap().unwrap();
    let job = q.get(&id, 1_001).unwrap().unwrap();
    assert_eq!((job.status, job.retry_count), (JobStatus::Pending, 1));
    assert_eq!(job.last_error.as_deref(), Some(LEASE_EXPIRED));
    // The second stall is past maxStalls 1: its attempt says so.
    let ready = job.next_retry_at.unwrap();
    q.dequeue(ready).unwrap().unwrap();
    let job = q.get(&id, ready + 1_001).unwrap().unwrap();
    assert_eq!(job.retry_count, 2);
    assert_eq!(
      job.last_error.as_deref(),
      Some(stalled_error(2, 1).as_str())
    );
  });
}

#[test]
fn a_worker_that_stops_on_purpose_hands_back_without_a_stall() {
  for_each_backend("stalls-released", |backend| {
    let mut q = queue(backend, 0);
    let id = enqueue(&mut *q, 1);
    for now in 1..4 {
      q.dequeue(now).unwrap().unwrap();
      assert!(q.release(&id, now).unwrap());
    }
    let job = q.get(&id, 5).unwrap().unwrap();
    assert_eq!((job.status, job.retry_count), (JobStatus::Pending, 0));
  });
}

#[test]
fn an_outcome_under_a_lost_lease_changes_nothing() {
  for_each_backend("lost-lease", |backend| {
    let config = QueueConfig {
      lease_ms: 1_000,
      // A lost lease's job is ready again at once.
      backoff: Backoff::new(vec![0]).unwrap(),
      ..Default::default()
    };
    let mut q = open_queue(backend, config).unwrap();
    let id = enqueue(&mut *q, 5);
    // Worker A takes the job; its lease runs out while it is paused; B
    // takes it over.
    let first = q.dequeue(0).unwrap().unwrap().lease_held();
    let second = q.dequeue(1_001).unwrap().unwrap();
    assert_eq!(second.id, id);
    // A's late outcomes change nothing: B's run is the job's.
    assert!(!q
      .finish_leased(&id, &first, Some("late failure"), 1_002)
      .unwrap());
    assert!(!q.finish_leased(&id, &first, None, 1_003).unwrap());
    let job = q.get(&id, 1_004).unwrap().unwrap();
    assert_eq!((job.status, job.retry_count), (JobStatus::Processing, 1));
    // B's outcome is recorded, once.
    let lease = second.lease_held();
    assert!(q.finish_leased(&id, &lease, None, 1_005).unwrap());
    assert!(
      !q.finish_leased(&id, &lease, None, 1_006).unwrap(),
      "recorded already"
    );
    assert_eq!(
      q.get(&id, 1_007).unwrap().unwrap().status,
      JobStatus::Completed
    );
  });
}
