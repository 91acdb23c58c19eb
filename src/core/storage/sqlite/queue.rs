//! The job queue in the file. Each operation is one transaction that first
//! applies what time alone changes (expired leases, retry delays run out),
//! reading only the rows that change through the `(lane, due)` index; job
//! transitions are the core's own (`Job::lease`, `Job::fail_attempt`, ...).

use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::database::{
  int, is_json, quarantine, read_bounds, store_bounds, Database, FileOptions, SharedBounds,
};
use crate::core::clock::add_ms;
use crate::core::queue::ids::JobIds;
use crate::core::queue::job::{
  Job, JobPriority, JobStatus, JobType, Lease, NewJob, QueueConfig, QueueError, QueueStats,
};
use crate::core::storage::error::StorageResult;
use crate::core::storage::traits::{JobFilter, Location, Page, QueueStore};

const COLUMNS: &str = "seq, id, type, operation, payload, user_id, priority, created_at, \
  retry_count, max_retries, next_retry_at, status, last_error, updated_at, lane, due, stalls";

const READY: i64 = 0;
const DELAYED: i64 = 1;
const LEASED: i64 = 2;
const FINISHED: i64 = 3;

pub struct SqliteQueue {
  db: Database,
  config: QueueConfig,
  ids: JobIds,
}

impl SqliteQueue {
  pub fn open(
    path: &Path,
    options: impl Into<FileOptions>,
    config: QueueConfig,
  ) -> StorageResult<Self> {
    let mut db = Database::open(path, options)?;
    let mut keys = [0u64; 4];
    for (i, key) in keys.iter_mut().enumerate() {
      *key = db.meta(&format!("job_id_key_{i}"))?;
    }
    let config = db.read(|tx| read_bounds(tx, config, bounds))?;
    Ok(Self {
      db,
      config,
      ids: JobIds::from_keys(keys),
    })
  }
}

/// The queue's bounds every process on the file shares.
fn bounds(config: &mut QueueConfig) -> SharedBounds<'_, 2> {
  [
    ("bound_queue_max_size", &mut config.max_size),
    ("bound_queue_max_bytes", &mut config.max_bytes),
  ]
}

/// A ready job's place: higher priority first, then older.
fn ready_rank(job_priority: JobPriority, created_at: u64) -> i64 {
  const AGE_BITS: u32 = 45; // milliseconds until the year 3084
  let age = created_at.min((1 << AGE_BITS) - 1) as i64;
  (JobPriority::High as i64 - job_priority as i64) << AGE_BITS | age
}

/// Where a pending job waits: ready, or delayed until its retry time.
fn pending_lane(
  job_priority: JobPriority,
  created_at: u64,
  next_retry_at: Option<u64>,
  now: u64,
) -> (i64, i64) {
  match next_retry_at {
    Some(due) if due > now => (DELAYED, int(due)),
    _ => (READY, ready_rank(job_priority, created_at)),
  }
}

/// The lane a job waits in, and its place there.
fn lane_of(job: &Job, now: u64) -> (i64, i64) {
  match job.status {
    JobStatus::Pending => pending_lane(job.priority, job.created_at, job.next_retry_at, now),
    JobStatus::Processing => (LEASED, int(job.lease_until.unwrap_or(now))),
    // A finish rank of 0 is a job that has just finished: `save` ranks it last.
    JobStatus::Completed | JobStatus::Failed => (FINISHED, int(job.finish_rank)),
  }
}

fn read_job(row: &Row) -> rusqlite::Result<Job> {
  let text = |i: usize| row.get::<_, String>(i);
  let number = |i: usize| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
  let bad = |i: usize, what: &str| {
    rusqlite::Error::FromSqlConversionFailure(
      i,
      rusqlite::types::Type::Text,
      format!("not a job {what}").into(),
    )
  };
  let lane = row.get::<_, i64>(14)?;
  let status = JobStatus::ALL
    .get(row.get::<_, i64>(11)? as usize)
    .copied()
    .ok_or_else(|| bad(11, "status"))?;
  Ok(Job {
    seq: number(0)?,
    id: Arc::from(text(1)?),
    job_type: JobType::parse(&text(2)?).ok_or_else(|| bad(2, "type"))?,
    operation: text(3)?,
    payload: row.get::<_, Option<String>>(4)?.map(Arc::from),
    user_id: Arc::from(text(5)?),
    priority: JobPriority::ALL
      .get(row.get::<_, i64>(6)? as usize)
      .copied()
      .ok_or_else(|| bad(6, "priority"))?,
    created_at: number(7)?,
    retry_count: number(8)?.min(u32::MAX as u64) as u32,
    max_retries: number(9)?.min(u32::MAX as u64) as u32,
    next_retry_at: row.get::<_, Option<i64>>(10)?.map(|n| n.max(0) as u64),
    status,
    last_error: row.get(12)?,
    updated_at: number(13)?,
    lease_until: (lane == LEASED).then(|| number(15)).transpose()?,
    finish_rank: if lane == FINISHED { number(15)? } else { 0 },
    stalls: number(16)?.min(u32::MAX as u64) as u32,
    lease_token: None,
  })
}

/// A row that cannot be a job (an unknown type, priority or status, a
/// payload that is not JSON, a column of the wrong kind).
struct Damaged {
  seq: i64,
  id: String,
  reason: String,
}

/// A job, or why its row is damaged.
fn read_row(row: &Row) -> rusqlite::Result<Result<Job, Damaged>> {
  let damaged = |reason: String| -> rusqlite::Result<Result<Job, Damaged>> {
    Ok(Err(Damaged {
      seq: row.get(0)?,
      id: row.get::<_, String>(1).unwrap_or_default(),
      reason,
    }))
  };
  match read_job(row) {
    Ok(job) if job.payload.as_deref().is_some_and(|p| !is_json(p)) => {
      damaged("damaged row: the payload is not valid JSON".into())
    }
    Ok(job) => Ok(Ok(job)),
    Err(error) => damaged(format!("damaged row: {error}")),
  }
}

/// Moves damaged job rows to `damaged_rows`, where they block nothing.
/// Best effort: a row that cannot be moved now (the file is busy) is
/// skipped again next time.
fn set_aside(tx: &Transaction, damaged: &[Damaged]) {
  let now = crate::core::clock::now_ms();
  for row in damaged {
    let _ = quarantine(tx, "jobs", COLUMNS, row.seq, &row.id, &row.reason, now);
  }
}

fn save(tx: &Transaction, job: &Job, now: u64) -> rusqlite::Result<()> {
  let (lane, due) = lane_of(job, now);
  tx.prepare_cached(
    "UPDATE jobs SET status = ?2, retry_count = ?3, next_retry_at = ?4, last_error = ?5, \
     updated_at = ?6, lane = ?7, due = CASE WHEN ?7 = 3 AND ?8 = 0 \
     THEN coalesce((SELECT due FROM jobs WHERE lane = 3 ORDER BY due DESC LIMIT 1), 0) + 1 ELSE ?8 END, \
     bytes = ?9, stalls = ?10 WHERE seq = ?1",
  )?
  .execute(params![
    int(job.seq),
    job.status as i64,
    job.retry_count,
    job.next_retry_at.map(int),
    job.last_error,
    int(job.updated_at),
    lane,
    due,
    int(job.stored_bytes() as u64),
    job.stalls
  ])?;
  Ok(())
}

fn load(tx: &Transaction, ids: &JobIds, id: &str) -> rusqlite::Result<Option<Job>> {
  let Some(seq) = ids.seq_of(id) else {
    return Ok(None);
  };
  let job = tx
    .prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE seq = ?1"))?
    .query_row([int(seq)], read_row)
    .optional()?;
  let job = match job {
    Some(Err(damaged)) => {
      set_aside(tx, &[damaged]);
      None
    }
    Some(Ok(job)) => Some(job),
    None => None,
  };
  Ok(job.filter(|job| &*job.id == id))
}

fn select(
  tx: &Transaction,
  filter: &str,
  args: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Job>> {
  let mut statement = tx.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs {filter}"))?;
  let (mut jobs, mut damaged) = (Vec::new(), Vec::new());
  for row in statement.query_map(args, read_row)? {
    match row? {
      Ok(job) => jobs.push(job),
      Err(row) => damaged.push(row),
    }
  }
  drop(statement);
  set_aside(tx, &damaged);
  Ok(jobs)
}

/// Whether `advance` has anything to do: most calls find nothing due, and
/// two index probes say so without writing.
fn due(tx: &Transaction, now: u64) -> rusqlite::Result<bool> {
  tx.prepare_cached(
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE lane = 1 AND due <= ?1) \
     OR EXISTS (SELECT 1 FROM jobs WHERE lane = 2 AND due < ?1)",
  )?
  .query_row([int(now)], |row| row.get(0))
}

/// Expired leases become failed attempts dated at their deadline; retry
/// delays that have run out make their jobs ready.
fn advance(tx: &Transaction, now: u64, config: &QueueConfig) -> rusqlite::Result<()> {
  if !due(tx, now)? {
    return Ok(());
  }
  let expired = select(tx, "WHERE lane = 2 AND due < ?1 ORDER BY due", [int(now)])?;
  for mut job in expired {
    let until = job.lease_until.unwrap_or(now);
    job.stall(until, true, config);
    save(tx, &job, now)?;
  }
  // Saved unchanged, a job whose retry time has come moves to the ready
  // lane at its ready rank (`lane_of`).
  for job in select(tx, "WHERE lane = 1 AND due <= ?1", [int(now)])? {
    save(tx, &job, now)?;
  }
  Ok(())
}

/// What the held jobs come to, from `job_counts` (kept by triggers).
struct Totals {
  jobs: u64,
  finished: u64,
  bytes: u64,
  finished_bytes: u64,
}

fn totals(tx: &Transaction) -> rusqlite::Result<Totals> {
  tx.prepare_cached(
    "SELECT coalesce(sum(n), 0), coalesce(sum(CASE WHEN status >= 2 THEN n END), 0), \
     coalesce(sum(bytes), 0), coalesce(sum(CASE WHEN status >= 2 THEN bytes END), 0) \
     FROM job_counts WHERE status >= 0",
  )?
  .query_row([], |row| {
    let number = |i: usize| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
    Ok(Totals {
      jobs: number(0)?,
      finished: number(1)?,
      bytes: number(2)?,
      finished_bytes: number(3)?,
    })
  })
}

/// Drops the jobs that finished first until at least `count` jobs and
/// `bytes` bytes are gone, or none is left.
fn evict_finished(tx: &Transaction, count: u64, bytes: u64) -> rusqlite::Result<()> {
  let (mut evicted, mut freed) = (0, 0);
  while evicted < count || freed < bytes {
    let gone: Option<i64> = tx
      .prepare_cached(
        "DELETE FROM jobs WHERE seq = (SELECT seq FROM jobs WHERE lane = 3 ORDER BY due, seq LIMIT 1) \
         RETURNING bytes",
      )?
      .query_row([], |row| row.get(0))
      .optional()?;
    let Some(gone) = gone else {
      return Ok(());
    };
    evicted += 1;
    freed += gone.max(0) as u64;
  }
  Ok(())
}

impl SqliteQueue {
  /// Loads a job, changes it if `change` says so, and saves it.
  fn change(
    &mut self,
    id: &str,
    now: u64,
    change: impl FnOnce(&mut Job) -> bool,
  ) -> StorageResult<bool> {
    let queue_config = &self.config;
    let ids = &self.ids;
    self.db.write(|tx| {
      advance(tx, now, queue_config)?;
      let Some(mut job) = load(tx, ids, id)? else {
        return Ok(false);
      };
      if !change(&mut job) {
        return Ok(false);
      }
      save(tx, &job, now)?;
      Ok(true)
    })
  }
}

impl QueueStore for SqliteQueue {
  fn config(&self) -> QueueConfig {
    self.config.clone()
  }

  fn set_config(&mut self, config: QueueConfig, now: u64) -> StorageResult<()> {
    let queue_config = &config;
    // Asked for: these bounds become the file's, for every process.
    self.db.write(|tx| {
      store_bounds(tx, config.clone(), bounds)?;
      advance(tx, now, queue_config)?;
      let held = totals(tx)?;
      let over = held.jobs.saturating_sub(config.max_size as u64);
      let over_bytes = held.bytes.saturating_sub(config.max_bytes as u64);
      evict_finished(tx, over, over_bytes)
    })?;
    self.config = config;
    Ok(())
  }

  fn enqueue(&mut self, job: NewJob, now: u64) -> Result<Arc<str>, QueueError> {
    let queue_config = &self.config;
    job.check(self.config.max_payload_bytes)?;
    let ids = &self.ids;
    let config = self.config.clone();
    let stored = self.db.write(|tx| {
      // The file's bounds, as another process may have set them since.
      let config = read_bounds(tx, config, bounds)?;
      advance(tx, now, queue_config)?;
      let last: i64 = tx
        .prepare_cached("SELECT n FROM job_counts WHERE status = -1")?
        .query_row([], |row| row.get(0))?;
      let seq = last as u64 + 1;
      let job = job.into_job(ids.job_id(now, seq).into(), seq, now);
      let job_bytes = match job.check_size(&config) {
        Ok(bytes) => bytes as u64,
        Err(refused) => return Ok(Err(refused)),
      };
      // Refused before anything is evicted: a call that throws changes nothing.
      let held = totals(tx)?;
      let over = (held.jobs + 1).saturating_sub(config.max_size as u64);
      if over > held.finished {
        return Ok(Err(QueueError::Full {
          max_size: config.max_size,
        }));
      }
      let over_bytes = (held.bytes + job_bytes).saturating_sub(config.max_bytes as u64);
      if over_bytes > held.finished_bytes {
        return Ok(Err(QueueError::FullBytes {
          live_bytes: (held.bytes - held.finished_bytes) as usize,
          job_bytes: job_bytes as usize,
          max_bytes: config.max_bytes,
        }));
      }
      evict_finished(tx, over, over_bytes)?;
      let ready = pending_lane(job.priority, now, job.next_retry_at, now);
      tx.prepare_cached(
        "INSERT INTO jobs (seq, id, type, operation, payload, user_id, priority, created_at, \
         retry_count, max_retries, next_retry_at, status, last_error, updated_at, lane, due, bytes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, NULL, ?8, ?12, ?13, ?14)",
      )?
      .execute(params![
        int(seq),
        &*job.id,
        job.job_type.as_str(),
        job.operation,
        job.payload.as_deref(),
        &*job.user_id,
        job.priority as i64,
        int(now),
        job.retry_count,
        job.max_retries,
        job.next_retry_at.map(int),
        ready.0,
        ready.1,
        int(job_bytes)
      ])?;
      Ok(Ok((job.id, config)))
    });
    let (id, config) = stored.map_err(QueueError::Storage)??;
    self.config = config;
    Ok(id)
  }

  fn dequeue_eligible(
    &mut self,
    now: u64,
    eligible: &dyn Fn(&Job) -> bool,
  ) -> StorageResult<Option<Job>> {
    let queue_config = &self.config;
    let lease_until = add_ms(now, self.config.lease_ms);
    self.db.write(|tx| {
      advance(tx, now, queue_config)?;
      let mut damaged = Vec::new();
      let chosen = {
        let mut statement = tx.prepare_cached(&format!(
          "SELECT {COLUMNS} FROM jobs WHERE lane = 0 ORDER BY due, seq"
        ))?;
        let mut rows = statement.query([])?;
        let mut chosen = None;
        while let Some(row) = rows.next()? {
          // A damaged row never blocks the queue: it is set aside and the
          // next job is taken.
          match read_row(row)? {
            Ok(job) if eligible(&job) => {
              chosen = Some(job);
              break;
            }
            Ok(_) => {}
            Err(row) => damaged.push(row),
          }
        }
        chosen
      };
      set_aside(tx, &damaged);
      let Some(mut job) = chosen else {
        return Ok(None);
      };
      job.lease(now, lease_until);
      save(tx, &job, now)?;
      Ok(Some(job))
    })
  }

  fn renew_lease(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.keep_leased(id, now)
  }

  fn keep_leased(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    let lease_until = add_ms(now, self.config.lease_ms);
    let ids = &self.ids;
    // No `advance` first: a lease that ran out while its worker was busy is
    // still this worker's until something else has noticed.
    self.db.write(|tx| {
      let Some(mut job) = load(tx, ids, id)? else {
        return Ok(false);
      };
      if job.status != JobStatus::Processing {
        return Ok(false);
      }
      job.lease_until = Some(lease_until);
      save(tx, &job, now)?;
      Ok(true)
    })
  }

  fn release(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.change(id, now, |job| {
      let leased = job.status == JobStatus::Processing;
      if leased {
        job.release(now);
      }
      leased
    })
  }

  fn finish_leased(
    &mut self,
    id: &str,
    lease: &Lease,
    error: Option<&str>,
    now: u64,
  ) -> StorageResult<bool> {
    let backoff = self.config.backoff.clone();
    self.change(id, now, |job| {
      let held = job.is_held_by(lease);
      if held {
        job.record_outcome(error, now, &backoff);
      }
      held
    })
  }

  fn stalled(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    let config = self.config.clone();
    self.change(id, now, |job| {
      let leased = job.status == JobStatus::Processing;
      if leased {
        job.stall(now, false, &config);
      }
      leased
    })
  }

  fn complete(&mut self, id: &str, now: u64) -> StorageResult<bool> {
    self.change(id, now, |job| {
      let live = job.is_live();
      if live {
        job.finish(JobStatus::Completed, now);
      }
      live
    })
  }

  fn fail(&mut self, id: &str, error: &str, now: u64) -> StorageResult<bool> {
    let backoff = self.config.backoff.clone();
    self.change(id, now, |job| {
      let live = job.is_live();
      if live {
        job.fail_attempt(error, now, &backoff);
      }
      live
    })
  }

  fn stats(&mut self, now: u64) -> StorageResult<QueueStats> {
    let queue_config = &self.config;
    let read = |tx: &Transaction| {
      let (mut counts, mut bytes) = ([0usize; 4], 0);
      let mut statement = tx.prepare_cached("SELECT status, n, bytes FROM job_counts")?;
      let mut rows = statement.query([])?;
      while let Some(row) = rows.next()? {
        if let Some(count) = counts.get_mut(row.get::<_, i64>(0)? as usize) {
          *count = row.get::<_, i64>(1)?.max(0) as usize;
          bytes += row.get::<_, i64>(2)?.max(0) as usize;
        }
      }
      Ok(QueueStats {
        total: counts.iter().sum(),
        pending: counts[JobStatus::Pending as usize],
        processing: counts[JobStatus::Processing as usize],
        completed: counts[JobStatus::Completed as usize],
        failed: counts[JobStatus::Failed as usize],
        bytes,
      })
    };
    self
      .db
      .read_current(|tx| due(tx, now), |tx| advance(tx, now, queue_config), read)
  }

  /// Counts the ready lane through the `(lane, due)` index: O(ready jobs).
  fn ready_count(&mut self, now: u64) -> StorageResult<usize> {
    let queue_config = &self.config;
    let read = |tx: &Transaction| {
      tx.prepare_cached("SELECT count(*) FROM jobs WHERE lane = ?1")?
        .query_row([READY], |row| row.get::<_, i64>(0))
        .map(|n| n.max(0) as usize)
    };
    self
      .db
      .read_current(|tx| due(tx, now), |tx| advance(tx, now, queue_config), read)
  }

  fn get(&mut self, id: &str, now: u64) -> StorageResult<Option<Job>> {
    let queue_config = &self.config;
    let ids = &self.ids;
    self.db.read_current(
      |tx| due(tx, now),
      |tx| advance(tx, now, queue_config),
      |tx| load(tx, ids, id),
    )
  }

  /// One page in enqueue order, read off the table in `seq` order: `All`
  /// reads `offset + limit` rows; `Status` and `User` read rows until the
  /// page is full (no index by status or user: one would cost every status
  /// change a page write, about 16% of an enqueue→dequeue→complete cycle, to
  /// save at most a full read of the table, ~6 ms at 100k jobs).
  fn list(&mut self, now: u64, filter: JobFilter<'_>, page: Page) -> StorageResult<Vec<Job>> {
    let queue_config = &self.config;
    let (limit, offset) = page.sql();
    let read = |tx: &Transaction| match filter {
      JobFilter::All => select(
        tx,
        "ORDER BY seq LIMIT ?1 OFFSET ?2",
        params![limit, offset],
      ),
      JobFilter::Status(status) => select(
        tx,
        "WHERE status = ?3 ORDER BY seq LIMIT ?1 OFFSET ?2",
        params![limit, offset, status as i64],
      ),
      JobFilter::User(user) => select(
        tx,
        "WHERE user_id = ?3 ORDER BY seq LIMIT ?1 OFFSET ?2",
        params![limit, offset, user],
      ),
    };
    self
      .db
      .read_current(|tx| due(tx, now), |tx| advance(tx, now, queue_config), read)
  }

  fn retry_failed(&mut self, id: Option<&str>, now: u64) -> StorageResult<usize> {
    let queue_config = &self.config;
    let ids = &self.ids;
    self.db.write(|tx| {
      advance(tx, now, queue_config)?;
      let failed = match id {
        Some(id) => load(tx, ids, id)?.into_iter().collect(),
        None => select(tx, "WHERE status = 3 ORDER BY due, seq", [])?,
      };
      let mut count = 0;
      for mut job in failed {
        if job.status == JobStatus::Failed {
          job.revive(now);
          save(tx, &job, now)?;
          count += 1;
        }
      }
      Ok(count)
    })
  }

  fn clear_completed(&mut self, now: u64) -> StorageResult<usize> {
    let queue_config = &self.config;
    self.db.write(|tx| {
      advance(tx, now, queue_config)?;
      tx.prepare_cached("DELETE FROM jobs WHERE status = 2")?
        .execute([])
    })
  }

  fn set_busy_timeout(&mut self, ms: u64) -> StorageResult<()> {
    self.db.set_busy_timeout(ms)
  }

  fn busy_timeout_ms(&self) -> u64 {
    self.db.busy_timeout_ms()
  }

  fn location(&self) -> Location<'_> {
    Location::File(self.db.path())
  }
}
