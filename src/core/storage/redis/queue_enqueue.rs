//! Adding jobs to the queue: the enqueue under an id this instance makes
//! (one another instance took is refused, and the next id tried), the
//! same id sent twice held once (a kept copy whose first write arrived),
//! a job kept here while the server does not answer, within the queue's
//! bounds, and those bounds set for every instance. Apart from queue.rs
//! because this is where a write may outlive its reply.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use redis::Value;

use super::commands::QueueCommand;
use super::outbox::{FollowUp, Write, WriteKind};
use super::queue::RedisQueue;
use crate::core::queue::job::{NewJob, QueueConfig, QueueError};
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};

impl RedisQueue {
  pub(super) fn set_bounds(&mut self, config: QueueConfig, now: u64) -> StorageResult<()> {
    let (size, bytes) = (config.max_size.to_string(), config.max_bytes.to_string());
    let previous = std::mem::replace(&mut self.config, config);
    let bounds = [size.as_str(), &bytes];
    let sent = self
      .call::<i64>(QueueCommand::SetBound, now, &bounds)
      .and_then(|mut more| {
        // Finished jobs beyond the new bounds go a batch per run.
        while more == 1 {
          more = self.call(QueueCommand::Evict, now, &[])?;
        }
        Ok(())
      });
    // Asked for while the server is away: used here at once, and stored
    // for every instance when it answers.
    let outcome = self.link.sent_or_kept(sent, || {
      let args = self.script_args(now, &bounds);
      let script = QueueCommand::SetBound.script();
      let evict = FollowUp {
        script: QueueCommand::Evict.script(),
        args: self.script_args(now, &[]),
        more: more_to_evict,
      };
      Write::new(script, self.keys.to_vec(), args, WriteKind::Bound, 0).then(evict)
    });
    if outcome.is_err() {
      self.config = previous;
    }
    outcome
  }

  pub(super) fn enqueue_new(&mut self, job: NewJob, now: u64) -> Result<Arc<str>, QueueError> {
    job.check(self.config.max_payload_bytes)?;
    let payload = job.payload.as_deref().unwrap_or("");
    let has_payload = if job.payload.is_some() { "1" } else { "0" };
    let priority = (job.priority as u8).to_string();
    let (retries, max) = (job.retry_count.to_string(), job.max_retries.to_string());
    let next = job.next_retry_at.map(|n| n.to_string()).unwrap_or_default();
    for _ in 0..8 {
      let id = self
        .ids
        .job_id(now, self.next_id.fetch_add(1, Ordering::Relaxed));
      let job_bytes = job
        .clone()
        .into_job(id.as_str().into(), 0, now)
        .check_size(&self.config)?;
      let bytes = job_bytes.to_string();
      let args = [
        id.as_str(),
        job.job_type.as_str(),
        &job.operation,
        payload,
        has_payload,
        &job.user_id,
        &priority,
        &retries,
        &max,
        &next,
        &bytes,
      ];
      let reply: Vec<String> = match self.call(QueueCommand::Enqueue, now, &args) {
        Ok(reply) => reply,
        // No answer: kept here and written when the server answers
        // (accepted). Any other error is the server's answer: nothing was
        // written, and the caller hears why.
        Err(away) if away.is_no_answer() => {
          self.keep_locally(now, &args, job_bytes)?;
          return Ok(id.into());
        }
        Err(error) => return Err(QueueError::Storage(error)),
      };
      match reply.first().map(String::as_str) {
        Some("OK") => return Ok(id.into()),
        Some("FULL") => {
          let max_size = reply.get(1).and_then(|n| n.parse().ok());
          return Err(QueueError::Full {
            max_size: max_size.unwrap_or(self.config.max_size),
          });
        }
        Some(full @ ("FULL_BYTES" | "TOO_LARGE")) => {
          let number = |i: usize| reply.get(i).and_then(|n| n.parse().ok()).unwrap_or(0);
          return Err(match full {
            "TOO_LARGE" => QueueError::JobTooLarge {
              bytes: job_bytes,
              max_bytes: number(1),
            },
            _ => QueueError::FullBytes {
              live_bytes: number(2),
              job_bytes,
              max_bytes: number(1),
            },
          });
        }
        // Another instance made the same id: take the next one.
        _ => continue,
      }
    }
    Err(QueueError::Storage(StorageError::new(
      StorageErrorKind::Corrupt,
      format!("Redis at {}: could not find a free job id", self.link.url()),
    )))
  }

  /// Keeps a job the server did not answer for in the link's outbox, under
  /// its id, within the queue's bounds (what waits here is bounded like
  /// the queue itself).
  fn keep_locally(&self, now: u64, args: &[&str], job_bytes: usize) -> Result<(), QueueError> {
    let (jobs, bytes) = self.link.outbox().held(WriteKind::Job);
    if jobs >= self.config.max_size || bytes.saturating_add(job_bytes) > self.config.max_bytes {
      return Err(QueueError::WaitingFull {
        jobs,
        bytes,
        job_bytes,
        max_size: self.config.max_size,
        max_bytes: self.config.max_bytes,
      });
    }
    let args = self.script_args(now, args);
    let script = QueueCommand::Enqueue.script();
    let write = Write::new(script, self.keys.to_vec(), args, WriteKind::Job, job_bytes);
    self.link.keep(write).map_err(QueueError::Storage)
  }
}

/// Whether `set_bound` or `evict` replied that more finished jobs must go
/// (their reply is `{more, dropped}`).
fn more_to_evict(reply: &Value) -> Option<Option<String>> {
  let Value::Array(pair) = reply else {
    return None;
  };
  (pair.first() == Some(&Value::Int(1))).then_some(None)
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::queue::job::JobPriority;
  use crate::core::storage::redis::link::RedisLink;
  use crate::core::storage::redis::queue_tests::{job, queue};
  use crate::core::storage::redis::test_server::TestServer;
  use crate::core::storage::traits::{JobFilter, Page, QueueStore};

  #[test]
  fn a_full_queue_evicts_finished_jobs_only_and_bounds_are_shared() {
    let server = TestServer::start();
    let config = QueueConfig {
      max_size: 2,
      ..QueueConfig::default()
    };
    let mut q = queue(&server, "full", config);
    let a = q.enqueue(job(JobPriority::Medium, "u"), 0).unwrap();
    q.enqueue(job(JobPriority::Medium, "u"), 0).unwrap();
    let full = q.enqueue(job(JobPriority::Medium, "u"), 0);
    assert!(matches!(full, Err(QueueError::Full { max_size: 2 })));
    assert!(q.complete(&a, 1).unwrap());
    q.enqueue(job(JobPriority::Medium, "u"), 2).unwrap();
    assert!(
      q.get(&a, 2).unwrap().is_none(),
      "the finished job made room"
    );
    // Another instance on the same prefix reads the bound this one set.
    q.set_config(
      QueueConfig {
        max_size: 5,
        ..q.config()
      },
      3,
    )
    .unwrap();
    let other = queue(&server, "full", QueueConfig::default());
    assert_eq!(other.config().max_size, 5);
  }

  #[test]
  fn jobs_and_failures_accepted_while_the_server_is_away_arrive_exactly_once() {
    use crate::core::failures::FailureConfig;
    use crate::core::storage::redis::failures::RedisFailures;
    use crate::core::storage::traits::FailureStore;
    let mut server = TestServer::start();
    let link = server.link("away");
    let mut q = RedisQueue::open(link.clone(), QueueConfig::default()).unwrap();
    let mut history = RedisFailures::open(link.clone(), FailureConfig::default()).unwrap();
    let before = q.enqueue(job(JobPriority::Low, "u"), 1).unwrap();
    server.kill();
    let kept: Vec<_> = (0..3)
      .map(|i| q.enqueue(job(JobPriority::High, "u"), 10 + i).unwrap())
      .collect();
    history.record("svc", "op", "down", "skipped", 20).unwrap();
    assert!(q.stats(30).is_err(), "reads still say the server is away");
    assert_eq!((link.outbox().jobs(), link.outbox().failures()), (3, 1));
    server.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while link.outbox().jobs() + link.outbox().failures() > 0 {
      assert!(
        std::time::Instant::now() < deadline,
        "the outbox was not written"
      );
      std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The restarted server kept nothing (no persistence in tests): what it
    // holds now is exactly what was kept here, each once, in order.
    let all = q.list(40, JobFilter::All, Page::ALL).unwrap();
    assert_eq!(all.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), kept);
    assert_eq!(all[0].created_at, 10, "each keeps the time it was accepted");
    assert!(q.get(&before, 40).unwrap().is_none());
    assert_eq!(history.failures(None, Page::ALL).unwrap().len(), 1);
    assert!(history.should_skip("svc", 1.0, 21).unwrap());
  }

  #[test]
  fn jobs_kept_in_the_file_survive_the_process_and_arrive_once() {
    use crate::core::storage::redis::options::RedisOptions;
    let mut server = TestServer::start();
    let file = crate::core::storage::sqlite::test_dir("outbox").join("state.db");
    let (url, runtime) = (server.url(), server.runtime.handle().clone());
    let link = || {
      let options = RedisOptions {
        prefix: "kept".into(),
        timeout_ms: 500,
        outbox_file: Some((file.clone(), Default::default())),
        ..RedisOptions::new(url.clone())
      };
      RedisLink::connect(&options, runtime.clone()).unwrap()
    };
    server.kill();
    let kept = {
      let mut q = RedisQueue::open(link(), QueueConfig::default()).unwrap();
      let id = q.enqueue(job(JobPriority::Medium, "u"), 5).unwrap();
      assert_eq!(q.link().outbox().jobs(), 1);
      id
    };
    // This "process" is gone; the next one opens the same file.
    server.restart();
    let mut q = RedisQueue::open(link(), QueueConfig::default()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while q.link().outbox().jobs() > 0 {
      assert!(
        std::time::Instant::now() < deadline,
        "the kept job was not written"
      );
      std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let all = q.list(6, JobFilter::All, Page::ALL).unwrap();
    assert_eq!(
      all.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
      vec![kept]
    );
    // Written and gone from the file: a third process finds nothing to write.
    let third = RedisQueue::open(link(), QueueConfig::default()).unwrap();
    assert_eq!(third.link().outbox().jobs(), 0);
  }

  /// Sends the enqueue of one job, under one id, twice (a kept copy whose
  /// first write reached the server); the two replies.
  fn written_twice(q: &RedisQueue, id: &str) -> (String, String) {
    let args = [id, "ai", "op", "", "0", "u", "1", "0", "3", "", "20"];
    let first: Vec<String> = q.call(QueueCommand::Enqueue, 1, &args).unwrap();
    let again: Vec<String> = q.call(QueueCommand::Enqueue, 1, &args).unwrap();
    (first[0].clone(), again[0].clone())
  }

  #[test]
  fn a_job_written_twice_is_held_once() {
    let server = TestServer::start();
    let mut q = queue(&server, "twice", QueueConfig::default());
    let replies = written_twice(&q, "job_1_000000001");
    assert_eq!(replies, ("OK".into(), "DUPLICATE".into()));
    assert_eq!(q.stats(2).unwrap().total, 1);
  }

  #[test]
  fn a_job_written_twice_into_a_queue_it_filled_is_held_once() {
    let server = TestServer::start();
    let config = QueueConfig {
      max_size: 1,
      ..QueueConfig::default()
    };
    let q = queue(&server, "twice-full", config);
    // The first write reached the server and filled the queue; the kept
    // copy (the reply was lost) must be taken as written, not refused as
    // full, or the outbox retries it for ever.
    let replies = written_twice(&q, "job_1_000000002");
    assert_eq!(replies, ("OK".into(), "DUPLICATE".into()));
  }
}
