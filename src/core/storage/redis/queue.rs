//! The job queue in Redis: every state change is one run of one command
//! (`commands/queue/*.lua`), atomic on the server, so two instances never
//! lease the same job. Ids keep the usual shape; each instance makes its
//! own (random keys, its own counter) and the enqueue command refuses one
//! already taken, so the instance tries the next.
//!
//! What a lost reply leaves behind is put right, never left to a lease's
//! end: a lease carries a token this instance chose, and a lease whose
//! reply did not come within `redisTimeoutMs` is revoked by that token
//! when the server answers (the job goes back untried, or, if the lease
//! request arrives after the revoke, it is refused); an enqueue whose
//! reply was lost is kept and sent again, and the server takes a job id it
//! holds, or held for a job since removed, as written.
//!
//! This file holds the queue itself, its commands' runs and the contract's
//! plain calls; the rest is in files of its own: leasing
//! (`queue_leases.rs`), adding jobs and the bounds (`queue_enqueue.rs`),
//! listing and the operations over many jobs (`queue_pages.rs`), a job
//! read from a reply (`queue_reply.rs`), and the tests that span them
//! (`queue_tests.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redis::{FromRedisValue, Value};

use super::commands::{self, QueueCommand, QUEUE_KEYS};
use super::link::RedisLink;
use super::outbox::WriteKind;
use super::queue_reply::{read_job, Read};
use super::reply;
use super::wake::WakeSignal;
use crate::core::limits;
use crate::core::notices;
use crate::core::queue::ids::JobIds;
use crate::core::queue::job::{Job, Lease, NewJob, QueueConfig, QueueError, QueueStats};
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};
use crate::core::storage::traits::{Finished, JobFilter, Location, Page, QueueStore, WorkSignal};

/// The coded warning of jobs found gone (their hash deleted or evicted).
pub const JOB_MISSING: &str = "REDIS_JOB_MISSING";

#[derive(Clone)]
pub struct RedisQueue {
  pub(super) link: RedisLink,
  /// `KEYS` of every command: the head, then `QUEUE_KEYS`.
  pub(super) keys: Arc<[String]>,
  pub(super) config: QueueConfig,
  pub(super) ids: JobIds,
  /// Shared with the detached copies, so they take the next numbers too
  /// (job ids and lease tokens).
  pub(super) next_id: Arc<AtomicU64>,
  /// When a job may be next, as the last lease that found nothing ready
  /// said (0: it did not say); shared with the detached copies.
  pub(super) due: Arc<AtomicU64>,
}

impl RedisQueue {
  pub fn open(link: RedisLink, config: QueueConfig) -> StorageResult<Self> {
    let keys = commands::keys(&link.key("q:"), &QUEUE_KEYS).into();
    let mut queue = Self {
      link,
      keys,
      config,
      ids: JobIds::new(),
      next_id: Arc::new(AtomicU64::new(std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        1u8,
      ))),
      due: Arc::new(AtomicU64::new(0)),
    };
    // Jobs a previous process kept in the file can be written now, and
    // the leases it gave up on given back.
    let enqueue = QueueCommand::Enqueue.script();
    queue.link.resume(WriteKind::Job, enqueue, &QUEUE_KEYS);
    let revoke = QueueCommand::Revoke.script();
    queue.link.resume(WriteKind::Revoke, revoke, &QUEUE_KEYS);
    // The bounds another instance set, if the server is there to say.
    let now = crate::core::clock::now_ms();
    if let Ok((size, bytes)) =
      queue.call::<(Option<u64>, Option<u64>)>(QueueCommand::Bound, now, &[])
    {
      queue.config.max_size = size.map_or(queue.config.max_size, |n| n as usize);
      queue.config.max_bytes = bytes.map_or(queue.config.max_bytes, |n| n as usize);
    }
    Ok(queue)
  }

  pub fn link(&self) -> &RedisLink {
    &self.link
  }

  /// The commands' arguments: the queue's settings, then the command's own.
  pub(super) fn script_args(&self, now: u64, args: &[&str]) -> Vec<String> {
    let backoff: Vec<String> = self
      .config
      .backoff
      .delays()
      .iter()
      .map(u64::to_string)
      .collect();
    let mut all = vec![
      now.to_string(),
      self.config.lease_ms.to_string(),
      backoff.join(","),
      self.config.max_size.to_string(),
      self.config.max_bytes.to_string(),
      self.config.max_stalls.to_string(),
    ];
    all.extend(args.iter().map(|arg| arg.to_string()));
    all
  }

  /// One run of `command` at the caller's `now` (the commands take time as
  /// an argument, like every core method, so tests can drive it). The
  /// reply is `{result, dropped}`: jobs found gone are warned about.
  pub(super) fn call<T: FromRedisValue>(
    &self,
    command: QueueCommand,
    now: u64,
    args: &[&str],
  ) -> StorageResult<T> {
    let (script, args) = (command.script(), self.script_args(now, args));
    // An acknowledged job must survive its master's failover.
    let reply: Value = if command == QueueCommand::Enqueue {
      self.link.command_replicated(script, &self.keys, &args)?
    } else {
      self.link.command(script, &self.keys, &args)?
    };
    let (result, dropped) = match reply {
      Value::Array(mut pair) if pair.len() == 2 => {
        let dropped = reply::text(&pair[1]).and_then(|n| n.parse::<u64>().ok());
        (pair.swap_remove(0), dropped.unwrap_or(0))
      }
      other => (other, 0),
    };
    if dropped > 0 {
      self.warn_missing(dropped);
    }
    T::from_redis_value(result).map_err(|error| {
      StorageError::new(
        StorageErrorKind::Corrupt,
        format!(
          "Redis at {}: an unexpected reply to the queue's {} command: {error}",
          self.link.url(),
          command.name()
        ),
      )
    })
  }

  pub(super) fn warn_missing(&self, dropped: u64) {
    notices::warn_once(
      JOB_MISSING,
      self.link.place(),
      format!(
        "{dropped} job(s) of the queue on Redis at {} were gone (their hash deleted, or evicted by the server's maxmemory-policy) and were dropped from the queue's indexes; the jobs behind them are served. getStorageStatus().missingJobs counts them (told once per server and prefix)",
        self.link.place()
      ),
    );
  }

  /// Sets aside the job of member `damaged`, which the server handed out
  /// but this library cannot read: out of every index, counted with the
  /// jobs found gone, kept as `damaged:<member>`.
  pub(super) fn set_aside(&self, now: u64, damaged: &str) -> StorageResult<()> {
    self.call::<i64>(QueueCommand::Damaged, now, &[damaged])?;
    self.warn_missing(1);
    Ok(())
  }

  /// The jobs of a reply listing them; the damaged ones are set aside.
  /// Also how many items the reply held.
  pub(super) fn usable_jobs(&self, now: u64, value: Value) -> StorageResult<(Vec<Job>, usize)> {
    let Value::Array(items) = value else {
      return Ok((Vec::new(), 0));
    };
    let mut jobs = Vec::with_capacity(items.len());
    for item in &items {
      match read_job(item) {
        Read::Job(job) => jobs.push(job),
        Read::Damaged(damaged) => self.set_aside(now, &damaged)?,
        Read::Nothing => {}
      }
    }
    Ok((jobs, items.len()))
  }

  fn job_at(&self, command: QueueCommand, now: u64, args: &[&str]) -> StorageResult<Option<Job>> {
    let value: Value = self.call(command, now, args)?;
    match read_job(&value) {
      Read::Job(job) => Ok(Some(job)),
      Read::Nothing => Ok(None),
      Read::Damaged(damaged) => self.set_aside(now, &damaged).map(|()| None),
    }
  }

  pub(super) fn jobs_at(
    &self,
    command: QueueCommand,
    now: u64,
    args: &[&str],
  ) -> StorageResult<Vec<Job>> {
    let value: Value = self.call(command, now, args)?;
    self.usable_jobs(now, value).map(|(jobs, _)| jobs)
  }

  fn flag_at(&self, command: QueueCommand, now: u64, args: &[&str]) -> StorageResult<bool> {
    self.call::<i64>(command, now, args).map(|n| n == 1)
  }
}

/// Jobs of the queue on `link`'s prefix found gone (their hash deleted or
/// evicted) and dropped from its indexes, by every instance: one plain
/// read.
pub fn missing_jobs(link: &RedisLink) -> StorageResult<u64> {
  let key = link.key("q:stat");
  link.run(move |mut connection| async move {
    redis::cmd("HGET")
      .arg(&key)
      .arg("missing")
      .query_async::<Option<u64>>(&mut connection)
      .await
      .map(Option::unwrap_or_default)
  })
}

/// How a leased job ended, as the finishing scripts take it: `complete`
/// with no error, or `fail` with the error clipped to the stored bound.
pub(super) fn outcome_args(error: Option<&str>) -> (&'static str, String) {
  match error {
    None => ("complete", String::new()),
    Some(error) => ("fail", limits::clip(error)),
  }
}

impl QueueStore for RedisQueue {
  fn config(&self) -> QueueConfig {
    self.config.clone()
  }

  fn set_config(&mut self, config: QueueConfig, now: u64) -> StorageResult<()> {
    self.set_bounds(config, now)
  }

  fn enqueue(&mut self, job: NewJob, now: u64) -> Result<Arc<str>, QueueError> {
    self.enqueue_new(job, now)
  }

  fn dequeue(&mut self, now: u64) -> StorageResult<Option<Job>> {
    self.lease(now, "")
  }

  fn dequeue_up_to(&mut self, now: u64, count: usize) -> StorageResult<Vec<Job>> {
    self.lease_up_to(now, count)
  }

  fn dequeue_eligible(
    &mut self,
    now: u64,
    eligible: &dyn Fn(&Job) -> bool,
  ) -> StorageResult<Option<Job>> {
    self.lease_eligible(now, eligible)
  }

  fn renew_lease(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.flag_at(QueueCommand::Renew, now, &[id])
  }

  fn keep_leased(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self
      .call::<i64>(QueueCommand::Keep, now, &[id])
      .map(|kept| kept == 1)
  }

  /// One command run for all of them, by their lease tokens: a lease
  /// this worker lost (it ran out and the job went on to another) is not
  /// extended.
  fn keep_all_leased(&mut self, held: &[(&str, &Lease)], now: u64) -> StorageResult<()> {
    let tokens: Vec<&str> = held
      .iter()
      .filter_map(|(_, lease)| lease.token.as_deref())
      .collect();
    self
      .call::<i64>(QueueCommand::KeepLeases, now, &tokens)
      .map(drop)
  }

  fn finish_leased(
    &mut self,
    id: &str,
    lease: &Lease,
    error: Option<&str>,
    now: u64,
  ) -> StorageResult<bool> {
    let Some(token) = lease.token.as_deref() else {
      // Every lease this store hands out has a token; one without is not
      // this store's.
      return Ok(false);
    };
    let (how, error) = outcome_args(error);
    self.flag_at(QueueCommand::FinishLeased, now, &[token, id, how, &error])
  }

  fn finish_and_take(
    &mut self,
    id: &str,
    lease: &Lease,
    error: Option<&str>,
    take_next: bool,
    now: u64,
  ) -> StorageResult<Finished> {
    self.finish_then_lease(id, lease, error, take_next, now)
  }

  fn next_due(&self) -> Option<u64> {
    Some(self.due.load(Ordering::Relaxed)).filter(|&due| due > 0)
  }

  fn work_signal(&self) -> Option<Box<dyn WorkSignal>> {
    let key = self.link.key("q:wake");
    Some(Box::new(WakeSignal::new(self.link.clone(), key)))
  }

  fn release(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.flag_at(QueueCommand::Release, now, &[id])
  }

  fn stalled(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.flag_at(QueueCommand::Stalled, now, &[id])
  }

  fn complete(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.flag_at(QueueCommand::Complete, now, &[id])
  }

  fn fail(&mut self, id: &str, error: &str, now: u64) -> StorageResult<bool> {
    self.flag_at(QueueCommand::Fail, now, &[id, &limits::clip(error)])
  }

  fn stats(&mut self, now: u64) -> StorageResult<QueueStats> {
    let counts: Vec<usize> = self.call(QueueCommand::Stats, now, &[])?;
    let count = |i: usize| counts.get(i).copied().unwrap_or(0);
    Ok(QueueStats {
      total: (0..4).map(count).sum(),
      pending: count(0),
      processing: count(1),
      completed: count(2),
      failed: count(3),
      bytes: count(4),
    })
  }

  fn ready_count(&mut self, now: u64) -> StorageResult<usize> {
    self.call(QueueCommand::Ready, now, &[])
  }

  fn get(&mut self, id: &str, now: u64) -> StorageResult<Option<Job>> {
    self.job_at(QueueCommand::Get, now, &[id])
  }

  fn list(&mut self, now: u64, filter: JobFilter<'_>, page: Page) -> StorageResult<Vec<Job>> {
    self.list_pages(now, filter, page)
  }

  fn retry_failed(&mut self, id: Option<&str>, now: u64) -> StorageResult<usize> {
    match id {
      Some(id) => self
        .call::<(usize, usize, usize)>(QueueCommand::RetryFailed, now, &[id])
        .map(|r| r.0),
      None => self.in_batches(QueueCommand::RetryFailed, now, &[""]),
    }
  }

  /// In runs of at most a hundred jobs (each one round trip), so a large
  /// queue never holds the server for long.
  fn clear_completed(&mut self, now: u64) -> StorageResult<usize> {
    self.in_batches(QueueCommand::ClearCompleted, now, &[])
  }

  fn detached(&self) -> Option<Box<dyn QueueStore>> {
    Some(Box::new(self.clone()))
  }

  fn location(&self) -> Location<'_> {
    Location::Redis(self.link.place())
  }
}
