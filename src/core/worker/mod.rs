//! A background worker's bookkeeping: which jobs it may take now (its
//! concurrency, each user's, and a drain's job budget), which are running,
//! and whether it is stopping. Its decisions are here too, each in a module
//! of its own: when `process()` looks at the queue (`schedule`), when a
//! drain stops (`drain`), what a job's end is recorded as and what follows
//! it (`ends`), how long a store call is tried again (`patience`). The
//! binding runs the handlers and the timers, and does what these say.

use std::collections::HashMap;
use std::sync::Arc;

use super::queue::{Job, Lease};
use super::storage::{Finished, QueueStore, StorageResult};

pub mod drain;
pub mod ends;
pub mod patience;
pub mod schedule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
  /// Jobs running at once, at most.
  pub concurrency: usize,
  /// Jobs of one user running at once, at most.
  pub per_user_concurrency: Option<usize>,
  /// Jobs taken in all, at most (a drain's `maxJobs`); `None`: no limit.
  pub max_jobs: Option<u64>,
}

#[derive(Debug)]
struct Running {
  user: Arc<str>,
  lease: Lease,
}

#[derive(Debug, Default)]
pub struct Worker {
  config: Option<WorkerConfig>,
  /// Running jobs: id → its user and the lease taken on it.
  running: HashMap<Arc<str>, Running>,
  per_user: HashMap<Arc<str>, usize>,
  /// Jobs taken since the worker started.
  taken: u64,
  stopping: bool,
  /// Until when every running job's lease is known to be held (the
  /// earliest end among them), so they are kept only when due.
  held_until: u64,
  /// When a job may be next, as the store said when it last found nothing
  /// ready to take.
  due: Option<u64>,
}

/// What `Worker::record` did.
#[derive(Debug, Default)]
pub struct Recorded {
  /// The job as it is now, whoever recorded its outcome; `None` when it
  /// was not running here.
  pub job: Option<Job>,
  /// The next job, taken in the same step and running here now.
  pub next: Option<Job>,
  /// Whether a next job was asked for (`None` then: none was ready).
  pub asked: bool,
}

impl Worker {
  pub fn new(config: WorkerConfig) -> Self {
    Self {
      config: Some(config),
      ..Self::default()
    }
  }

  pub fn running(&self) -> usize {
    self.running.len()
  }

  pub fn running_ids(&self) -> Vec<Arc<str>> {
    self.running.keys().cloned().collect()
  }

  pub fn is_stopping(&self) -> bool {
    self.stopping
  }

  /// No new jobs from now on.
  pub fn stop(&mut self) {
    self.stopping = true;
  }

  /// Jobs taken since the worker started.
  pub fn taken(&self) -> u64 {
    self.taken
  }

  /// When a job may be next, as the store said when this worker last
  /// found nothing ready.
  pub fn due(&self) -> Option<u64> {
    self.due
  }

  /// Whether every slot is taken (nothing more can be taken now).
  pub fn is_full(&self) -> bool {
    self
      .config
      .is_some_and(|config| self.running.len() >= config.concurrency)
  }

  /// Whether the job budget (`max_jobs`) is used up.
  pub fn spent(&self) -> bool {
    self
      .config
      .and_then(|config| config.max_jobs)
      .is_some_and(|max| self.taken >= max)
  }

  /// Takes as many ready jobs as the limits allow, best first; each is now
  /// `processing` under a lease and counted as running. An empty list with
  /// nothing running, not stopping and the budget not spent means no job is
  /// due. A store that cannot be reached is an error only when nothing was
  /// taken before it failed (the jobs taken are running and must be run).
  pub fn take(&mut self, queue: &mut dyn QueueStore, now: u64) -> StorageResult<Vec<Job>> {
    let Some(config) = self.config else {
      return Ok(Vec::new());
    };
    self.keep_leased(queue, now);
    self.due = None;
    let mut taken = Vec::new();
    if config.per_user_concurrency.is_none() && !self.stopping {
      // Without a per-user limit every ready job will do: the free slots
      // are filled in one step (on Redis, one script run).
      let free = config.concurrency.saturating_sub(self.running.len());
      let budget = config
        .max_jobs
        .map_or(u64::MAX, |max| max.saturating_sub(self.taken));
      let want = free.min(usize::try_from(budget).unwrap_or(usize::MAX));
      if want == 0 {
        return Ok(taken);
      }
      let jobs = queue.dequeue_up_to(now, want)?;
      if jobs.len() < want {
        self.due = queue.next_due();
      }
      for job in jobs {
        self.start(&job, queue.config().lease_ms, now);
        taken.push(job);
      }
      return Ok(taken);
    }
    while !self.stopping && !self.spent() && self.running.len() < config.concurrency {
      let per_user = &self.per_user;
      // A job of a user at their limit waits; the others go ahead.
      let limit = config.per_user_concurrency.unwrap_or(usize::MAX);
      let job = queue.dequeue_eligible(now, &|job| {
        per_user.get(&job.user_id).copied().unwrap_or(0) < limit
      });
      let job = match job {
        Ok(Some(job)) => job,
        Ok(None) => {
          self.due = queue.next_due();
          break;
        }
        Err(error) if taken.is_empty() => return Err(error),
        Err(_) => break,
      };
      self.start(&job, queue.config().lease_ms, now);
      taken.push(job);
    }
    Ok(taken)
  }

  /// Counts a job just leased as running here.
  fn start(&mut self, job: &Job, lease_ms: u64, now: u64) {
    let lease_end = now.saturating_add(lease_ms);
    self.held_until = match self.running.is_empty() {
      true => lease_end,
      false => self.held_until.min(lease_end),
    };
    *self.per_user.entry(job.user_id.clone()).or_insert(0) += 1;
    let running = Running {
      user: job.user_id.clone(),
      lease: job.lease_held(),
    };
    self.running.insert(job.id.clone(), running);
    self.taken += 1;
  }

  /// Whether a job may be taken in the step that records another's
  /// outcome: a slot is free then, and no per-user limit asks for a look
  /// at the jobs first.
  fn may_take_next(&self) -> bool {
    self
      .config
      .is_some_and(|config| config.per_user_concurrency.is_none())
      && !self.stopping
      && !self.spent()
  }

  /// This worker is alive and on its running jobs: their leases must not
  /// run out under it just because the JavaScript thread was busy. Called
  /// before anything else this worker does with the queue; it asks the
  /// store only once a third of the shortest lease is gone (the renewal
  /// timer comes every half lease), not at every step.
  pub fn keep_leased(&mut self, queue: &mut dyn QueueStore, now: u64) {
    if self.running.is_empty() {
      return;
    }
    let lease_ms = queue.config().lease_ms;
    if now.saturating_add(lease_ms - lease_ms / 3) < self.held_until {
      return;
    }
    let held: Vec<(&str, &Lease)> = self
      .running
      .iter()
      .map(|(id, running)| (&**id, &running.lease))
      .collect();
    // A renewal that fails is tried again at the next step or renewal;
    // the lease outlives several of them.
    if queue.keep_all_leased(&held, now).is_ok() {
      self.held_until = now.saturating_add(lease_ms);
    }
  }

  /// Records the outcome of job `id`, run here (completed when `error` is
  /// `None`, else a failed attempt) while the job is under the lease this
  /// worker took still, and reads the job back; `None` when it was not
  /// running here. A job whose lease ran out meanwhile (it went back, or
  /// on to another worker), or whose handler recorded its outcome itself,
  /// is left as it is: this run's outcome changes nothing, and what the job
  /// reads is what was recorded. An error leaves the job running here, to
  /// be recorded by a later try. When `may_take` and the limits allow, the
  /// next job is taken in the same step (on Redis, one round trip for
  /// both) and runs here.
  pub fn record(
    &mut self,
    queue: &mut dyn QueueStore,
    id: &str,
    error: Option<&str>,
    may_take: bool,
    now: u64,
  ) -> StorageResult<Recorded> {
    let Some((lease, take_next)) = self.to_record(queue, id, may_take, now) else {
      return Ok(Recorded::default());
    };
    let finished = queue.finish_and_take(id, &lease, error, take_next, now)?;
    let lease_ms = queue.config().lease_ms;
    Ok(self.recorded(id, finished, take_next, lease_ms, now))
  }

  /// `record`'s first part, for a caller that makes the store call
  /// without this worker's lock (a store on the network, through its
  /// detached copy): the lease job `id` runs under here, and whether the
  /// next job is to be taken in the same step; `None` when the job is not
  /// running here.
  pub fn to_record(
    &mut self,
    queue: &mut dyn QueueStore,
    id: &str,
    may_take: bool,
    now: u64,
  ) -> Option<(Lease, bool)> {
    self.keep_leased(queue, now);
    let lease = self.running.get(id)?.lease.clone();
    let take_next = may_take && self.may_take_next();
    if take_next {
      self.due = None;
    }
    Some((lease, take_next))
  }

  /// `record`'s last part: the job is done with here, and the next one,
  /// if the store leased one, runs here (leased for `lease_ms` at `now`).
  pub fn recorded(
    &mut self,
    id: &str,
    finished: Finished,
    take_next: bool,
    lease_ms: u64,
    now: u64,
  ) -> Recorded {
    self.finish(id);
    match &finished.next {
      Some(next) => self.start(next, lease_ms, now),
      None if take_next => self.due = finished.due,
      None => {}
    }
    Recorded {
      job: finished.job,
      next: finished.next,
      asked: take_next,
    }
  }

  /// Whether the job `id` is running here.
  pub fn is_running(&self, id: &str) -> bool {
    self.running.contains_key(id)
  }

  /// A running job is done (whatever its outcome); false when it was not
  /// running here.
  pub fn finish(&mut self, id: &str) -> bool {
    let Some(Running { user, .. }) = self.running.remove(id) else {
      return false;
    };
    if let Some(count) = self.per_user.get_mut(&user) {
      *count -= 1;
      if *count == 0 {
        self.per_user.remove(&user);
      }
    }
    true
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::queue::{JobPriority, JobType, NewJob, QueueConfig};
  use crate::core::storage::{open_queue, Backend};

  /// A memory queue and a queue in a new file.
  fn queues() -> Vec<Box<dyn QueueStore>> {
    let dir = crate::core::storage::sqlite::test_dir("worker");
    let file = Backend::File(&dir.join("q.db"), Default::default());
    [Backend::Memory, file]
      .into_iter()
      .map(|backend| open_queue(backend, QueueConfig::default()).unwrap())
      .collect()
  }

  /// A new job of `user` (the decisions' modules' tests use it too).
  pub(super) fn job(user: &str) -> NewJob {
    NewJob {
      job_type: JobType::Ai,
      operation: "op".into(),
      payload: None,
      user_id: user.into(),
      priority: JobPriority::Medium,
      retry_count: 0,
      max_retries: 3,
      next_retry_at: None,
    }
  }

  /// A queue for each store, holding one job of each of `users` (in order).
  fn queues_with(users: &[&str]) -> Vec<Box<dyn QueueStore>> {
    let mut queues = queues();
    for queue in &mut queues {
      for user in users {
        queue.enqueue(job(user), 0).unwrap();
      }
    }
    queues
  }

  fn worker(
    concurrency: usize,
    per_user_concurrency: Option<usize>,
    max_jobs: Option<u64>,
  ) -> Worker {
    Worker::new(WorkerConfig {
      concurrency,
      per_user_concurrency,
      max_jobs,
    })
  }

  #[test]
  fn takes_up_to_its_concurrency() {
    for mut queue in queues_with(&["u"; 5]) {
      let mut worker = worker(2, None, None);
      let first = worker.take(&mut *queue, 1).unwrap();
      assert_eq!(first.len(), 2);
      assert!(worker.take(&mut *queue, 1).unwrap().is_empty());
      assert!(worker.finish(&first[0].id));
      assert!(!worker.finish(&first[0].id));
      assert_eq!(worker.take(&mut *queue, 1).unwrap().len(), 1);
      assert_eq!(worker.running(), 2);
    }
  }

  #[test]
  fn per_user_limits_let_other_users_through() {
    for mut queue in queues_with(&["a", "a", "a", "b"]) {
      let mut worker = worker(10, Some(1), None);
      let taken = worker.take(&mut *queue, 1).unwrap();
      let users: Vec<&str> = taken.iter().map(|j| &*j.user_id).collect();
      assert_eq!(users, vec!["a", "b"]);
      worker.finish(&taken[0].id);
      assert_eq!(&*worker.take(&mut *queue, 1).unwrap()[0].user_id, "a");
    }
  }

  #[test]
  fn a_stopping_worker_takes_nothing() {
    for mut queue in queues_with(&["u"]) {
      let mut worker = worker(1, None, None);
      worker.stop();
      assert!(worker.take(&mut *queue, 1).unwrap().is_empty());
      assert!(worker.is_stopping());
    }
  }

  #[test]
  fn a_job_budget_ends_the_taking() {
    for mut queue in queues_with(&["u"; 5]) {
      let mut worker = worker(2, None, Some(3));
      let first = worker.take(&mut *queue, 1).unwrap();
      assert_eq!(first.len(), 2);
      assert!(!worker.spent());
      worker.finish(&first[0].id);
      worker.finish(&first[1].id);
      assert_eq!(
        worker.take(&mut *queue, 1).unwrap().len(),
        1,
        "one left in the budget"
      );
      assert!(worker.spent());
      assert_eq!(worker.taken(), 3);
      assert!(worker.take(&mut *queue, 1).unwrap().is_empty());
      assert_eq!(queue.ready_count(1).unwrap(), 2, "the rest stay ready");
    }
  }
}
