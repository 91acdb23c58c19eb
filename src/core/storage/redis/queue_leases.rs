//! Leasing the queue's jobs: each lease under a token this instance
//! chose, one job or many in one run, the best ready one or the first a
//! caller finds eligible, and a worker's outcome with its next lease in
//! one run. A lease whose reply did not come is revoked by its token when
//! the server answers, so a job is never left leased to nobody. Apart
//! from queue.rs, which runs the commands, because this is the part where
//! two instances meet over the same jobs.

use std::sync::atomic::Ordering;

use redis::Value;

use super::commands::QueueCommand;
use super::outbox::{Write, WriteKind};
use super::queue::{outcome_args, RedisQueue};
use super::queue_reply::{read_job, Read};
use crate::core::queue::job::{Job, Lease};
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};
use crate::core::storage::traits::{Finished, QueueStore};

/// Ready jobs the eligibility check looks at per round trip after the
/// first, which reads the best one alone (usually eligible, always without
/// a per-user limit).
const PEEK_BATCH: usize = 32;

impl RedisQueue {
  /// A lease token: this instance's, never reused.
  fn token(&self) -> String {
    let n = self.next_id.fetch_add(1, Ordering::Relaxed);
    self.ids.job_id(crate::core::clock::now_ms(), n)
  }

  /// Leases `member` (or the best ready job) under a new token. A lease
  /// whose reply did not come is revoked when the server answers, so the
  /// job is never left leased to nobody; a job leased that cannot be read
  /// (its payload is not JSON) is set aside and the next one leased.
  pub(super) fn lease(&self, now: u64, member: &str) -> StorageResult<Option<Job>> {
    loop {
      let token = self.token();
      match self.call::<Value>(QueueCommand::Lease, now, &[&token, member]) {
        Ok(value) => match read_job(&value) {
          Read::Job(job) => return Ok(Some(job)),
          Read::Nothing => {
            if member.is_empty() {
              self.learn_due(&value);
            }
            return Ok(None);
          }
          Read::Damaged(damaged) => self.set_aside(now, &damaged)?,
        },
        Err(away) if away.is_no_answer() => {
          self.revoke_later(now, &token);
          return Err(away);
        }
        Err(error) => return Err(error),
      }
    }
  }

  /// Gives up a lease whose reply did not come: revoked by its token
  /// when the server answers (the job goes back untried, or the late lease
  /// is refused).
  fn revoke_later(&self, now: u64, token: &str) {
    let args = self.script_args(now, &[token]);
    let script = QueueCommand::Revoke.script();
    let revoke = Write::new(script, self.keys.to_vec(), args, WriteKind::Revoke, 0);
    // If even keeping it fails, the lease runs out instead.
    let _ = self.link.keep(revoke);
  }

  /// Notes when a job may be next, from an empty lease's reply (a time, or
  /// nil when no job is delayed or leased).
  fn learn_due(&self, reply: &Value) {
    let due = match reply {
      Value::Int(at) => (*at).max(1) as u64,
      _ => 0,
    };
    self.due.store(due, Ordering::Relaxed);
  }

  /// One command run for all of them, each under a token of its own
  /// (revoked like any lease whose reply did not come).
  pub(super) fn lease_up_to(&mut self, now: u64, count: usize) -> StorageResult<Vec<Job>> {
    if count <= 1 {
      return Ok(self.dequeue(now)?.into_iter().collect());
    }
    let tokens: Vec<String> = (0..count).map(|_| self.token()).collect();
    let args: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let reply = match self.call::<Value>(QueueCommand::LeaseMany, now, &args) {
      Ok(reply) => reply,
      Err(away) if away.is_no_answer() => {
        for token in &tokens {
          self.revoke_later(now, token);
        }
        return Err(away);
      }
      Err(error) => return Err(error),
    };
    let Value::Array(mut pair) = reply else {
      return Ok(Vec::new());
    };
    pair.resize(2, Value::Nil);
    let (jobs, items) = self.usable_jobs(now, pair.swap_remove(0))?;
    if items < count {
      self.learn_due(&pair[0]);
    }
    Ok(jobs)
  }

  pub(super) fn lease_eligible(
    &mut self,
    now: u64,
    eligible: &dyn Fn(&Job) -> bool,
  ) -> StorageResult<Option<Job>> {
    let mut offset = 0usize;
    let mut count = 1usize;
    loop {
      let batch = self.jobs_at(
        QueueCommand::Peek,
        now,
        &[&offset.to_string(), &count.to_string()],
      )?;
      if batch.is_empty() {
        return Ok(None);
      }
      let Some(chosen) = batch.iter().find(|job| eligible(job)) else {
        offset += batch.len();
        count = PEEK_BATCH;
        continue;
      };
      let member = format!("{:016}", chosen.seq);
      match self.lease(now, &member)? {
        Some(job) => return Ok(Some(job)),
        // Leased by another instance meanwhile: look again.
        None => continue,
      }
    }
  }

  /// One command run: the outcome under the lease's token (recorded
  /// before time is advanced, so a lease that ran out unnoticed is still
  /// this worker's), the job read back, and the next job leased under a
  /// new token, revoked like any lease whose reply did not come.
  pub(super) fn finish_then_lease(
    &mut self,
    id: &str,
    lease: &Lease,
    error: Option<&str>,
    take_next: bool,
    now: u64,
  ) -> StorageResult<Finished> {
    let Some(token) = lease.token.as_deref() else {
      return Ok(Finished::default());
    };
    let (how, error) = outcome_args(error);
    let next_token = if take_next {
      self.token()
    } else {
      String::new()
    };
    let args = [token, id, how, &error, &next_token];
    let reply = match self.call::<Value>(QueueCommand::FinishLease, now, &args) {
      Ok(reply) => reply,
      Err(away) if away.is_no_answer() && take_next => {
        self.revoke_later(now, &next_token);
        return Err(away);
      }
      Err(error) => return Err(error),
    };
    let Value::Array(mut items) = reply else {
      return Err(StorageError::new(
        StorageErrorKind::Corrupt,
        format!(
          "Redis at {}: an unexpected reply to the queue's finish_lease command",
          self.link.url()
        ),
      ));
    };
    items.resize(4, Value::Nil);
    let recorded = items[0] == Value::Int(1);
    let job = match read_job(&items[1]) {
      Read::Job(job) => Some(job),
      _ => None,
    };
    let next = match read_job(&items[2]) {
      Read::Job(job) => Some(job),
      Read::Nothing => {
        if take_next {
          self.learn_due(&items[3]);
        }
        None
      }
      // Leased but unreadable: set aside; the worker looks again.
      Read::Damaged(damaged) => {
        let _ = self.set_aside(now, &damaged);
        None
      }
    };
    Ok(Finished {
      recorded,
      job,
      next,
      due: self.next_due(),
    })
  }
}

#[cfg(test)]
mod tests {
  use std::sync::Arc;

  use crate::core::queue::job::{JobPriority, JobStatus, Lease, QueueConfig};
  use crate::core::storage::redis::queue_tests::{job, queue};
  use crate::core::storage::redis::test_server::TestServer;
  use crate::core::storage::traits::QueueStore;

  #[test]
  fn an_expired_lease_is_a_failed_attempt_dated_at_its_deadline() {
    let server = TestServer::start();
    let config = QueueConfig {
      lease_ms: 100,
      ..QueueConfig::default()
    };
    let mut q = queue(&server, "lease", config);
    let id = q.enqueue(job(JobPriority::Medium, "u"), 0).unwrap();
    q.dequeue(0).unwrap().unwrap();
    assert!(q.keep_leased(&id, 50).unwrap());
    let job = q.get(&id, 200).unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.retry_count, 1);
    assert_eq!(
      job.last_error.as_deref(),
      Some(crate::core::queue::LEASE_EXPIRED)
    );
    assert_eq!(job.next_retry_at, Some(150 + 60_000));
  }

  #[test]
  fn eligible_dequeue_passes_over_and_keeps_order() {
    let server = TestServer::start();
    let mut q = queue(&server, "eligible", QueueConfig::default());
    q.enqueue(job(JobPriority::High, "busy"), 0).unwrap();
    let free = q.enqueue(job(JobPriority::Low, "free"), 0).unwrap();
    let leased = q
      .dequeue_eligible(1, &|job| &*job.user_id != "busy")
      .unwrap();
    assert_eq!(leased.unwrap().id, free);
    assert_eq!(&*q.dequeue(2).unwrap().unwrap().user_id, "busy");
  }

  #[test]
  fn two_instances_never_lease_the_same_job() {
    let server = TestServer::start();
    let mut q = queue(&server, "race", QueueConfig::default());
    for _ in 0..200 {
      q.enqueue(job(JobPriority::Medium, "u"), 0).unwrap();
    }
    let taken: Vec<Vec<Arc<str>>> = std::thread::scope(|scope| {
      let workers: Vec<_> = (0..4)
        .map(|_| {
          let mut mine = queue(&server, "race", QueueConfig::default());
          scope.spawn(move || {
            let mut ids = Vec::new();
            while let Some(job) = mine.dequeue(1).unwrap() {
              ids.push(job.id);
            }
            ids
          })
        })
        .collect();
      workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<_> = taken.into_iter().flatten().collect();
    assert_eq!(all.len(), 200);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200, "every job handed out exactly once");
  }

  #[test]
  fn a_worker_keeps_all_its_leases_in_one_step() {
    let server = TestServer::start();
    let config = QueueConfig {
      lease_ms: 100,
      ..QueueConfig::default()
    };
    let mut q = queue(&server, "keep-all", config);
    let a = q.enqueue(job(JobPriority::Medium, "u"), 0).unwrap();
    let b = q.enqueue(job(JobPriority::Medium, "u"), 0).unwrap();
    let waiting = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    let leases: Vec<Lease> = (0..2)
      .map(|_| q.dequeue(0).unwrap().unwrap().lease_held())
      .collect();
    // A lease that is no one's (an unknown token) is left alone.
    let unknown = Lease {
      token: Some("job_1_zzzzzzzzz".into()),
      ..leases[0].clone()
    };
    let held = [(&*a, &leases[0]), (&*b, &leases[1]), (&*waiting, &unknown)];
    q.keep_all_leased(&held, 150).unwrap();
    for id in [&a, &b] {
      let job = q.get(id, 200).unwrap().unwrap();
      assert_eq!(
        (job.status, job.lease_until),
        (JobStatus::Processing, Some(250))
      );
    }
    assert_eq!(
      q.get(&waiting, 200).unwrap().unwrap().status,
      JobStatus::Pending
    );
  }
}
