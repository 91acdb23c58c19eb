//! The in-memory job queue. Every state lives in an ordered index, so
//! `dequeue`, `complete`, `fail` and `stats` are O(log n); every status also
//! keeps its jobs in enqueue order, so a page of `getAll` or `getByStatus`
//! costs O(offset + limit).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::ids::JobIds;
use super::job::{Job, JobPriority, JobStatus, Lease, NewJob, QueueConfig, QueueError, QueueStats};
use crate::core::clock::add_ms;
use crate::core::storage::error::StorageResult;
use crate::core::storage::free::free;
use crate::core::storage::traits::{JobFilter, Location, Page, QueueStore};

/// Ready jobs sort highest priority first, then oldest, then by enqueue order.
type ReadyKey = (std::cmp::Reverse<JobPriority>, u64, u64);

pub struct JobQueue {
  config: QueueConfig,
  next_seq: u64,
  ids: JobIds,
  /// Every job by enqueue order.
  jobs: BTreeMap<u64, Job>,
  ready: BTreeSet<ReadyKey>,
  /// Pending jobs waiting for `next_retry_at`.
  delayed: BTreeSet<(u64, u64)>,
  /// Processing jobs by the end of their lease.
  leases: BTreeSet<(u64, u64)>,
  /// Completed and failed jobs in the order they finished: eviction order.
  finished: BTreeSet<(u64, u64)>,
  next_finish_rank: u64,
  /// Every job's sequence number by status, in enqueue order: pages of
  /// `getByStatus`, and the counts.
  by_status: [BTreeSet<u64>; 4],
  /// What the jobs in each status hold (`Job::stored_bytes`), kept as jobs
  /// are indexed and taken out, so the byte bound costs no scan.
  bytes: [usize; 4],
}

impl JobQueue {
  pub fn new(config: QueueConfig) -> Self {
    Self {
      config,
      next_seq: 0,
      ids: JobIds::new(),
      jobs: BTreeMap::new(),
      ready: BTreeSet::new(),
      delayed: BTreeSet::new(),
      leases: BTreeSet::new(),
      finished: BTreeSet::new(),
      next_finish_rank: 0,
      by_status: Default::default(),
      bytes: [0; 4],
    }
  }
}

impl QueueStore for JobQueue {
  fn config(&self) -> QueueConfig {
    self.config.clone()
  }

  /// New bounds apply at once; a lower `max_size` or `max_bytes` evicts
  /// finished jobs but never a pending or processing one.
  fn set_config(&mut self, config: QueueConfig, now: u64) -> StorageResult<()> {
    self.config = config;
    self.advance(now);
    let over = self.jobs.len().saturating_sub(self.config.max_size);
    let over_bytes = self.held_bytes().saturating_sub(self.config.max_bytes);
    self.evict_finished(over, over_bytes);
    Ok(())
  }

  fn enqueue(&mut self, job: NewJob, now: u64) -> Result<Arc<str>, QueueError> {
    job.check(self.config.max_payload_bytes)?;
    self.advance(now);
    let seq = self.next_seq;
    let stored = job.into_job(self.ids.job_id(now, seq).into(), seq, now);
    let job_bytes = stored.check_size(&self.config)?;
    // Refused before anything is evicted: a call that throws changes nothing.
    let over = (self.jobs.len() + 1).saturating_sub(self.config.max_size);
    if over > self.finished.len() {
      return Err(QueueError::Full {
        max_size: self.config.max_size,
      });
    }
    let held = self.held_bytes();
    let over_bytes = (held + job_bytes).saturating_sub(self.config.max_bytes);
    let finished_bytes = self.finished_bytes();
    if over_bytes > finished_bytes {
      return Err(QueueError::FullBytes {
        live_bytes: held - finished_bytes,
        job_bytes,
        max_bytes: self.config.max_bytes,
      });
    }
    self.evict_finished(over, over_bytes);
    self.next_seq += 1;
    let id = stored.id.clone();
    self.jobs.insert(seq, stored);
    self.index(seq, now);
    Ok(id)
  }

  /// `dequeue`, passing over ready jobs `eligible` says no to (a user at
  /// their concurrency limit, say); they keep their place.
  fn dequeue_eligible(
    &mut self,
    now: u64,
    eligible: &dyn Fn(&Job) -> bool,
  ) -> StorageResult<Option<Job>> {
    self.advance(now);
    let Some(&key) = self
      .ready
      .iter()
      .find(|(_, _, seq)| self.jobs.get(seq).is_some_and(eligible))
    else {
      return Ok(None);
    };
    let lease_until = add_ms(now, self.config.lease_ms);
    self.change(key.2, now, |job| job.lease(now, lease_until));
    Ok(self.jobs.get(&key.2).cloned())
  }

  /// Extends a processing job's lease to `now + leaseMs` (a worker still on
  /// it); false when the job is not processing.
  fn renew_lease(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.advance(now);
    self.keep_leased(id, now)
  }

  /// `renew_lease` for a worker that knows the job is still running: the
  /// lease is extended even when it ran out meanwhile (the JavaScript thread
  /// was busy) and nothing has noticed yet, so the running job is not taken
  /// for lost.
  fn keep_leased(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    let lease_until = add_ms(now, self.config.lease_ms);
    Ok(self.change_processing(id, now, |job| job.lease_until = Some(lease_until)))
  }

  /// Hands a processing job back, untried: pending and ready now, its retry
  /// count unchanged (a worker stopping before it could run it to the end).
  fn release(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.advance(now);
    Ok(self.change_processing(id, now, |job| job.release(now)))
  }

  fn finish_leased(
    &mut self,
    id: &str,
    lease: &Lease,
    error: Option<&str>,
    now: u64,
  ) -> StorageResult<bool> {
    self.advance(now);
    let Some(seq) = self.seq_of(id) else {
      return Ok(false);
    };
    if !self.jobs[&seq].is_held_by(lease) {
      return Ok(false);
    }
    let backoff = self.config.backoff.clone();
    self.change(seq, now, |job| job.record_outcome(error, now, &backoff));
    Ok(true)
  }

  fn stalled(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.advance(now);
    let config = self.config.clone();
    Ok(self.change_processing(id, now, |job| job.stall(now, false, &config)))
  }

  /// Marks a pending or processing job completed; false for an unknown or
  /// already finished job.
  fn complete(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.advance(now);
    let Some(seq) = self.live_seq(id) else {
      return Ok(false);
    };
    self.change(seq, now, |job| job.finish(JobStatus::Completed, now));
    Ok(true)
  }

  /// Records a failed attempt: back to pending after a backoff, or failed
  /// for good once `max_retries` attempts have failed.
  fn fail(&mut self, id: &str, error: &str, now: u64) -> StorageResult<bool> {
    self.advance(now);
    let Some(seq) = self.live_seq(id) else {
      return Ok(false);
    };
    let backoff = self.config.backoff.clone();
    self.change(seq, now, |job| job.fail_attempt(error, now, &backoff));
    Ok(true)
  }

  fn stats(&mut self, now: u64) -> StorageResult<QueueStats> {
    self.advance(now);
    Ok(QueueStats {
      total: self.jobs.len(),
      pending: self.by_status[JobStatus::Pending as usize].len(),
      processing: self.by_status[JobStatus::Processing as usize].len(),
      completed: self.by_status[JobStatus::Completed as usize].len(),
      failed: self.by_status[JobStatus::Failed as usize].len(),
      bytes: self.held_bytes(),
    })
  }

  fn ready_count(&mut self, now: u64) -> StorageResult<usize> {
    self.advance(now);
    Ok(self.ready.len())
  }

  fn get(&mut self, id: &str, now: u64) -> StorageResult<Option<Job>> {
    self.advance(now);
    let seq = self.seq_of(id);
    Ok(seq.and_then(|seq| self.jobs.get(&seq).cloned()))
  }

  /// Copies of one page of the jobs that match, in enqueue order:
  /// O(offset + limit) for all jobs or one status; for one user, O(jobs
  /// walked until the page is full).
  fn list(&mut self, now: u64, filter: JobFilter<'_>, page: Page) -> StorageResult<Vec<Job>> {
    self.advance(now);
    let jobs = &self.jobs;
    Ok(match filter {
      JobFilter::All => page.of(jobs.values()).cloned().collect(),
      JobFilter::Status(status) => page
        .of(self.by_status[status as usize].iter())
        .filter_map(|seq| jobs.get(seq).cloned())
        .collect(),
      JobFilter::User(_) => page
        .of(jobs.values().filter(|job| filter.matches(job)))
        .cloned()
        .collect(),
    })
  }

  /// Dead letters back to work: one failed job (`Some(id)`) or every failed
  /// job goes back to `pending`, ready now, with a fresh retry count (its
  /// `lastError` stays, for the record). Returns how many went back.
  fn retry_failed(&mut self, id: Option<&str>, now: u64) -> StorageResult<usize> {
    self.advance(now);
    let seqs: Vec<u64> = match id {
      Some(id) => self.seq_of(id).into_iter().collect(),
      None => self.finished.iter().map(|&(_, seq)| seq).collect(),
    };
    let mut count = 0;
    for seq in seqs {
      if self.jobs.get(&seq).map(|job| job.status) != Some(JobStatus::Failed) {
        continue;
      }
      self.change(seq, now, |job| job.revive(now));
      count += 1;
    }
    Ok(count)
  }

  /// Removes completed jobs (failed ones stay, for inspection); returns how
  /// many went. What goes is freed on another thread. When completed jobs
  /// are most of the queue, the jobs that stay are copied into fresh
  /// indexes and the old ones are freed whole: O(k log k) for the k jobs
  /// that stay; otherwise each completed job is taken out: O(c log n).
  fn clear_completed(&mut self, now: u64) -> StorageResult<usize> {
    self.advance(now);
    let done = std::mem::take(&mut self.by_status[JobStatus::Completed as usize]);
    self.bytes[JobStatus::Completed as usize] = 0;
    let count = done.len();
    let staying = self.jobs.len() - count;
    if staying <= count {
      let jobs = &self.jobs;
      let kept: BTreeMap<u64, Job> = [JobStatus::Pending, JobStatus::Processing, JobStatus::Failed]
        .iter()
        .flat_map(|&status| self.by_status[status as usize].iter())
        .filter_map(|&seq| Some((seq, jobs.get(&seq)?.clone())))
        .collect();
      let finished: BTreeSet<(u64, u64)> = self.by_status[JobStatus::Failed as usize]
        .iter()
        .filter_map(|seq| Some((kept.get(seq)?.finish_rank, *seq)))
        .collect();
      let old = (
        std::mem::replace(&mut self.jobs, kept),
        std::mem::replace(&mut self.finished, finished),
      );
      free((old, done), count);
    } else {
      let mut removed = Vec::with_capacity(count);
      for seq in &done {
        if let Some(job) = self.jobs.remove(seq) {
          self.finished.remove(&(job.finish_rank, *seq));
          removed.push(job);
        }
      }
      free((removed, done), count);
    }
    Ok(count)
  }

  fn location(&self) -> Location<'_> {
    Location::Memory {
      // Never held a job.
      untouched: self.next_seq == 0,
    }
  }
}

impl JobQueue {
  /// Applies `change` to a processing job, re-indexing it; false when the
  /// job is unknown or not processing.
  fn change_processing(&mut self, id: &str, now: u64, change: impl FnOnce(&mut Job)) -> bool {
    let Some(seq) = self.seq_of(id) else {
      return false;
    };
    if self.jobs[&seq].status != JobStatus::Processing {
      return false;
    }
    self.change(seq, now, change);
    true
  }

  /// Applies what time alone changes: leases that have expired (each a
  /// stall and a failed attempt, dated at its deadline, so a lost job's
  /// retry is counted from when it was lost, not from when the queue next
  /// looked), then retry delays that have run out.
  fn advance(&mut self, now: u64) {
    while let Some(&(until, seq)) = self.leases.first() {
      if until >= now {
        break;
      }
      let config = self.config.clone();
      self.change(seq, until, |job| job.stall(until, true, &config));
    }
    while let Some(&(due, seq)) = self.delayed.first() {
      if due > now {
        break;
      }
      self.delayed.pop_first();
      let job = &self.jobs[&seq];
      self.ready.insert(ready_key(job));
    }
  }

  /// The job an id names: decoded from the id itself, then confirmed
  /// against the stored id, so no id index is needed (and none has to grow).
  fn seq_of(&self, id: &str) -> Option<u64> {
    let seq = self.ids.seq_of(id)?;
    let job = self.jobs.get(&seq)?;
    (*job.id == *id).then_some(seq)
  }

  fn live_seq(&self, id: &str) -> Option<u64> {
    let seq = self.seq_of(id)?;
    self.jobs[&seq].is_live().then_some(seq)
  }

  /// Applies `change` to a job, moving it to the index of its new status;
  /// a job that has just finished joins the end of the eviction order.
  fn change(&mut self, seq: u64, now: u64, change: impl FnOnce(&mut Job)) {
    let Some(before) = self.unindex(seq) else {
      return;
    };
    let rank = self.next_finish_rank;
    if let Some(job) = self.jobs.get_mut(&seq) {
      change(job);
      if !job.is_live() && matches!(before, JobStatus::Pending | JobStatus::Processing) {
        job.finish_rank = rank;
        self.next_finish_rank += 1;
      }
    }
    self.index(seq, now);
  }

  /// Puts a job into the index of its status and counts it.
  fn index(&mut self, seq: u64, now: u64) {
    let Some(job) = self.jobs.get(&seq) else {
      return;
    };
    match job.status {
      JobStatus::Pending => match job.next_retry_at {
        Some(due) if due > now => {
          self.delayed.insert((due, seq));
        }
        _ => {
          self.ready.insert(ready_key(job));
        }
      },
      JobStatus::Processing => {
        self.leases.insert((job.lease_until.unwrap_or(now), seq));
      }
      JobStatus::Completed | JobStatus::Failed => {
        self.finished.insert((job.finish_rank, seq));
      }
    }
    self.by_status[job.status as usize].insert(seq);
    self.bytes[job.status as usize] += job.stored_bytes();
  }

  /// Takes a job out of the index of its status; returns that status.
  fn unindex(&mut self, seq: u64) -> Option<JobStatus> {
    let job = self.jobs.get(&seq)?;
    match job.status {
      JobStatus::Pending => {
        if !self.ready.remove(&ready_key(job)) {
          self.delayed.remove(&(job.next_retry_at.unwrap_or(0), seq));
        }
      }
      JobStatus::Processing => {
        self.leases.remove(&(job.lease_until.unwrap_or(0), seq));
      }
      JobStatus::Completed | JobStatus::Failed => {
        self.finished.remove(&(job.finish_rank, seq));
      }
    }
    self.by_status[job.status as usize].remove(&seq);
    self.bytes[job.status as usize] -= job.stored_bytes();
    Some(job.status)
  }

  /// What every held job holds.
  fn held_bytes(&self) -> usize {
    self.bytes.iter().sum()
  }

  /// What the finished jobs hold: all that eviction can free.
  fn finished_bytes(&self) -> usize {
    self.bytes[JobStatus::Completed as usize] + self.bytes[JobStatus::Failed as usize]
  }

  /// Evicts finished jobs in the order they finished until at least
  /// `count` jobs and `bytes` bytes are gone, or none is left.
  fn evict_finished(&mut self, count: usize, bytes: usize) {
    let (mut evicted, mut freed) = (0, 0);
    while evicted < count || freed < bytes {
      let Some((_, seq)) = self.finished.pop_first() else {
        return;
      };
      if let Some(job) = self.jobs.remove(&seq) {
        let held = job.stored_bytes();
        self.by_status[job.status as usize].remove(&seq);
        self.bytes[job.status as usize] -= held;
        freed += held;
      }
      evicted += 1;
    }
  }
}

fn ready_key(job: &Job) -> ReadyKey {
  (std::cmp::Reverse(job.priority), job.created_at, job.seq)
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::queue::job::JobType;

  const MIN: u64 = 60_000;

  fn job(priority: JobPriority, user: &str) -> NewJob {
    NewJob {
      job_type: JobType::Analytics,
      operation: "op".into(),
      payload: Some(Arc::from("{}")),
      user_id: user.into(),
      priority,
      retry_count: 0,
      max_retries: 3,
      next_retry_at: None,
    }
  }

  fn queue() -> JobQueue {
    JobQueue::new(QueueConfig::default())
  }

  #[test]
  fn ids_have_the_contract_shape_and_are_unique() {
    let mut q = queue();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1_000 {
      let id = q
        .enqueue(job(JobPriority::Low, "u"), 1_700_000_000_000)
        .unwrap();
      let rest = id.strip_prefix("job_1700000000000_").expect("prefix");
      assert_eq!(rest.len(), 9);
      assert!(rest
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
      assert!(seen.insert(id));
    }
  }

  #[test]
  fn ids_decode_back_to_their_job_and_nothing_else() {
    let ids = JobIds::new();
    for seq in (0..5_000).chain([(1 << 46) - 1, 123_456_789_012]) {
      let id = ids.job_id(42, seq);
      assert_eq!(ids.seq_of(&id), Some(seq), "{id}");
    }
    assert_eq!(ids.seq_of("job_1_zzzzzzzzz"), None, "beyond 46 bits");
    assert_eq!(ids.seq_of("job_1_ABCDEFGHI"), None);
    assert_eq!(ids.seq_of("nope"), None);
    let mut q = queue();
    let id = q.enqueue(job(JobPriority::Low, "u"), 7).unwrap();
    let forged = id.replacen("job_7_", "job_8_", 1);
    assert!(
      q.get(&forged, 7).unwrap().is_none(),
      "the whole id must match"
    );
    assert!(q.get(&id, 7).unwrap().is_some());
  }

  #[test]
  fn priority_then_age_then_enqueue_order() {
    let mut q = queue();
    let low = q.enqueue(job(JobPriority::Low, "u"), 1).unwrap();
    let med1 = q.enqueue(job(JobPriority::Medium, "u"), 2).unwrap();
    let high = q.enqueue(job(JobPriority::High, "u"), 3).unwrap();
    let med2 = q.enqueue(job(JobPriority::Medium, "u"), 2).unwrap();
    let order: Vec<Arc<str>> =
      std::iter::from_fn(|| q.dequeue(10).unwrap().map(|j| j.id)).collect();
    assert_eq!(order, vec![high, med1, med2, low]);
  }

  #[test]
  fn dequeue_leases_and_counts() {
    let mut q = queue();
    let id = q.enqueue(job(JobPriority::Medium, "u"), 0).unwrap();
    let taken = q.dequeue(5).unwrap().unwrap();
    assert_eq!(
      (taken.id.clone(), taken.status),
      (id.clone(), JobStatus::Processing)
    );
    assert!(q.dequeue(5).unwrap().is_none());
    assert_eq!(
      q.stats(5).unwrap(),
      QueueStats {
        total: 1,
        processing: 1,
        bytes: taken.stored_bytes(),
        ..Default::default()
      }
    );
    assert!(q.complete(&id, 6).unwrap());
    assert!(!q.complete(&id, 7).unwrap(), "finished jobs are left alone");
    assert_eq!(q.stats(7).unwrap().completed, 1);
  }

  #[test]
  fn backoff_schedule() {
    let mut q = queue();
    let mut spec = job(JobPriority::High, "u");
    spec.max_retries = 10;
    let id = q.enqueue(spec, 0).unwrap();
    let mut now = 0;
    for (attempt, delay) in [
      (1, MIN),
      (2, 5 * MIN),
      (3, 15 * MIN),
      (4, 30 * MIN),
      (5, 30 * MIN),
    ] {
      assert_eq!(q.dequeue(now).unwrap().unwrap().id, id);
      assert!(q.fail(&id, "boom", now).unwrap());
      let stored = q.get(&id, now).unwrap().unwrap();
      assert_eq!(stored.retry_count, attempt);
      assert_eq!(stored.status, JobStatus::Pending);
      assert_eq!(stored.next_retry_at, Some(now + delay));
      assert_eq!(stored.last_error.as_deref(), Some("boom"));
      assert!(
        q.dequeue(now + delay - 1).unwrap().is_none(),
        "not ready before its time"
      );
      now += delay;
    }
  }

  #[test]
  fn a_custom_backoff_schedule_repeats_its_last_delay() {
    use super::super::job::Backoff;
    assert_eq!(Backoff::new(vec![]), None);
    let mut q = JobQueue::new(QueueConfig {
      backoff: Backoff::new(vec![10, 0, 25]).unwrap(),
      ..Default::default()
    });
    let mut spec = job(JobPriority::High, "u");
    spec.max_retries = 10;
    let id = q.enqueue(spec, 0).unwrap();
    for delay in [10, 0, 25, 25] {
      assert!(q.fail(&id, "boom", 100).unwrap());
      assert_eq!(
        q.get(&id, 100).unwrap().unwrap().next_retry_at,
        Some(100 + delay)
      );
    }
  }

  #[test]
  fn fails_for_good_at_max_retries() {
    let mut q = queue();
    let mut spec = job(JobPriority::High, "u");
    spec.max_retries = 2;
    let id = q.enqueue(spec, 0).unwrap();
    q.dequeue(0).unwrap();
    q.fail(&id, "one", 0).unwrap();
    q.dequeue(MIN).unwrap();
    q.fail(&id, "two", MIN).unwrap();
    let stored = q.get(&id, MIN).unwrap().unwrap();
    assert_eq!((stored.status, stored.retry_count), (JobStatus::Failed, 2));
    assert!(!q.fail(&id, "three", MIN).unwrap());
    let mut zero = job(JobPriority::Low, "u");
    zero.max_retries = 0;
    let id = q.enqueue(zero, 0).unwrap();
    q.fail(&id, "x", 0).unwrap();
    assert_eq!(q.get(&id, 0).unwrap().unwrap().status, JobStatus::Failed);
  }

  #[test]
  fn unknown_ids_are_ignored() {
    let mut q = queue();
    assert!(!q.complete("job_0_000000000", 0).unwrap());
    assert!(!q.fail("nope", "x", 0).unwrap());
  }

  #[test]
  fn expired_lease_is_a_failed_attempt() {
    let mut q = JobQueue::new(QueueConfig {
      lease_ms: 100,
      ..Default::default()
    });
    let id = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    q.dequeue(0).unwrap().unwrap();
    assert!(
      q.dequeue(100).unwrap().is_none(),
      "lease still held at its last instant"
    );
    let stored = q.get(&id, 101).unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Pending);
    assert_eq!(stored.retry_count, 1);
    assert_eq!(
      stored.last_error.as_deref(),
      Some(super::super::job::LEASE_EXPIRED)
    );
    assert_eq!(
      stored.next_retry_at,
      Some(100 + MIN),
      "counted from the deadline"
    );
    assert_eq!(q.dequeue(100 + MIN).unwrap().unwrap().id, id);
  }

  #[test]
  fn a_lease_noticed_late_is_retried_from_its_deadline() {
    let mut q = JobQueue::new(QueueConfig {
      lease_ms: 10,
      ..Default::default()
    });
    let id = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    q.dequeue(0).unwrap().unwrap();
    let taken = q.dequeue(60 * MIN).unwrap().expect("ready again long ago");
    assert_eq!(taken.id, id);
    assert_eq!(taken.retry_count, 1);
    assert_eq!(taken.next_retry_at, Some(10 + MIN));
  }

  #[test]
  fn full_queue_evicts_finished_jobs_only() {
    let mut q = JobQueue::new(QueueConfig {
      max_size: 3,
      ..Default::default()
    });
    let a = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    let b = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    let c = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    q.complete(&b, 1).unwrap();
    q.complete(&a, 2).unwrap();
    let d = q.enqueue(job(JobPriority::Low, "u"), 3).unwrap();
    assert!(q.get(&b, 3).unwrap().is_none(), "first finished goes first");
    assert!(q.get(&a, 3).unwrap().is_some());
    let e = q.enqueue(job(JobPriority::Low, "u"), 4).unwrap();
    assert!(q.get(&a, 4).unwrap().is_none());
    assert_eq!(
      q.enqueue(job(JobPriority::Low, "u"), 5),
      Err(QueueError::Full { max_size: 3 })
    );
    for id in [c, d, e] {
      assert_eq!(q.get(&id, 5).unwrap().unwrap().status, JobStatus::Pending);
    }
  }

  #[test]
  fn payload_bound() {
    let mut q = JobQueue::new(QueueConfig {
      max_payload_bytes: 4,
      ..Default::default()
    });
    let mut spec = job(JobPriority::Low, "u");
    spec.payload = Some(Arc::from("12345"));
    assert_eq!(
      q.enqueue(spec, 0),
      Err(QueueError::PayloadTooLarge {
        bytes: 5,
        max_bytes: 4
      })
    );
    assert_eq!(q.stats(0).unwrap().total, 0);
  }

  #[test]
  fn future_retry_time_at_enqueue_is_respected() {
    let mut q = queue();
    let mut spec = job(JobPriority::High, "u");
    spec.next_retry_at = Some(1_000);
    let later = q.enqueue(spec, 0).unwrap();
    let now_job = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    assert_eq!(q.dequeue(10).unwrap().unwrap().id, now_job);
    assert!(q.dequeue(999).unwrap().is_none());
    assert_eq!(q.dequeue(1_000).unwrap().unwrap().id, later);
  }

  #[test]
  fn clear_completed_keeps_failed_and_live() {
    let mut q = queue();
    let done = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    let mut spec = job(JobPriority::Low, "u");
    spec.max_retries = 1;
    let failed = q.enqueue(spec, 0).unwrap();
    let live = q.enqueue(job(JobPriority::Low, "v"), 0).unwrap();
    q.complete(&done, 0).unwrap();
    q.fail(&failed, "x", 0).unwrap();
    assert_eq!(q.clear_completed(0).unwrap(), 1);
    let ids: Vec<Arc<str>> = q
      .list(0, JobFilter::All, Page::ALL)
      .unwrap()
      .into_iter()
      .map(|j| j.id)
      .collect();
    assert_eq!(ids, vec![failed, live.clone()]);
    let mine: Vec<Arc<str>> = q
      .list(0, JobFilter::User("v"), Page::ALL)
      .unwrap()
      .into_iter()
      .map(|j| j.id)
      .collect();
    assert_eq!(mine, vec![live]);
    assert_eq!(q.stats(0).unwrap().total, 2);
  }

  fn ids_of(jobs: Vec<Job>) -> Vec<Arc<str>> {
    jobs.into_iter().map(|j| j.id).collect()
  }

  #[test]
  fn pages_are_slices_in_enqueue_order() {
    let mut q = queue();
    let ids: Vec<Arc<str>> = (0..10)
      .map(|i| {
        let user = if i % 2 == 0 { "even" } else { "odd" };
        q.enqueue(job(JobPriority::Low, user), 0).unwrap()
      })
      .collect();
    for id in &ids[..4] {
      q.complete(id, 1).unwrap();
    }
    let page = |offset, limit| Page { offset, limit };
    assert_eq!(
      ids_of(q.list(1, JobFilter::All, page(3, Some(4))).unwrap()),
      ids[3..7]
    );
    assert_eq!(
      ids_of(q.list(1, JobFilter::All, page(8, None)).unwrap()),
      ids[8..]
    );
    assert!(q
      .list(1, JobFilter::All, page(20, Some(5)))
      .unwrap()
      .is_empty());
    assert!(q
      .list(1, JobFilter::All, page(0, Some(0)))
      .unwrap()
      .is_empty());
    let pending = JobFilter::Status(JobStatus::Pending);
    assert_eq!(
      ids_of(q.list(1, pending, page(1, Some(2))).unwrap()),
      ids[5..7]
    );
    let done = JobFilter::Status(JobStatus::Completed);
    assert_eq!(ids_of(q.list(1, done, Page::ALL).unwrap()), ids[..4]);
    let odd = JobFilter::User("odd");
    assert_eq!(
      ids_of(q.list(1, odd, page(1, Some(2))).unwrap()),
      vec![ids[3].clone(), ids[5].clone()]
    );
  }

  #[test]
  fn clearing_few_or_most_completed_jobs_keeps_the_indexes_right() {
    for completed in [2usize, 90] {
      let mut q = queue();
      let ids: Vec<Arc<str>> = (0..100)
        .map(|_| q.enqueue(job(JobPriority::Low, "u"), 0).unwrap())
        .collect();
      let mut spec = job(JobPriority::Low, "u");
      spec.max_retries = 0;
      let failed = q.enqueue(spec, 0).unwrap();
      q.fail(&failed, "x", 1).unwrap();
      for id in &ids[..completed] {
        q.complete(id, 1).unwrap();
      }
      assert_eq!(q.clear_completed(2).unwrap(), completed);
      let stats = q.stats(2).unwrap();
      assert_eq!(
        (stats.total, stats.completed, stats.failed, stats.pending),
        (101 - completed, 0, 1, 100 - completed)
      );
      let all = ids_of(q.list(2, JobFilter::All, Page::ALL).unwrap());
      let mut expected = ids[completed..].to_vec();
      expected.push(failed.clone());
      assert_eq!(all, expected);
      // The failed job is still first in the eviction order.
      q.set_config(
        QueueConfig {
          max_size: 100 - completed,
          ..q.config()
        },
        3,
      )
      .unwrap();
      assert!(q.get(&failed, 3).unwrap().is_none());
      assert_eq!(q.retry_failed(None, 3).unwrap(), 0);
    }
  }

  #[test]
  fn failed_jobs_can_be_retried_with_a_fresh_count() {
    let mut q = queue();
    let mut spec = job(JobPriority::High, "u");
    spec.max_retries = 1;
    let a = q.enqueue(spec.clone(), 0).unwrap();
    let b = q.enqueue(spec, 0).unwrap();
    let live = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    q.fail(&a, "x", 1).unwrap();
    q.fail(&b, "y", 1).unwrap();
    assert_eq!(q.retry_failed(Some(&a), 2).unwrap(), 1);
    assert_eq!(
      q.retry_failed(Some(&live), 2).unwrap(),
      0,
      "only failed jobs"
    );
    let retried = q.get(&a, 2).unwrap().unwrap();
    assert_eq!(
      (retried.status, retried.retry_count, retried.next_retry_at),
      (JobStatus::Pending, 0, None)
    );
    assert_eq!(retried.last_error.as_deref(), Some("x"));
    assert_eq!(q.dequeue(2).unwrap().unwrap().id, a);
    assert_eq!(q.retry_failed(None, 3).unwrap(), 1);
    assert_eq!(q.stats(3).unwrap().failed, 0);
    assert_eq!(q.dequeue(3).unwrap().unwrap().id, b);
  }

  #[test]
  fn eligible_dequeue_passes_over_and_keeps_order() {
    let mut q = queue();
    let alice1 = q.enqueue(job(JobPriority::High, "alice"), 0).unwrap();
    let alice2 = q.enqueue(job(JobPriority::High, "alice"), 0).unwrap();
    let bob = q.enqueue(job(JobPriority::Low, "bob"), 0).unwrap();
    assert_eq!(
      q.dequeue_eligible(1, &|j| &*j.user_id != "alice")
        .unwrap()
        .unwrap()
        .id,
      bob
    );
    assert_eq!(q.dequeue(1).unwrap().unwrap().id, alice1);
    assert_eq!(q.dequeue(1).unwrap().unwrap().id, alice2);
    assert!(q.dequeue_eligible(1, &|_| false).unwrap().is_none());
  }

  #[test]
  fn renewing_a_lease_keeps_a_long_job_from_expiring() {
    let mut q = JobQueue::new(QueueConfig {
      lease_ms: 100,
      ..Default::default()
    });
    let id = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    q.dequeue(0).unwrap();
    assert!(q.renew_lease(&id, 90).unwrap());
    assert_eq!(
      q.get(&id, 150).unwrap().unwrap().status,
      JobStatus::Processing
    );
    assert_eq!(
      q.get(&id, 191).unwrap().unwrap().status,
      JobStatus::Pending,
      "expires without renewal"
    );
    assert!(!q.renew_lease(&id, 191).unwrap(), "only processing jobs");
  }

  #[test]
  fn a_running_job_can_be_kept_leased_after_its_lease_ran_out() {
    let mut q = JobQueue::new(QueueConfig {
      lease_ms: 100,
      ..Default::default()
    });
    let id = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    q.dequeue(0).unwrap();
    assert!(
      q.keep_leased(&id, 500).unwrap(),
      "nothing noticed the expiry yet"
    );
    assert_eq!(
      q.get(&id, 550).unwrap().unwrap().status,
      JobStatus::Processing
    );
  }

  #[test]
  fn released_jobs_are_ready_again_untried() {
    let mut q = queue();
    let id = q.enqueue(job(JobPriority::Low, "u"), 0).unwrap();
    q.dequeue(0).unwrap();
    assert!(q.release(&id, 5).unwrap());
    let job = q.get(&id, 5).unwrap().unwrap();
    assert_eq!((job.status, job.retry_count), (JobStatus::Pending, 0));
    assert_eq!(q.dequeue(5).unwrap().unwrap().id, id);
    assert!(q.complete(&id, 6).unwrap());
    assert!(!q.release(&id, 7).unwrap());
  }

  #[test]
  fn lowering_max_size_never_drops_live_jobs() {
    let mut q = queue();
    let ids: Vec<Arc<str>> = (0..5)
      .map(|_| q.enqueue(job(JobPriority::Low, "u"), 0).unwrap())
      .collect();
    q.complete(&ids[0], 1).unwrap();
    q.set_config(
      QueueConfig {
        max_size: 2,
        ..q.config()
      },
      2,
    )
    .unwrap();
    let stats = q.stats(2).unwrap();
    assert_eq!((stats.total, stats.pending, stats.completed), (4, 4, 0));
  }

  #[test]
  fn many_jobs_keep_counts_consistent() {
    let mut q = JobQueue::new(QueueConfig {
      max_size: 100_000,
      lease_ms: 10,
      ..Default::default()
    });
    let priorities = [JobPriority::Low, JobPriority::Medium, JobPriority::High];
    for i in 0..3_000u64 {
      q.enqueue(job(priorities[(i % 3) as usize], "u"), i)
        .unwrap();
    }
    let mut now = 3_000;
    let mut last_rank = JobPriority::High;
    for i in 0..1_000 {
      let taken = q.dequeue(now).unwrap().unwrap();
      assert!(taken.priority <= last_rank);
      last_rank = taken.priority;
      match i % 3 {
        0 => assert!(q.complete(&taken.id, now).unwrap()),
        1 => assert!(q.fail(&taken.id, "x", now).unwrap()),
        _ => {}
      }
      now += 1;
    }
    let stats = q.stats(now + 100).unwrap();
    assert_eq!(
      stats.pending + stats.processing + stats.completed + stats.failed,
      stats.total
    );
    assert_eq!(stats.total, 3_000);
    assert_eq!(stats.processing, 0, "every lease has expired");
  }
}
