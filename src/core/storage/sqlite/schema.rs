//! The file's schema, versioned with `PRAGMA user_version` and marked as
//! ours with `PRAGMA application_id`. Each release appends migrations; a
//! file is brought up to date inside the transaction that opens it, so
//! processes opening it together cannot both migrate it.

use std::hash::{BuildHasher, RandomState};
use std::path::Path;

use rusqlite::{Connection, Transaction};

use super::errors::at;
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};

/// "FbMe", so `file(1)`-style tools and this library can tell the file apart.
pub(super) const APPLICATION_ID: i64 = 0x4662_4d65;

/// Migration `n` takes a file from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// The tables the current schema has.
const TABLES: [&str; 11] = [
  "meta",
  "jobs",
  "job_counts",
  "cache_entries",
  "cache_totals",
  "failures",
  "failure_services",
  "failure_totals",
  "redis_outbox",
  "cooldowns",
  "shared_records",
];

pub(super) const V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;

-- Jobs. One index, (lane, due), orders every state: lane 0 ready, `due`
-- ranking priority then age; 1 delayed until `due`; 2 leased until `due`;
-- 3 finished, `due` being the finish order. Each write touches few pages,
-- which is most of what a commit costs.
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  operation TEXT NOT NULL,
  payload TEXT,
  user_id TEXT NOT NULL,
  priority INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  retry_count INTEGER NOT NULL,
  max_retries INTEGER NOT NULL,
  next_retry_at INTEGER,
  status INTEGER NOT NULL,
  last_error TEXT,
  updated_at INTEGER NOT NULL,
  lane INTEGER NOT NULL,
  due INTEGER NOT NULL
);
CREATE INDEX jobs_by_lane ON jobs (lane, due);
-- Jobs per status, and (status -1) the highest sequence number ever used,
-- so an id is never handed out twice even after its job is gone.
CREATE TABLE job_counts (status INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO job_counts (status, n) VALUES (-1, 0), (0, 0), (1, 0), (2, 0), (3, 0);
CREATE TRIGGER jobs_count_in AFTER INSERT ON jobs BEGIN
  UPDATE job_counts SET n = CASE WHEN status = -1 THEN max(n, NEW.seq) ELSE n + 1 END
  WHERE status IN (-1, NEW.status);
END;
CREATE TRIGGER jobs_count_out AFTER DELETE ON jobs BEGIN
  UPDATE job_counts SET n = n - 1 WHERE status = OLD.status;
END;
CREATE TRIGGER jobs_recount AFTER UPDATE OF status ON jobs WHEN OLD.status <> NEW.status BEGIN
  UPDATE job_counts SET n = n - 1 WHERE status = OLD.status;
  UPDATE job_counts SET n = n + 1 WHERE status = NEW.status;
END;

-- Cached responses, found by a seeded digest of the key and confirmed
-- against the stored key. `stale` turns 1 once an entry is past its TTL and
-- kept only for stale-if-error; triggers keep the totals the bounds and
-- getStats need, so neither reads the table.
CREATE TABLE cache_entries (
  digest INTEGER NOT NULL,
  model_id TEXT NOT NULL,
  prompt TEXT NOT NULL,
  response TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used INTEGER NOT NULL,
  stale INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cache_by_digest ON cache_entries (digest);
CREATE INDEX cache_by_expiry ON cache_entries (stale, expires_at);
CREATE INDEX cache_by_use ON cache_entries (used);
CREATE INDEX cache_live_by_age ON cache_entries (created_at) WHERE stale = 0;
CREATE TABLE cache_totals (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  entries INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  live_entries INTEGER NOT NULL,
  live_bytes INTEGER NOT NULL
);
INSERT INTO cache_totals (id, entries, bytes, live_entries, live_bytes) VALUES (0, 0, 0, 0, 0);
CREATE TRIGGER cache_count_in AFTER INSERT ON cache_entries BEGIN
  UPDATE cache_totals SET entries = entries + 1, bytes = bytes + NEW.bytes,
    live_entries = live_entries + (NEW.stale = 0),
    live_bytes = live_bytes + CASE WHEN NEW.stale = 0 THEN NEW.bytes ELSE 0 END;
END;
CREATE TRIGGER cache_count_out AFTER DELETE ON cache_entries BEGIN
  UPDATE cache_totals SET entries = entries - 1, bytes = bytes - OLD.bytes,
    live_entries = live_entries - (OLD.stale = 0),
    live_bytes = live_bytes - CASE WHEN OLD.stale = 0 THEN OLD.bytes ELSE 0 END;
END;
CREATE TRIGGER cache_count_stale AFTER UPDATE OF stale ON cache_entries
WHEN OLD.stale = 0 AND NEW.stale = 1 BEGIN
  UPDATE cache_totals SET live_entries = live_entries - 1, live_bytes = live_bytes - OLD.bytes;
END;

-- Integration failures, and each service's latest one (for the bound on
-- services: the least recently failed goes first).
CREATE TABLE failures (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  service TEXT NOT NULL,
  operation TEXT NOT NULL,
  error TEXT NOT NULL,
  skip_reason TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX failures_by_service ON failures (service, seq);
CREATE TABLE failure_services (service TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX failure_services_by_recency ON failure_services (last_seq);
";

/// The byte bounds of the queue and of the failure history. Each job row
/// keeps what it holds (`Job::stored_bytes`, written by the queue code), and
/// triggers keep the bytes of each status in `job_counts` next to the
/// counts; each failure row keeps its `FailureRecord::stored_bytes`, and
/// triggers keep the total in `failure_totals`. Rows written before get the
/// same sums of their strings' UTF-8 bytes here.
/// What a process on Redis accepted while the server was away (`redisUrl`
/// together with `storagePath`): each row one script run to make, its key
/// head and arguments (a JSON array of strings), written out oldest first.
const V3: &str = "
CREATE TABLE redis_outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind INTEGER NOT NULL,
  head TEXT NOT NULL,
  args TEXT NOT NULL
);
";

/// Benched names (README, "Cooldowns"): since when, until when (ms), why;
/// by end, to drop the ended ones and the one ending soonest.
const V4: &str = "
CREATE TABLE cooldowns (
  name TEXT PRIMARY KEY,
  since INTEGER NOT NULL,
  until INTEGER NOT NULL,
  reason TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX cooldowns_by_end ON cooldowns (until);
";

/// Stall counts (`maxStalls`), and kept Redis writes the server refused
/// for good: set aside with the reason, never sent again.
const V5: &str = "
ALTER TABLE jobs ADD COLUMN stalls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE redis_outbox ADD COLUMN refused TEXT;
";

/// The shared guards' records (`core::shared`): breakers, limits, budgets.
const V6: &str = "
CREATE TABLE shared_records (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (kind, name)
) WITHOUT ROWID;
CREATE INDEX shared_records_by_expiry ON shared_records (expires_at);
";

const V2: &str = "
ALTER TABLE jobs ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET bytes = length(CAST(id AS BLOB)) + length(CAST(type AS BLOB))
  + length(CAST(operation AS BLOB)) + coalesce(length(CAST(payload AS BLOB)), 0)
  + length(CAST(user_id AS BLOB)) + coalesce(length(CAST(last_error AS BLOB)), 0);
ALTER TABLE job_counts ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE job_counts SET bytes = (SELECT coalesce(sum(bytes), 0) FROM jobs WHERE jobs.status = job_counts.status)
WHERE status >= 0;
DROP TRIGGER jobs_count_in;
DROP TRIGGER jobs_count_out;
DROP TRIGGER jobs_recount;
CREATE TRIGGER jobs_count_in AFTER INSERT ON jobs BEGIN
  UPDATE job_counts SET n = CASE WHEN status = -1 THEN max(n, NEW.seq) ELSE n + 1 END,
    bytes = CASE WHEN status = -1 THEN 0 ELSE bytes + NEW.bytes END
  WHERE status IN (-1, NEW.status);
END;
CREATE TRIGGER jobs_count_out AFTER DELETE ON jobs BEGIN
  UPDATE job_counts SET n = n - 1, bytes = bytes - OLD.bytes WHERE status = OLD.status;
END;
CREATE TRIGGER jobs_recount AFTER UPDATE OF status, bytes ON jobs
WHEN OLD.status <> NEW.status OR OLD.bytes <> NEW.bytes BEGIN
  UPDATE job_counts SET n = n - 1, bytes = bytes - OLD.bytes WHERE status = OLD.status;
  UPDATE job_counts SET n = n + 1, bytes = bytes + NEW.bytes WHERE status = NEW.status;
END;

ALTER TABLE failures ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE failures SET bytes = length(CAST(service AS BLOB)) + length(CAST(operation AS BLOB))
  + length(CAST(error AS BLOB)) + length(CAST(skip_reason AS BLOB));
CREATE TABLE failure_totals (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);
INSERT INTO failure_totals (id, bytes) SELECT 0, coalesce(sum(bytes), 0) FROM failures;
CREATE TRIGGER failures_count_in AFTER INSERT ON failures BEGIN
  UPDATE failure_totals SET bytes = bytes + NEW.bytes;
END;
CREATE TRIGGER failures_count_out AFTER DELETE ON failures BEGIN
  UPDATE failure_totals SET bytes = bytes - OLD.bytes;
END;
";

/// Rows moved aside because they could not be read (a cached response
/// that is not JSON, a job of an unknown type, ...): which table, the job id
/// or cache key, why, when (ms), and the row as it was (JSON).
const DAMAGED_ROWS: &str = "
CREATE TABLE IF NOT EXISTS damaged_rows (
  seq INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  key TEXT NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL,
  row TEXT NOT NULL
);
";

/// What the file says it is, from its header.
struct Identity {
  application_id: i64,
  version: i64,
  objects: i64,
}

fn identity(connection: &Connection, path: &Path) -> StorageResult<Identity> {
  let read = |sql: &str| -> StorageResult<i64> {
    connection
      .query_row(sql, [], |row| row.get(0))
      .map_err(|e| at(path, e))
  };
  Ok(Identity {
    application_id: read("PRAGMA application_id")?,
    version: read("PRAGMA user_version")?,
    objects: read("SELECT count(*) FROM sqlite_schema")?,
  })
}

/// Refuses a file that belongs to another application or to a newer
/// release; reads only.
pub fn check(connection: &Connection, path: &Path) -> StorageResult<()> {
  let Identity {
    application_id,
    version,
    objects,
  } = identity(connection, path)?;
  let foreign = if application_id == 0 {
    objects > 0
  } else {
    application_id != APPLICATION_ID
  };
  if foreign {
    return Err(StorageError::new(
      StorageErrorKind::Corrupt,
      format!(
        "The storage file {} is a SQLite database of another application, not a fallback-mechanisms one",
        path.display()
      ),
    ));
  }
  if version > VERSION {
    return Err(StorageError::new(
      StorageErrorKind::TooNew,
      format!(
        "The storage file {} has schema version {version}, written by a newer fallback-mechanisms; this release reads versions up to {VERSION}",
        path.display()
      ),
    ));
  }
  Ok(())
}

/// Checks the file again inside the opening transaction (another process
/// may have created it meanwhile), applies the migrations it lacks, and
/// makes sure every table is there.
pub fn migrate(tx: &Transaction, path: &Path) -> StorageResult<()> {
  check(tx, path)?;
  let version = identity(tx, path)?.version;
  for migration in &MIGRATIONS[version as usize..] {
    tx.execute_batch(migration).map_err(|e| at(path, e))?;
  }
  if version == 0 {
    seed_keys(tx).map_err(|e| at(path, e))?;
  }
  // Rows found damaged are moved here, out of the way and visible. Not
  // part of the versioned schema: an older release ignores it.
  tx.execute_batch(DAMAGED_ROWS).map_err(|e| at(path, e))?;
  tx.execute_batch(&format!(
    "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {VERSION};"
  ))
  .map_err(|e| at(path, e))?;
  let names = TABLES.map(|name| format!("'{name}'")).join(", ");
  let present: i64 = tx
    .query_row(
      &format!("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ({names})"),
      [],
      |row| row.get(0),
    )
    .map_err(|e| at(path, e))?;
  if present != TABLES.len() as i64 {
    return Err(StorageError::new(
      StorageErrorKind::Corrupt,
      format!(
        "The storage file {} is damaged: some of its tables ({names}) are missing",
        path.display()
      ),
    ));
  }
  Ok(())
}

/// The random keys of job ids and cache digests, made once per file.
pub(super) fn seed_keys(tx: &Transaction) -> rusqlite::Result<()> {
  let random = RandomState::new();
  let mut insert = tx.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?;
  for (i, key) in [
    "job_id_key_0",
    "job_id_key_1",
    "job_id_key_2",
    "job_id_key_3",
    "cache_seed",
  ]
  .into_iter()
  .enumerate()
  {
    insert.execute(rusqlite::params![key, random.hash_one(i) as i64])?;
  }
  Ok(())
}
