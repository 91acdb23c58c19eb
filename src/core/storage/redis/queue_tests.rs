//! The queue's tests that go through all of it (the order jobs are
//! leased in, a job's life from back-off to failed and revived, a server
//! that does not answer), and the helpers that the tests of
//! queue_leases.rs, queue_enqueue.rs and queue_pages.rs share (a job, a
//! queue on a test server). A file of its own, not queue.rs's test
//! module: the helpers open a `RedisQueue`, and so the other files' tests
//! import a file that imports queue.rs, never queue.rs's own insides.

use super::queue::RedisQueue;
use super::test_server::{self, TestServer};
use crate::core::queue::job::{JobPriority, JobStatus, JobType, NewJob, QueueConfig};
use crate::core::storage::error::StorageErrorKind;
use crate::core::storage::traits::{JobFilter, Page, QueueStore};

/// A job of `priority` for `user`, with a JSON payload.
pub(super) fn job(priority: JobPriority, user: &str) -> NewJob {
  NewJob {
    job_type: JobType::Ai,
    operation: "op".into(),
    payload: Some("{\"a\":1}".into()),
    user_id: user.into(),
    priority,
    retry_count: 0,
    max_retries: 3,
    next_retry_at: None,
  }
}

/// The queue of `prefix` on `server`.
pub(super) fn queue(server: &TestServer, prefix: &str, config: QueueConfig) -> RedisQueue {
  RedisQueue::open(server.link(prefix), config).unwrap()
}

#[test]
fn priority_then_age_then_enqueue_order_and_leases() {
  let server = TestServer::start();
  let mut q = queue(&server, "order", QueueConfig::default());
  let low = q.enqueue(job(JobPriority::Low, "u"), 1000).unwrap();
  let high = q.enqueue(job(JobPriority::High, "u"), 1001).unwrap();
  let first = q.enqueue(job(JobPriority::Medium, "u"), 1002).unwrap();
  let second = q.enqueue(job(JobPriority::Medium, "v"), 1002).unwrap();
  let order: Vec<_> = (0..4)
    .map(|_| q.dequeue(2000).unwrap().unwrap().id)
    .collect();
  assert_eq!(order, vec![high, first, second.clone(), low]);
  assert!(q.dequeue(2000).unwrap().is_none());
  let stats = q.stats(2000).unwrap();
  assert_eq!((stats.total, stats.processing), (4, 4));
  let got = q.get(&second, 2000).unwrap().unwrap();
  assert_eq!(&*got.user_id, "v");
  assert_eq!(got.payload.as_deref(), Some("{\"a\":1}"));
  assert_eq!(got.lease_until, Some(2000 + q.config().lease_ms));
  let listed = q.list(2000, JobFilter::User("v"), Page::ALL).unwrap();
  assert_eq!(listed.len(), 1);
  let all = q
    .list(
      2000,
      JobFilter::All,
      Page {
        offset: 1,
        limit: Some(2),
      },
    )
    .unwrap();
  assert_eq!(
    all.iter().map(|j| j.created_at).collect::<Vec<_>>(),
    vec![1001, 1002]
  );
}

#[test]
fn failures_back_off_then_fail_for_good_and_revive() {
  let server = TestServer::start();
  let mut q = queue(&server, "fail", QueueConfig::default());
  let mut new = job(JobPriority::Medium, "u");
  new.max_retries = 2;
  let id = q.enqueue(new, 0).unwrap();
  q.dequeue(0).unwrap().unwrap();
  assert!(q.fail(&id, "boom", 10).unwrap());
  let job = q.get(&id, 10).unwrap().unwrap();
  assert_eq!(job.status, JobStatus::Pending);
  assert_eq!(job.next_retry_at, Some(10 + 60_000));
  assert_eq!(job.last_error.as_deref(), Some("boom"));
  assert_eq!(q.ready_count(20).unwrap(), 0);
  assert!(
    q.dequeue(20).unwrap().is_none(),
    "not before its retry time"
  );
  assert_eq!(q.ready_count(60_010).unwrap(), 1, "ready at its retry time");
  assert!(q.dequeue(60_010).unwrap().is_some());
  assert!(q.fail(&id, "again", 60_020).unwrap());
  assert_eq!(
    q.get(&id, 60_020).unwrap().unwrap().status,
    JobStatus::Failed
  );
  assert!(
    !q.complete(&id, 60_030).unwrap(),
    "finished jobs stay finished"
  );
  assert_eq!(q.retry_failed(None, 60_040).unwrap(), 1);
  let revived = q.get(&id, 60_040).unwrap().unwrap();
  assert_eq!(
    (revived.status, revived.retry_count),
    (JobStatus::Pending, 0)
  );
  assert!(!q.complete("job_1_zzzzzzzzz", 1).unwrap());
}

#[test]
fn an_unreachable_server_is_unavailable_within_the_timeout() {
  let (_runtime, link) = TestServer::unreachable(200);
  let mut q = RedisQueue::open(link, QueueConfig::default()).unwrap();
  let started = std::time::Instant::now();
  let error = q.stats(0).unwrap_err();
  assert_eq!(error.kind, StorageErrorKind::Unavailable);
  assert!(
    !error.message.contains(test_server::PASSWORD),
    "{}",
    error.message
  );
  assert!(started.elapsed() < std::time::Duration::from_millis(1000));
  assert_eq!(q.link().status().reachable, Some(false));
}
