//! The store traits: what the cache, the queue and the failure history ask
//! of wherever their state is kept. Implemented in memory by the core
//! structures themselves (`cache/memory.rs`, `queue/memory.rs`,
//! `failures/memory.rs`, which cannot fail), in SQLite (`sqlite/`) and on
//! a Redis server (`redis/`).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::error::StorageResult;
use crate::core::cache::entry::{CacheConfig, CacheError, CacheHit, CacheStats, EntryText};
use crate::core::cooldown::Cooldown;
use crate::core::failures::record::{FailureConfig, FailureRecord, ServiceStats};
use crate::core::queue::job::{Job, JobStatus, Lease, NewJob, QueueConfig, QueueError, QueueStats};
use crate::core::shared::records::{Change, Key, Kind};

/// A slice of a listing: skip `offset` items, then take at most `limit`
/// (all the rest when `None`). Listings stay in their usual order (enqueue
/// order for jobs, oldest first for failures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
  pub offset: usize,
  pub limit: Option<usize>,
}

impl Page {
  /// Everything.
  pub const ALL: Page = Page {
    offset: 0,
    limit: None,
  };

  /// The page of `items`: walks only `offset + limit` of them.
  pub fn of<I: Iterator>(self, items: I) -> std::iter::Take<std::iter::Skip<I>> {
    items
      .skip(self.offset)
      .take(self.limit.unwrap_or(usize::MAX))
  }

  /// `LIMIT ?` (`-1`: no limit) and `OFFSET ?` for SQLite.
  pub fn sql(self) -> (i64, i64) {
    let clamp = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    (self.limit.map_or(-1, clamp), clamp(self.offset))
  }
}

/// Which jobs a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFilter<'a> {
  All,
  Status(JobStatus),
  User(&'a str),
}

impl JobFilter<'_> {
  pub fn matches(&self, job: &Job) -> bool {
    match self {
      JobFilter::All => true,
      JobFilter::Status(status) => job.status == *status,
      JobFilter::User(user) => *job.user_id == **user,
    }
  }
}

/// What a store is kept in, for `configure` to tell whether a new storage
/// path would replace anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location<'a> {
  /// In memory; `untouched` while it has never held or counted anything.
  Memory {
    untouched: bool,
  },
  File(&'a Path),
  /// On a Redis server: its URL, the password hidden.
  Redis(&'a str),
}

pub trait CacheStore: Send {
  fn config(&self) -> CacheConfig;
  /// New bounds apply at once: whatever no longer fits is evicted, stale
  /// entries first, then least recently used.
  fn set_config(&mut self, config: CacheConfig, now: u64) -> StorageResult<()>;
  /// Stores a response's JSON text; `ttl_ms` of `None` or `0` means the
  /// default TTL.
  fn set_text(
    &mut self,
    entry: EntryText,
    model_id: &str,
    ttl_ms: Option<u64>,
    now: u64,
  ) -> Result<(), CacheError>;
  /// A live entry, or with `allow_stale` one kept by stale-if-error too;
  /// `None` otherwise. Counted as a hit or a miss.
  fn lookup(
    &mut self,
    prompt: &str,
    model_id: &str,
    now: u64,
    allow_stale: bool,
  ) -> StorageResult<Option<CacheHit>>;
  /// A live entry, or `None` (counted as a hit or a miss).
  fn get(&mut self, prompt: &str, model_id: &str, now: u64) -> StorageResult<Option<CacheHit>> {
    self.lookup(prompt, model_id, now, false)
  }
  /// A live entry, or a stale one kept by stale-if-error.
  fn get_for_fallback(
    &mut self,
    prompt: &str,
    model_id: &str,
    now: u64,
  ) -> StorageResult<Option<CacheHit>> {
    self.lookup(prompt, model_id, now, true)
  }
  fn delete(&mut self, prompt: &str, model_id: &str) -> StorageResult<bool>;
  /// Empties the cache and resets its counters. In memory, the old entries
  /// are freed on another thread.
  fn clear(&mut self) -> StorageResult<()>;
  fn stats(&mut self, now: u64) -> StorageResult<CacheStats>;
  /// How long calls wait for another process's lock on the file (nothing
  /// to wait for in memory).
  fn set_busy_timeout(&mut self, _ms: u64) -> StorageResult<()> {
    Ok(())
  }
  fn busy_timeout_ms(&self) -> u64 {
    0
  }
  /// A copy that reaches the same state without this one's lock, for
  /// a store on the network (Redis): a round trip made through it does
  /// not hold the lock that every other call of the process waits on.
  /// `None` for a store in this process or its file.
  fn detached(&self) -> Option<Box<dyn CacheStore>> {
    None
  }
  fn location(&self) -> Location<'_>;
}

pub trait QueueStore: Send {
  fn config(&self) -> QueueConfig;
  /// New bounds apply at once; a lower `max_size` evicts finished jobs but
  /// never a pending or processing one.
  fn set_config(&mut self, config: QueueConfig, now: u64) -> StorageResult<()>;
  fn enqueue(&mut self, job: NewJob, now: u64) -> Result<Arc<str>, QueueError>;
  /// Leases the best ready job that `eligible` accepts; the ones it turns
  /// down keep their place.
  fn dequeue_eligible(
    &mut self,
    now: u64,
    eligible: &dyn Fn(&Job) -> bool,
  ) -> StorageResult<Option<Job>>;
  fn dequeue(&mut self, now: u64) -> StorageResult<Option<Job>> {
    self.dequeue_eligible(now, &|_| true)
  }
  /// Leases up to `count` of the best ready jobs, best first (`dequeue`
  /// again and again; a store on a server does it in one round trip). An
  /// error only when none could be leased.
  fn dequeue_up_to(&mut self, now: u64, count: usize) -> StorageResult<Vec<Job>> {
    let mut jobs = Vec::new();
    while jobs.len() < count {
      match self.dequeue(now) {
        Ok(Some(job)) => jobs.push(job),
        Ok(None) => break,
        Err(error) if jobs.is_empty() => return Err(error),
        Err(_) => break,
      }
    }
    Ok(jobs)
  }
  /// Extends a processing job's lease to `now + leaseMs`; false when the
  /// job is not processing.
  fn renew_lease(&mut self, id: &str, now: u64) -> StorageResult<bool>;
  /// `renew_lease` for a worker that knows the job is still running: the
  /// lease is extended even when it ran out meanwhile and nothing has
  /// noticed yet.
  fn keep_leased(&mut self, id: &str, now: u64) -> StorageResult<bool>;
  /// `keep_leased` for each of a worker's running jobs, under the leases
  /// it holds (a store that leases by token extends only those leases); a
  /// store on a server does them all in one round trip.
  fn keep_all_leased(&mut self, held: &[(&str, &Lease)], now: u64) -> StorageResult<()> {
    for (id, _) in held {
      self.keep_leased(id, now)?;
    }
    Ok(())
  }
  /// Hands a processing job back, untried and ready now (its worker
  /// stopped on purpose).
  fn release(&mut self, id: &str, now: u64) -> StorageResult<bool>;
  /// Hands back a processing job whose worker ended while running it (its
  /// thread or process): a stall (`Job::stall`), back to pending untried
  /// or, past `max_stalls`, a failed attempt. False when the job is not
  /// processing.
  fn stalled(&mut self, id: &str, now: u64) -> StorageResult<bool>;
  /// Marks a pending or processing job completed; false for an unknown or
  /// finished one.
  fn complete(&mut self, id: &str, now: u64) -> StorageResult<bool>;
  /// Records a failed attempt: back to pending after a backoff, or failed
  /// for good once `max_retries` attempts have failed.
  fn fail(&mut self, id: &str, error: &str, now: u64) -> StorageResult<bool>;
  /// Records the outcome of job `id` that a worker ran under `lease`:
  /// completed (`error` None) or a failed attempt, as `complete` and
  /// `fail` do, but only while the job is processing under that lease
  /// still. False, and nothing changed, when it is not: the lease ran out
  /// and the job went back or on to another worker, or the outcome was
  /// recorded already (by the handler itself, or by an earlier try).
  fn finish_leased(
    &mut self,
    id: &str,
    lease: &Lease,
    error: Option<&str>,
    now: u64,
  ) -> StorageResult<bool>;
  /// `finish_leased`, then the job read back and, when `take_next`, the
  /// best ready job leased (`dequeue`): what a worker does when a job
  /// ends and it may take another. A store on a server does it all in one
  /// round trip. An error means the outcome may or may not be recorded
  /// (asking again is safe: it is recorded once); a next job that could
  /// not be leased is `None`.
  fn finish_and_take(
    &mut self,
    id: &str,
    lease: &Lease,
    error: Option<&str>,
    take_next: bool,
    now: u64,
  ) -> StorageResult<Finished> {
    let recorded = self.finish_leased(id, lease, error, now)?;
    let job = self.get(id, now).ok().flatten();
    let next = match take_next {
      true => self.dequeue(now).ok().flatten(),
      false => None,
    };
    let due = self.next_due();
    Ok(Finished {
      recorded,
      job,
      next,
      due,
    })
  }
  /// The soonest a job that is not ready may become so (a retry time, a
  /// lease's end), as the last lease that found nothing ready learned;
  /// `None` when it did not say (or no such job was held).
  fn next_due(&self) -> Option<u64> {
    None
  }
  /// A signal an idle worker waits on instead of asking again and again
  /// (each call: a new one, with its own connection); `None` for a store
  /// that is cheap to ask (memory, a file), which is polled.
  fn work_signal(&self) -> Option<Box<dyn WorkSignal>> {
    None
  }
  fn stats(&mut self, now: u64) -> StorageResult<QueueStats>;
  /// Pending jobs ready now (their retry time reached): what `dequeue`
  /// would hand out one by one if nothing else changed.
  fn ready_count(&mut self, now: u64) -> StorageResult<usize>;
  fn get(&mut self, id: &str, now: u64) -> StorageResult<Option<Job>>;
  /// One page of the jobs that match, in enqueue order. In memory, `All`
  /// and `Status` walk only `offset + limit` jobs; `User` walks jobs in
  /// enqueue order until the page is full (O(n) when the user has few).
  fn list(&mut self, now: u64, filter: JobFilter<'_>, page: Page) -> StorageResult<Vec<Job>>;
  /// One failed job, or all of them, back to pending with a fresh retry
  /// count; returns how many went back.
  fn retry_failed(&mut self, id: Option<&str>, now: u64) -> StorageResult<usize>;
  /// Removes completed jobs; returns how many went. In memory, what was
  /// removed is freed on another thread.
  fn clear_completed(&mut self, now: u64) -> StorageResult<usize>;
  /// How long calls wait for another process's lock on the file (nothing
  /// to wait for in memory).
  fn set_busy_timeout(&mut self, _ms: u64) -> StorageResult<()> {
    Ok(())
  }
  fn busy_timeout_ms(&self) -> u64 {
    0
  }
  /// A copy that reaches the same state without this one's lock, for
  /// a store on the network (Redis): a round trip made through it does
  /// not hold the lock that every other call of the process waits on.
  /// `None` for a store in this process or its file.
  fn detached(&self) -> Option<Box<dyn QueueStore>> {
    None
  }
  fn location(&self) -> Location<'_>;
}

/// What `QueueStore::finish_and_take` did.
#[derive(Debug, Default)]
pub struct Finished {
  /// Whether the outcome was recorded under the lease (false: the lease
  /// was lost, or the outcome was recorded already).
  pub recorded: bool,
  /// The job as it is now, whoever recorded its outcome.
  pub job: Option<Job>,
  /// The next job, leased.
  pub next: Option<Job>,
  /// When none was ready: when one may be (`next_due`).
  pub due: Option<u64>,
}

/// What a wait on a `WorkSignal` heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
  /// A job was made pending since the last lease that found nothing
  /// ready: look now.
  Work,
  /// Nothing within the time asked for.
  Nothing,
  /// The server did not answer or refused: look later, as without a
  /// signal.
  Failed,
}

/// New work, told to an idle worker by the store.
pub trait WorkSignal: Send {
  /// Waits up to `at_most` (a second at most) for a sign of new work.
  /// Cancel-safe: a wait given up on goes on, and the next call hears
  /// what it heard.
  fn wait(&mut self, at_most: Duration) -> Pin<Box<dyn Future<Output = Heard> + Send + '_>>;
}

pub trait FailureStore: Send {
  fn config(&self) -> FailureConfig;
  fn set_config(&mut self, config: FailureConfig) -> StorageResult<()>;
  fn record(
    &mut self,
    service: &str,
    operation: &str,
    error: &str,
    skip_reason: &str,
    now: u64,
  ) -> StorageResult<()>;
  /// True when at least `threshold` failures of `service` fall inside the
  /// window ending at `now`.
  fn should_skip(&mut self, service: &str, threshold: f64, now: u64) -> StorageResult<bool>;
  /// One page of one service's failures, or of every service's, oldest
  /// first.
  fn failures(&mut self, service: Option<&str>, page: Page) -> StorageResult<Vec<FailureRecord>>;
  /// Forgets one service's failures and its cooldown, or all failures and
  /// all cooldowns; true when anything (a failure or a cooldown) was held.
  fn clear(&mut self, service: Option<&str>) -> StorageResult<bool>;
  /// Per service, in the order they first failed within what is held.
  fn stats(&mut self) -> StorageResult<Vec<ServiceStats>>;
  /// What the records held hold (`FailureRecord::stored_bytes`), as the
  /// byte bound counts it: O(1). Cooldowns are not counted (`max_bytes`
  /// bounds the history only; cooldowns have bounds of their own).
  fn bytes(&mut self) -> StorageResult<usize>;
  /// Benches `name` (a model: a service or an alternative's name) until
  /// `until` (ms since the epoch), giving `reason` (cut to
  /// `cooldown::MAX_REASON_BYTES`). A cooldown is never shortened: it ends
  /// at the later of its old and new ends, and keeps its `since`. Nothing
  /// happens when `until <= now`. At most `max_services` cooldowns are
  /// held; a new name that finds them full drops the ended ones, then the
  /// one ending soonest (stores on a server or a file drop ended ones on
  /// every bench). `clear` forgets cooldowns with the failures.
  fn bench(&mut self, name: &str, until: u64, reason: &str, now: u64) -> StorageResult<()>;
  /// For each of `names`, the ms left of its cooldown at `now`, or `None`
  /// when it has none running; one round trip for the whole list.
  fn cooldowns_of(&mut self, names: &[&str], now: u64) -> StorageResult<Vec<Option<u64>>>;
  /// The cooldowns running at `now`, ending soonest first (`cooldown::sort`).
  fn cooldowns(&mut self, now: u64) -> StorageResult<Vec<Cooldown>>;
  /// Runs `change` over what the shared guards' records under `keys` hold
  /// and writes what it asks for, atomically (`core::shared`): no other
  /// update of those keys comes between the read and the write. `change`
  /// may run more than once (a store on a server runs it again when
  /// another instance wrote first).
  fn update_records(&mut self, keys: &[Key], change: &mut Change, now: u64) -> StorageResult<()>;
  /// Every live record of `kind`, by name.
  fn records(&mut self, kind: Kind, now: u64) -> StorageResult<Vec<(String, String)>>;
  /// The time (ms since the epoch) from which no cooldown runs, as far as
  /// this store knows without a look-up (one in this process); a shared
  /// store says `u64::MAX`, and is asked.
  fn quiet_from(&self) -> u64 {
    u64::MAX
  }
  /// How long calls wait for another process's lock on the file (nothing
  /// to wait for in memory).
  fn set_busy_timeout(&mut self, _ms: u64) -> StorageResult<()> {
    Ok(())
  }
  fn busy_timeout_ms(&self) -> u64 {
    0
  }
  /// A copy that reaches the same state without this one's lock, for
  /// a store on the network (Redis): a round trip made through it does
  /// not hold the lock that every other call of the process waits on.
  /// `None` for a store in this process or its file.
  fn detached(&self) -> Option<Box<dyn FailureStore>> {
    None
  }
  fn location(&self) -> Location<'_>;
}
