//! The byte bounds of the queue and of the failure history, tested on
//! every store with the same scenarios: what goes first, what is never dropped,
//! and counters that stay exact through every kind of change.

use std::sync::Arc;

use super::open::{open_failures, open_queue, Backend};
use super::sqlite::test_dir;
use super::traits::{FailureStore, JobFilter, Page, QueueStore};
use crate::core::failures::{FailureConfig, FailureRecord};
use crate::core::queue::{
  Job, JobPriority, JobStatus, JobType, NewJob, QueueConfig, QueueError, LEASE_EXPIRED,
};

/// Runs `test` on a memory store, on a store in a new file and on a store
/// on a Redis server of its own.
pub(super) fn for_each_backend(name: &str, test: impl Fn(Backend)) {
  test(Backend::Memory);
  let path = test_dir(name).join("s.db");
  test(Backend::File(&path, Default::default()));
  let server = super::redis::test_server::TestServer::start();
  test(Backend::Redis(&server.link(name)));
}

fn new_job(payload_bytes: usize, max_retries: u32) -> NewJob {
  NewJob {
    job_type: JobType::Ai,
    operation: "op".into(),
    // A JSON string of `payload_bytes` bytes, quotes included.
    payload: Some(Arc::from(format!(
      "\"{}\"",
      "x".repeat(payload_bytes.saturating_sub(2))
    ))),
    user_id: "u".into(),
    priority: JobPriority::Low,
    retry_count: 0,
    max_retries,
    next_retry_at: None,
  }
}

fn queue(backend: Backend, max_bytes: usize) -> Box<dyn QueueStore> {
  let config = QueueConfig {
    max_bytes,
    ..Default::default()
  };
  let mut queue = open_queue(backend, config.clone()).unwrap();
  queue.set_config(config, 0).unwrap();
  queue
}

fn all(queue: &mut dyn QueueStore, now: u64) -> Vec<Job> {
  queue.list(now, JobFilter::All, Page::ALL).unwrap()
}

fn ids(queue: &mut dyn QueueStore, now: u64) -> Vec<Arc<str>> {
  all(queue, now).into_iter().map(|job| job.id).collect()
}

/// The running counter equals what the held jobs hold, counted afresh.
fn assert_exact(queue: &mut dyn QueueStore, now: u64) -> usize {
  let counted: usize = all(queue, now).iter().map(Job::stored_bytes).sum();
  assert_eq!(queue.stats(now).unwrap().bytes, counted);
  counted
}

/// The bytes one job of `new_job(payload, _)` holds once stored.
fn job_bytes(payload: usize) -> usize {
  let mut probe = queue(Backend::Memory, usize::MAX);
  let id = probe.enqueue(new_job(payload, 3), 0).unwrap();
  probe.get(&id, 0).unwrap().unwrap().stored_bytes()
}

/// A queue with room for `room` jobs of `new_job(1000, 3)`, holding `held`
/// of them (their ids in enqueue order), and what one such job holds.
fn filled(
  backend: Backend,
  room: usize,
  held: usize,
) -> (Box<dyn QueueStore>, usize, Vec<Arc<str>>) {
  let one = job_bytes(1000);
  let mut q = queue(backend, room * one);
  let ids = (0..held)
    .map(|_| q.enqueue(new_job(1000, 3), 0).unwrap())
    .collect();
  (q, one, ids)
}

#[test]
fn finished_jobs_go_by_bytes_in_the_order_they_finished() {
  for_each_backend("bytes-order", |backend| {
    let one = job_bytes(1000);
    let mut q = queue(backend, 3 * one + 10);
    let a = q.enqueue(new_job(1000, 1), 0).unwrap();
    let b = q.enqueue(new_job(1000, 3), 0).unwrap();
    let c = q.enqueue(new_job(1000, 3), 0).unwrap();
    assert_eq!(assert_exact(&mut *q, 0), 3 * one);
    q.complete(&b, 1).unwrap();
    q.fail(&a, "x", 2).unwrap(); // failed for good after b completed
    assert_eq!(
      assert_exact(&mut *q, 2),
      3 * one + 1,
      "the error text counts"
    );
    let d = q.enqueue(new_job(1000, 3), 3).unwrap();
    assert_eq!(
      ids(&mut *q, 3),
      [a.clone(), c.clone(), d.clone()],
      "b finished first and went first; its room was enough"
    );
    let e = q.enqueue(new_job(1000, 3), 4).unwrap();
    assert_eq!(ids(&mut *q, 4), [c.clone(), d.clone(), e.clone()]);
    assert_eq!(assert_exact(&mut *q, 4), 3 * one);
    // One large job takes the room of two finished ones, oldest first.
    q.complete(&c, 5).unwrap();
    q.complete(&d, 6).unwrap();
    let big = q.enqueue(new_job(1900, 3), 7).unwrap();
    assert_eq!(ids(&mut *q, 7), [e, big]);
    assert_exact(&mut *q, 7);
  });
}

#[test]
fn live_jobs_are_never_dropped_for_bytes_and_a_refusal_changes_nothing() {
  for_each_backend("bytes-full", |backend| {
    let (mut q, one, live) = filled(backend, 3, 3);
    q.complete(&live[0], 1).unwrap();
    // A job of two jobs' bytes: the one finished job cannot make room.
    let refused = q.enqueue(new_job(2000, 3), 2).unwrap_err();
    assert!(
      matches!(
        refused,
        QueueError::FullBytes {
          live_bytes,
          max_bytes,
          ..
        } if live_bytes == 2 * one && max_bytes == 3 * one
      ),
      "{refused:?}"
    );
    assert!(refused.to_string().contains("bytes"));
    assert_eq!(ids(&mut *q, 2), live, "nothing was evicted");
    let stats = q.stats(2).unwrap();
    assert_eq!((stats.total, stats.completed, stats.bytes), (3, 1, 3 * one));
    // Live jobs alone: QUEUE_FULL (FullBytes), whatever the job.
    q.enqueue(new_job(1000, 3), 3).unwrap();
    assert!(matches!(
      q.enqueue(new_job(10, 3), 4),
      Err(QueueError::FullBytes { .. })
    ));
    let held = all(&mut *q, 4);
    assert!(held.iter().all(Job::is_live));
    assert_eq!(held.len(), 3);
  });
}

#[test]
fn a_job_larger_than_the_whole_bound_is_refused_up_front() {
  for_each_backend("bytes-too-large", |backend| {
    let mut q = queue(backend, 500);
    let done = q.enqueue(new_job(100, 3), 0).unwrap();
    q.complete(&done, 0).unwrap();
    let refused = q.enqueue(new_job(1000, 3), 1).unwrap_err();
    assert!(
      matches!(refused, QueueError::JobTooLarge { max_bytes: 500, .. }),
      "{refused:?}"
    );
    assert_eq!(ids(&mut *q, 1), [done], "nothing was evicted for it");
  });
}

#[test]
fn fail_grows_and_replaces_a_jobs_bytes_exactly() {
  for_each_backend("bytes-fail", |backend| {
    let mut q = queue(backend, usize::MAX >> 1);
    let id = q.enqueue(new_job(50, 10), 0).unwrap();
    let before = assert_exact(&mut *q, 0);
    q.fail(&id, &"é".repeat(100), 0).unwrap();
    assert_eq!(assert_exact(&mut *q, 0), before + 200, "UTF-8 bytes");
    q.fail(&id, "short", 0).unwrap();
    assert_eq!(
      assert_exact(&mut *q, 0),
      before + 5,
      "the last error replaces"
    );
    // A text past 8 KiB is cut, and counted as kept.
    q.fail(&id, &"e".repeat(100_000), 0).unwrap();
    let kept = q.get(&id, 0).unwrap().unwrap().last_error.unwrap().len();
    assert!(kept <= crate::core::limits::MAX_TEXT_BYTES);
    assert_eq!(assert_exact(&mut *q, 0), before + kept);
    // A lease that runs out is a failure too.
    let now = 10_000_000;
    q.dequeue(now).unwrap().unwrap();
    let later = now + QueueConfig::default().lease_ms + 1;
    assert_eq!(assert_exact(&mut *q, later), before + LEASE_EXPIRED.len());
  });
}

#[test]
fn lowering_max_bytes_evicts_finished_jobs_but_never_live_ones() {
  for_each_backend("bytes-lower", |backend| {
    let (mut q, one, jobs) = filled(backend, 10, 5);
    q.complete(&jobs[3], 1).unwrap();
    q.complete(&jobs[1], 2).unwrap();
    let lower = |q: &mut Box<dyn QueueStore>, max_bytes| {
      let config = QueueConfig {
        max_bytes,
        ..q.config()
      };
      q.set_config(config, 3).unwrap();
    };
    lower(&mut q, 4 * one);
    assert_eq!(
      ids(&mut *q, 3),
      [
        jobs[0].clone(),
        jobs[1].clone(),
        jobs[2].clone(),
        jobs[4].clone()
      ],
      "the first to finish went"
    );
    lower(&mut q, one);
    let stats = q.stats(3).unwrap();
    assert_eq!((stats.total, stats.pending, stats.completed), (3, 3, 0));
    assert_eq!(
      assert_exact(&mut *q, 3),
      3 * one,
      "live jobs stay above the bound"
    );
    assert!(matches!(
      q.enqueue(new_job(10, 3), 4),
      Err(QueueError::FullBytes { .. })
    ));
  });
}

#[test]
fn the_byte_counter_stays_exact_through_every_change() {
  for_each_backend("bytes-exact", |backend| {
    let one = job_bytes(300);
    let mut q = queue(backend, 40 * one);
    let mut now = 0;
    for round in 0..200u64 {
      now += 1;
      match q.enqueue(new_job(300 + (round as usize % 7) * 10, 2), now) {
        Ok(_) | Err(QueueError::FullBytes { .. }) => {}
        Err(other) => panic!("{other:?}"),
      }
      if let Some(job) = q.dequeue(now).unwrap() {
        match round % 4 {
          0 => assert!(q.complete(&job.id, now).unwrap()),
          1 => assert!(q.fail(&job.id, &"f".repeat(round as usize), now).unwrap()),
          2 => assert!(q.release(&job.id, now).unwrap()),
          _ => {}
        }
      }
      if round % 50 == 49 {
        q.clear_completed(now).unwrap();
        q.retry_failed(None, now).unwrap();
      }
      assert_exact(&mut *q, now);
    }
    let stats = q.stats(now).unwrap();
    assert_eq!(
      q.list(now, JobFilter::Status(JobStatus::Processing), Page::ALL)
        .unwrap()
        .len(),
      stats.processing
    );
  });
}

fn history(backend: Backend, config: FailureConfig) -> Box<dyn FailureStore> {
  let mut history = open_failures(backend, config).unwrap();
  history.set_config(config).unwrap();
  history
}

/// A history with the default bounds but `max_bytes`.
fn history_of(backend: Backend, max_bytes: usize) -> Box<dyn FailureStore> {
  let config = FailureConfig {
    max_bytes,
    ..Default::default()
  };
  history(backend, config)
}

fn failures(history: &mut dyn FailureStore) -> Vec<FailureRecord> {
  history.failures(None, Page::ALL).unwrap()
}

/// The failures held, as `service:error`, oldest first.
fn held(history: &mut dyn FailureStore) -> Vec<String> {
  failures(history)
    .iter()
    .map(|r| format!("{}:{}", r.service, r.error))
    .collect()
}

/// The running counter equals what the held records hold, counted afresh.
fn assert_exact_failures(history: &mut dyn FailureStore) -> usize {
  let counted: usize = failures(history)
    .iter()
    .map(FailureRecord::stored_bytes)
    .sum();
  assert_eq!(history.bytes().unwrap(), counted);
  counted
}

/// Records a failure of `service` whose error is `error` and whose other
/// strings hold 10 bytes (service "s_", operation "op", skip reason "rrrr"
/// and the error's own length on top).
fn fail(history: &mut dyn FailureStore, service: &str, error: &str, now: u64) {
  history.record(service, "op", error, "rrrr", now).unwrap();
}

#[test]
fn failures_past_the_byte_bound_go_oldest_first_whatever_their_service() {
  for_each_backend("failure-bytes", |backend| {
    // Each record: service (2) + "op" (2) + error (2) + "rrrr" (4) = 10 bytes.
    let mut h = history_of(backend, 40);
    fail(&mut *h, "a1", "e1", 1);
    fail(&mut *h, "b1", "e2", 2);
    fail(&mut *h, "a1", "e3", 3);
    fail(&mut *h, "c1", "e4", 4);
    assert_eq!(assert_exact_failures(&mut *h), 40);
    fail(&mut *h, "c1", "e5", 5);
    assert_eq!(held(&mut *h), ["b1:e2", "a1:e3", "c1:e4", "c1:e5"]);
    fail(&mut *h, "a1", "e6", 6);
    assert_eq!(held(&mut *h), ["a1:e3", "c1:e4", "c1:e5", "a1:e6"]);
    // b1 lost its only record: it is no longer tracked at all.
    let tracked = h.stats().unwrap();
    assert_eq!(tracked.len(), 2);
    assert!(tracked.iter().all(|stats| &*stats.service != "b1"));
    assert!(!h.should_skip("b1", 1.0, 6).unwrap());
    // A larger record takes the room of two.
    fail(&mut *h, "b1", "e7xxxxxxxx", 7);
    assert_eq!(held(&mut *h), ["c1:e5", "a1:e6", "b1:e7xxxxxxxx"]);
    assert_eq!(assert_exact_failures(&mut *h), 38);
  });
}

#[test]
fn the_newest_failure_is_kept_even_alone_over_the_byte_bound() {
  for_each_backend("failure-bytes-newest", |backend| {
    let mut h = history_of(backend, 15);
    fail(&mut *h, "a1", "e1", 1);
    fail(&mut *h, "b1", &"x".repeat(100), 2);
    assert_eq!(failures(&mut *h).len(), 1);
    assert_eq!(assert_exact_failures(&mut *h), 108);
    assert!(h.should_skip("b1", 1.0, 2).unwrap());
    fail(&mut *h, "a1", "e3", 3);
    assert_eq!(held(&mut *h), ["a1:e3"]);
  });
}

#[test]
fn lowering_the_failure_byte_bound_applies_at_once() {
  for_each_backend("failure-bytes-lower", |backend| {
    let config = FailureConfig::default();
    let mut h = history(backend, config);
    for i in 0..10u64 {
      let service = ["a1", "b1", "c1"][(i % 3) as usize];
      fail(&mut *h, service, &format!("e{i}"), i);
    }
    assert_eq!(assert_exact_failures(&mut *h), 100);
    h.set_config(FailureConfig {
      max_bytes: 35,
      ..config
    })
    .unwrap();
    assert_eq!(held(&mut *h), ["b1:e7", "c1:e8", "a1:e9"]);
    assert_eq!(assert_exact_failures(&mut *h), 30);
  });
}

#[test]
fn the_failure_byte_counter_stays_exact_through_every_change() {
  for_each_backend("failure-bytes-exact", |backend| {
    let mut h = history(
      backend,
      FailureConfig {
        max_per_service: 5,
        max_services: 8,
        max_bytes: 2_000,
        ..Default::default()
      },
    );
    for i in 0..400u64 {
      let service = format!("service-{}", i % 11);
      let error = "é".repeat((i % 13) as usize * 7);
      h.record(&service, "op", &error, "why", i).unwrap();
      if i % 97 == 96 {
        h.clear(Some("service-3")).unwrap();
      }
      if i == 250 {
        h.set_config(FailureConfig {
          max_per_service: 2,
          max_bytes: 500,
          ..h.config()
        })
        .unwrap();
      }
      assert!(assert_exact_failures(&mut *h) <= h.config().max_bytes);
    }
    // A text past 8 KiB is cut, and counted as kept.
    h.record("big", "op", &"e".repeat(100_000), "why", 500)
      .unwrap();
    assert_exact_failures(&mut *h);
    assert!(h.clear(None).unwrap());
    assert_eq!(assert_exact_failures(&mut *h), 0);
    // Counted again after a clear (in a file, its trigger is back).
    fail(&mut *h, "a1", "e1", 600);
    assert_eq!(assert_exact_failures(&mut *h), 10);
  });
}
