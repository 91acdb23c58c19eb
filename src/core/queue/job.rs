//! The job model: what a caller enqueues (`NewJob`), what is stored and
//! handed out (`Job`, with the transitions every store applies the same
//! way), the type/priority/status enums, the queue's bounds, errors and
//! counts. Shared by the memory queue and the SQLite one.

use std::sync::Arc;

use crate::core::clock::add_ms;
use crate::core::limits;
use crate::core::storage::error::StorageError;

pub const DEFAULT_MAX_SIZE: usize = 10_000;
pub const DEFAULT_LEASE_MS: u64 = 5 * 60 * 1000;
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// 256 MiB, as the cache's byte bound.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;
pub const DEFAULT_MAX_RETRIES: u32 = 3;
pub const LEASE_EXPIRED: &str = "lease expired";
/// Stalls a job may have before the next one is a failed attempt.
pub const DEFAULT_MAX_STALLS: u32 = 3;

/// The `lastError` of a job whose stall `stalls` passed `max_stalls` (the
/// queue commands on Redis write the same text: `commands/queue.lua`).
pub fn stalled_error(stalls: u32, max_stalls: u32) -> String {
  format!(
    "stalled {stalls} times (maxStalls {max_stalls}): its worker ended or lost its lease while running it"
  )
}

/// The default delays before retry n (1-based): 1, 5, 15, then 30 minutes.
pub const DEFAULT_BACKOFF_MS: [u64; 4] = [60_000, 300_000, 900_000, 1_800_000];

/// The delays before each retry of a failed job: entry n − 1 before retry n,
/// the last repeating. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff(Arc<[u64]>);

impl Backoff {
  /// `None` for an empty schedule.
  pub fn new(delays: Vec<u64>) -> Option<Self> {
    (!delays.is_empty()).then(|| Self(delays.into()))
  }

  /// The delay before retry `retry_count` (1-based; 0 counts as 1).
  pub fn delay_ms(&self, retry_count: u32) -> u64 {
    let index = (retry_count.max(1) as usize - 1).min(self.0.len() - 1);
    self.0[index]
  }

  pub fn delays(&self) -> &[u64] {
    &self.0
  }
}

impl Default for Backoff {
  fn default() -> Self {
    Self(Arc::new(DEFAULT_BACKOFF_MS))
  }
}

/// The default schedule's delay before retry `retry_count`.
pub fn backoff_ms(retry_count: u32) -> u64 {
  Backoff::default().delay_ms(retry_count)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
  /// Jobs held at most, in every status together.
  pub max_size: usize,
  /// How long a job may stay in `processing` before it counts as failed.
  pub lease_ms: u64,
  /// Largest payload, in bytes of JSON.
  pub max_payload_bytes: usize,
  /// Bytes held at most by the jobs in every status together, counted by
  /// `Job::stored_bytes`.
  pub max_bytes: usize,
  /// Delays before retries of a failed job. Applied when a failure is
  /// recorded (the job's `next_retry_at` is stored); per instance and
  /// process, not stored in a file.
  pub backoff: Backoff,
  /// Stalls a job may have (its lease ended without an outcome from its
  /// worker: the lease ran out, or the worker's thread or process ended);
  /// each one past this is a failed attempt. Per instance, like `backoff`.
  pub max_stalls: u32,
}

impl Default for QueueConfig {
  fn default() -> Self {
    Self {
      max_size: DEFAULT_MAX_SIZE,
      lease_ms: DEFAULT_LEASE_MS,
      max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
      max_bytes: DEFAULT_MAX_BYTES,
      backoff: Backoff::default(),
      max_stalls: DEFAULT_MAX_STALLS,
    }
  }
}

macro_rules! string_enum {
  ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
    $(#[$meta])*
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum $name { $($variant),+ }

    impl $name {
      pub const ALL: &'static [$name] = &[$($name::$variant),+];

      pub fn as_str(self) -> &'static str {
        match self { $($name::$variant => $text),+ }
      }

      pub fn parse(text: &str) -> Option<Self> {
        match text { $($text => Some($name::$variant),)+ _ => None }
      }
    }
  };
}

string_enum!(JobType {
  Ai = "ai",
  Integration = "integration",
  Analytics = "analytics",
  Notification = "notification",
});

string_enum!(
  /// Declared lowest first, so `Ord` ranks `High` above the others.
  JobPriority {
    Low = "low",
    Medium = "medium",
    High = "high",
  }
);

string_enum!(JobStatus {
  Pending = "pending",
  Processing = "processing",
  Completed = "completed",
  Failed = "failed",
});

/// What a caller hands to `enqueue`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
  pub job_type: JobType,
  pub operation: String,
  /// JSON text; `None` stands for an `undefined` payload.
  pub payload: Option<Arc<str>>,
  pub user_id: String,
  pub priority: JobPriority,
  pub retry_count: u32,
  pub max_retries: u32,
  pub next_retry_at: Option<u64>,
}

impl NewJob {
  pub fn payload_bytes(&self) -> usize {
    self.payload.as_ref().map_or(0, |p| p.len())
  }

  /// Whether the queue can keep this job: a payload within `max_payload_bytes`,
  /// identifiers within `limits::MAX_ID_BYTES`. Both backends ask before
  /// anything changes.
  pub fn check(&self, max_payload_bytes: usize) -> Result<(), QueueError> {
    let bytes = self.payload_bytes();
    if bytes > max_payload_bytes {
      return Err(QueueError::PayloadTooLarge {
        bytes,
        max_bytes: max_payload_bytes,
      });
    }
    let too_long = limits::id_too_long("The job's operation", &self.operation)
      .or_else(|| limits::id_too_long("The job's userId", &self.user_id));
    match too_long {
      Some(message) => Err(QueueError::TooLong(message)),
      None => Ok(()),
    }
  }

  /// The job as stored: `pending`, created `now`, under `id` and `seq`.
  pub(crate) fn into_job(self, id: Arc<str>, seq: u64, now: u64) -> Job {
    Job {
      id,
      job_type: self.job_type,
      operation: self.operation,
      payload: self.payload,
      user_id: self.user_id.into(),
      priority: self.priority,
      created_at: now,
      retry_count: self.retry_count,
      max_retries: self.max_retries,
      next_retry_at: self.next_retry_at,
      status: JobStatus::Pending,
      last_error: None,
      updated_at: now,
      seq,
      lease_until: None,
      finish_rank: 0,
      stalls: 0,
      lease_token: None,
    }
  }
}

/// A job as stored and as handed out (snapshots are clones; the payload
/// text is shared).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
  pub id: Arc<str>,
  pub job_type: JobType,
  pub operation: String,
  pub payload: Option<Arc<str>>,
  pub user_id: Arc<str>,
  pub priority: JobPriority,
  pub created_at: u64,
  pub retry_count: u32,
  pub max_retries: u32,
  pub next_retry_at: Option<u64>,
  pub status: JobStatus,
  pub last_error: Option<String>,
  pub updated_at: u64,
  pub(crate) seq: u64,
  pub(crate) lease_until: Option<u64>,
  /// Order in which the job finished (completed or failed).
  pub(crate) finish_rank: u64,
  /// Times its lease ended without an outcome from its worker.
  pub(crate) stalls: u32,
  /// The token of its lease, on a store that hands leases out by token
  /// (Redis); `None` elsewhere.
  pub(crate) lease_token: Option<Arc<str>>,
}

/// What a worker holds of a job it leased: enough to tell, when it records
/// the outcome, that the job is still under that lease, not lost (its lease
/// ran out) and gone back or on to another worker meanwhile. A lease lost
/// always changes the job's retry or stall count; on Redis the token says
/// it outright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
  pub token: Option<Arc<str>>,
  pub retry_count: u32,
  pub stalls: u32,
}

impl Job {
  /// The lease a worker that just took this job holds.
  pub fn lease_held(&self) -> Lease {
    Lease {
      token: self.lease_token.clone(),
      retry_count: self.retry_count,
      stalls: self.stalls,
    }
  }

  /// Whether the job is processing under `lease` still.
  pub(crate) fn is_held_by(&self, lease: &Lease) -> bool {
    self.status == JobStatus::Processing
      && self.retry_count == lease.retry_count
      && self.stalls == lease.stalls
      && (lease.token.is_none() || self.lease_token == lease.token)
  }

  /// A worker's outcome: completed (`error` None) or a failed attempt.
  pub(crate) fn record_outcome(&mut self, error: Option<&str>, now: u64, backoff: &Backoff) {
    match error {
      None => self.finish(JobStatus::Completed, now),
      Some(error) => self.fail_attempt(error, now, backoff),
    }
  }

  pub fn is_live(&self) -> bool {
    matches!(self.status, JobStatus::Pending | JobStatus::Processing)
  }

  /// The bytes this job holds, as `QueueConfig::max_bytes` counts them: the
  /// UTF-8 of its stored strings (id, type, operation, payload JSON, user
  /// id, last error). Numbers, dates and enums are not counted. The one
  /// definition: the memory queue counts with it, the file stores it in
  /// each job row (`schema.rs` computes the same for rows written before).
  pub fn stored_bytes(&self) -> usize {
    self.id.len()
      + self.job_type.as_str().len()
      + self.operation.len()
      + self.payload.as_ref().map_or(0, |p| p.len())
      + self.user_id.len()
      + self.last_error.as_ref().map_or(0, |e| e.len())
  }

  /// Whether a queue whose bounds are `config` can ever hold this job:
  /// refused up front when it alone is larger than the byte bound.
  pub(crate) fn check_size(&self, config: &QueueConfig) -> Result<usize, QueueError> {
    let bytes = self.stored_bytes();
    if bytes > config.max_bytes {
      return Err(QueueError::JobTooLarge {
        bytes,
        max_bytes: config.max_bytes,
      });
    }
    Ok(bytes)
  }

  /// Handed to a worker until `lease_until`.
  pub(crate) fn lease(&mut self, now: u64, lease_until: u64) {
    self.status = JobStatus::Processing;
    self.updated_at = now;
    self.lease_until = Some(lease_until);
  }

  /// A failed attempt at `at`: pending again after the `backoff` delay, or
  /// failed for good once `max_retries` attempts have failed.
  pub(crate) fn fail_attempt(&mut self, error: &str, at: u64, backoff: &Backoff) {
    self.retry_count = self.retry_count.saturating_add(1);
    self.last_error = Some(limits::clip(error));
    self.updated_at = at;
    self.lease_until = None;
    if self.retry_count >= self.max_retries {
      self.status = JobStatus::Failed;
    } else {
      self.status = JobStatus::Pending;
      self.next_retry_at = Some(add_ms(at, backoff.delay_ms(self.retry_count)));
    }
  }

  /// Its lease ended without an outcome from its worker: the lease ran out
  /// (`expired`: a failed attempt, as the contract has it) or the worker's
  /// thread or process ended (handed back untried). Counted; past
  /// `config.max_stalls` either is a failed attempt whose `lastError` says
  /// so, and follows the retry and dead-letter rules.
  pub(crate) fn stall(&mut self, at: u64, expired: bool, config: &QueueConfig) {
    self.stalls = self.stalls.saturating_add(1);
    if self.stalls > config.max_stalls {
      let error = stalled_error(self.stalls, config.max_stalls);
      self.fail_attempt(&error, at, &config.backoff);
    } else if expired {
      self.fail_attempt(LEASE_EXPIRED, at, &config.backoff);
    } else {
      self.release(at);
    }
  }

  /// Back to pending, ready now, its retry count unchanged.
  pub(crate) fn release(&mut self, now: u64) {
    self.status = JobStatus::Pending;
    self.lease_until = None;
    self.next_retry_at = None;
    self.updated_at = now;
  }

  pub(crate) fn finish(&mut self, status: JobStatus, now: u64) {
    self.status = status;
    self.updated_at = now;
    self.lease_until = None;
  }

  /// A dead letter back to work with a fresh retry count (its `lastError`
  /// stays, for the record).
  pub(crate) fn revive(&mut self, now: u64) {
    self.status = JobStatus::Pending;
    self.retry_count = 0;
    self.stalls = 0;
    self.next_retry_at = None;
    self.updated_at = now;
  }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
  Storage(StorageError),
  /// Every held job is pending or processing; nothing may be dropped.
  Full {
    max_size: usize,
  },
  /// The jobs that may not be dropped hold too many bytes for this one to
  /// fit under `max_bytes`.
  FullBytes {
    /// What the pending and processing jobs hold.
    live_bytes: usize,
    job_bytes: usize,
    max_bytes: usize,
  },
  /// One job larger than the whole byte bound (it could never fit).
  JobTooLarge {
    bytes: usize,
    max_bytes: usize,
  },
  PayloadTooLarge {
    bytes: usize,
    max_bytes: usize,
  },
  /// An identifier over `limits::MAX_ID_BYTES` (the message says which).
  TooLong(String),
  /// The server did not answer, and what waits here to be written to it
  /// already fills the queue's bounds: the job is refused, not kept.
  WaitingFull {
    jobs: usize,
    bytes: usize,
    job_bytes: usize,
    max_size: usize,
    max_bytes: usize,
  },
}

impl std::fmt::Display for QueueError {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match self {
      QueueError::Storage(error) => error.fmt(f),
      QueueError::Full { max_size } => write!(
        f,
        "The job queue is full: it holds {max_size} jobs that are pending or processing, and none may be dropped"
      ),
      QueueError::FullBytes {
        live_bytes,
        job_bytes,
        max_bytes,
      } => write!(
        f,
        "The job queue is full: its pending and processing jobs hold {live_bytes} bytes, and this job's {job_bytes} bytes would take it past its bound of {max_bytes} bytes (maxBytes); none may be dropped"
      ),
      QueueError::JobTooLarge { bytes, max_bytes } => write!(
        f,
        "The job holds {bytes} bytes (its payload JSON, operation, userId, type and id), more than the queue's whole bound of {max_bytes} bytes (maxBytes)"
      ),
      QueueError::PayloadTooLarge { bytes, max_bytes } => write!(
        f,
        "The job payload is {bytes} bytes of JSON, more than the limit of {max_bytes} bytes"
      ),
      QueueError::TooLong(message) => f.write_str(message),
      QueueError::WaitingFull {
        jobs,
        bytes,
        job_bytes,
        max_size,
        max_bytes,
      } => write!(
        f,
        "The job queue is full: the Redis server did not answer, and the {jobs} jobs ({bytes} bytes) waiting here to be written to it leave no room for this one's {job_bytes} bytes within maxSize {max_size} and maxBytes {max_bytes}; it was not kept"
      ),
    }
  }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
  pub total: usize,
  pub pending: usize,
  pub processing: usize,
  pub completed: usize,
  pub failed: usize,
  /// What the held jobs hold (`Job::stored_bytes`), every status together.
  pub bytes: usize,
}
