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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redis::{FromRedisValue, Value};

use super::commands::{self, QueueCommand, QUEUE_KEYS};
use super::link::RedisLink;
use super::outbox::{FollowUp, Write, WriteKind};
use super::reply;
use super::wake::WakeSignal;
use crate::core::limits;
use crate::core::notices;
use crate::core::queue::ids::JobIds;
use crate::core::queue::job::{
  Job, JobPriority, JobStatus, JobType, Lease, NewJob, QueueConfig, QueueError, QueueStats,
};
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};
use crate::core::storage::sqlite::is_json;
use crate::core::storage::traits::{Finished, JobFilter, Location, Page, QueueStore, WorkSignal};

/// Ready jobs the eligibility check looks at per round trip after the
/// first, which reads the best one alone (usually eligible, always without
/// a per-user limit).
const PEEK_BATCH: usize = 32;
/// Jobs a listing reads per round trip (the commands' `BATCH`): a listing
/// of any size holds the server for a bounded time per run.
const LIST_BATCH: usize = 100;
/// The highest rank a listing asks for (Lua prints larger numbers with an
/// exponent, which Redis takes for no rank at all).
const MAX_RANK: usize = 1 << 40;
/// The coded warning of jobs found gone (their hash deleted or evicted).
pub const JOB_MISSING: &str = "REDIS_JOB_MISSING";

#[derive(Clone)]
pub struct RedisQueue {
  link: RedisLink,
  /// `KEYS` of every command: the head, then `QUEUE_KEYS`.
  keys: Arc<[String]>,
  config: QueueConfig,
  ids: JobIds,
  /// Shared with the detached copies, so they take the next numbers too
  /// (job ids and lease tokens).
  next_id: Arc<AtomicU64>,
  /// When a job may be next, as the last lease that found nothing ready
  /// said (0: it did not say); shared with the detached copies.
  due: Arc<AtomicU64>,
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
  fn script_args(&self, now: u64, args: &[&str]) -> Vec<String> {
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

  fn warn_missing(&self, dropped: u64) {
    notices::warn_once(
      JOB_MISSING,
      self.link.place(),
      format!(
        "{dropped} job(s) of the queue on Redis at {} were gone (their hash deleted, or evicted by the server's maxmemory-policy) and were dropped from the queue's indexes; the jobs behind them are served. getStorageStatus().missingJobs counts them (told once per server and prefix)",
        self.link.place()
      ),
    );
  }

  /// A lease token: this instance's, never reused.
  fn token(&self) -> String {
    let n = self.next_id.fetch_add(1, Ordering::Relaxed);
    self.ids.job_id(crate::core::clock::now_ms(), n)
  }

  /// Leases `member` (or the best ready job) under a new token. A lease
  /// whose reply did not come is revoked when the server answers, so the
  /// job is never left leased to nobody; a job leased that cannot be read
  /// (its payload is not JSON) is set aside and the next one leased.
  fn lease(&self, now: u64, member: &str) -> StorageResult<Option<Job>> {
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

  /// Sets aside the job of member `damaged`, which the server handed out
  /// but this library cannot read: out of every index, counted with the
  /// jobs found gone, kept as `damaged:<member>`.
  fn set_aside(&self, now: u64, damaged: &str) -> StorageResult<()> {
    self.call::<i64>(QueueCommand::Damaged, now, &[damaged])?;
    self.warn_missing(1);
    Ok(())
  }

  /// The jobs of a reply listing them; the damaged ones are set aside.
  /// Also how many items the reply held.
  fn usable_jobs(&self, now: u64, value: Value) -> StorageResult<(Vec<Job>, usize)> {
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

  fn job_at(&self, command: QueueCommand, now: u64, args: &[&str]) -> StorageResult<Option<Job>> {
    let value: Value = self.call(command, now, args)?;
    match read_job(&value) {
      Read::Job(job) => Ok(Some(job)),
      Read::Nothing => Ok(None),
      Read::Damaged(damaged) => self.set_aside(now, &damaged).map(|()| None),
    }
  }

  fn jobs_at(&self, command: QueueCommand, now: u64, args: &[&str]) -> StorageResult<Vec<Job>> {
    let value: Value = self.call(command, now, args)?;
    self.usable_jobs(now, value).map(|(jobs, _)| jobs)
  }

  fn flag_at(&self, command: QueueCommand, now: u64, args: &[&str]) -> StorageResult<bool> {
    self.call::<i64>(command, now, args).map(|n| n == 1)
  }

  /// Runs `command` (one that works a batch per run and replies
  /// `{done, looked at, left}`) until nothing is left; the total done.
  fn in_batches(&self, command: QueueCommand, now: u64, args: &[&str]) -> StorageResult<usize> {
    let mut done = 0;
    loop {
      let (count, looked, left): (usize, usize, usize) = self.call(command, now, args)?;
      done += count;
      if left == 0 || looked == 0 {
        return Ok(done);
      }
    }
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

/// Whether `set_bound` or `evict` replied that more finished jobs must go
/// (their reply is `{more, dropped}`).
fn more_to_evict(reply: &Value) -> Option<Option<String>> {
  let Value::Array(pair) = reply else {
    return None;
  };
  (pair.first() == Some(&Value::Int(1))).then_some(None)
}

/// What a reply item that should be a job is.
enum Read {
  Job(Job),
  /// No job (nil).
  Nothing,
  /// The fields of a job this library cannot use (its payload is not
  /// JSON, a field out of shape): its member.
  Damaged(String),
}

/// A job from a command's reply (the fields in `queue.lua`'s `FIELDS`
/// order, which the scripts checked for shape); its payload must be JSON.
fn read_job(value: &Value) -> Read {
  let Value::Array(fields) = value else {
    return Read::Nothing;
  };
  match parse_job(fields) {
    Some(job) if job.payload.as_deref().is_none_or(is_json) => Read::Job(job),
    _ => {
      let seq = fields
        .first()
        .and_then(reply::text)
        .and_then(|n| n.parse::<u64>().ok());
      Read::Damaged(format!("{:016}", seq.unwrap_or(0)))
    }
  }
}

fn parse_job(fields: &[Value]) -> Option<Job> {
  let text = |i: usize| fields.get(i).and_then(reply::text);
  let number = |i: usize| {
    text(i)
      .and_then(|t| t.parse::<f64>().ok())
      .map(|n| n.max(0.0) as u64)
  };
  let status = JobStatus::ALL.get(number(11)? as usize).copied()?;
  let lease_until = number(14);
  Some(Job {
    seq: number(0)?,
    id: Arc::from(text(1)?),
    job_type: JobType::parse(&text(2)?)?,
    operation: text(3)?,
    payload: text(4).map(Arc::from),
    user_id: Arc::from(text(5)?),
    priority: JobPriority::ALL.get(number(6)? as usize).copied()?,
    created_at: number(7)?,
    retry_count: number(8)?.min(u32::MAX as u64) as u32,
    max_retries: number(9)?.min(u32::MAX as u64) as u32,
    next_retry_at: number(10),
    status,
    last_error: text(12),
    updated_at: number(13)?,
    lease_until: (status == JobStatus::Processing)
      .then_some(lease_until)
      .flatten(),
    finish_rank: number(15).unwrap_or(0),
    stalls: number(16).unwrap_or(0).min(u32::MAX as u64) as u32,
    lease_token: text(18).map(Arc::from),
  })
}

impl QueueStore for RedisQueue {
  fn config(&self) -> QueueConfig {
    self.config.clone()
  }

  fn set_config(&mut self, config: QueueConfig, now: u64) -> StorageResult<()> {
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

  fn enqueue(&mut self, job: NewJob, now: u64) -> Result<Arc<str>, QueueError> {
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

  fn dequeue(&mut self, now: u64) -> StorageResult<Option<Job>> {
    self.lease(now, "")
  }

  /// One command run for all of them, each under a token of its own
  /// (revoked like any lease whose reply did not come).
  fn dequeue_up_to(&mut self, now: u64, count: usize) -> StorageResult<Vec<Job>> {
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

  fn dequeue_eligible(
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
    let (how, error) = match error {
      None => ("complete", String::new()),
      Some(error) => ("fail", limits::clip(error)),
    };
    self.flag_at(QueueCommand::FinishLeased, now, &[token, id, how, &error])
  }

  /// One command run: the outcome under the lease's token (recorded
  /// before time is advanced, so a lease that ran out unnoticed is still
  /// this worker's), the job read back, and the next job leased under a
  /// new token, revoked like any lease whose reply did not come.
  fn finish_and_take(
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
    let (how, error) = match error {
      None => ("complete", String::new()),
      Some(error) => ("fail", limits::clip(error)),
    };
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

  /// In runs of at most `LIST_BATCH` jobs (each one round trip), so a
  /// listing of any size never holds the server for long; other instances'
  /// changes may land between two runs.
  fn list(&mut self, now: u64, filter: JobFilter<'_>, page: Page) -> StorageResult<Vec<Job>> {
    let status;
    let (kind, value) = match filter {
      JobFilter::All => ("all", ""),
      JobFilter::Status(wanted) => {
        status = (wanted as u8).to_string();
        ("status", status.as_str())
      }
      JobFilter::User(user) => ("user", user),
    };
    let mut jobs = Vec::new();
    // Beyond any set's size, and an integer Lua writes out whole.
    let mut offset = page.offset.min(MAX_RANK);
    let mut wanted = page.limit.unwrap_or(usize::MAX);
    while wanted > 0 {
      let asked = wanted.min(LIST_BATCH);
      let args = [kind, value, &offset.to_string(), &asked.to_string()];
      let reply: Value = self.link.command(
        QueueCommand::List.script(),
        &self.keys,
        &self.script_args(now, &args),
      )?;
      let Value::Array(mut pair) = reply else {
        break;
      };
      let dropped = pair
        .get(1)
        .and_then(reply::text)
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
      if dropped > 0 {
        self.warn_missing(dropped as u64);
      }
      let (batch, items) = self.usable_jobs(now, pair.swap_remove(0))?;
      // A job found gone or set aside left the index it was listed from,
      // so the next run starts after the jobs returned.
      let short = items + dropped < asked;
      offset += batch.len();
      wanted -= batch.len();
      jobs.extend(batch);
      if short {
        break;
      }
    }
    Ok(jobs)
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

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::storage::redis::test_server::{self, TestServer};

  fn job(priority: JobPriority, user: &str) -> NewJob {
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

  fn queue(server: &TestServer, prefix: &str, config: QueueConfig) -> RedisQueue {
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
  fn clear_completed_and_stats() {
    let server = TestServer::start();
    let mut q = queue(&server, "clear", QueueConfig::default());
    let ids: Vec<_> = (0..3)
      .map(|_| q.enqueue(job(JobPriority::Medium, "u"), 0).unwrap())
      .collect();
    q.complete(&ids[0], 1).unwrap();
    q.complete(&ids[1], 1).unwrap();
    assert_eq!(q.clear_completed(2).unwrap(), 2);
    let stats = q.stats(2).unwrap();
    assert_eq!((stats.total, stats.pending, stats.completed), (1, 1, 0));
    assert!(q.release(&ids[2], 3).is_ok_and(|released| !released));
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
