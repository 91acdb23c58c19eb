//! The response cache in the file. Entries past their TTL and grace are
//! reclaimed through the expiry index as time passes, never by a scan; the
//! totals the bounds need are kept by triggers. Hit, miss and eviction
//! counters belong to this connection (this process), like `getStats`'s
//! counters of a memory cache.

use std::path::Path;

use rusqlite::{params, OptionalExtension, Transaction};

use super::database::{
  delete_all, int, is_json, quarantine, read_bounds, store_bounds, Database, FileOptions,
  SharedBounds,
};
use crate::core::cache::entry::{
  key_digest, CacheConfig, CacheError, CacheHit, CacheStats, EntryText,
};
use crate::core::clock::add_ms;
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};
use crate::core::storage::traits::{CacheStore, Location};

pub struct SqliteCache {
  db: Database,
  config: CacheConfig,
  seed: u64,
  hits: u64,
  misses: u64,
  evictions: u64,
}

impl SqliteCache {
  pub fn open(
    path: &Path,
    options: impl Into<FileOptions>,
    config: CacheConfig,
  ) -> StorageResult<Self> {
    let mut db = Database::open(path, options)?;
    let seed = db.meta("cache_seed")?;
    let config = db.read(|tx| read_bounds(tx, config, bounds))?;
    Ok(Self {
      db,
      config,
      seed,
      hits: 0,
      misses: 0,
      evictions: 0,
    })
  }
}

/// The cache's bounds every process on the file shares.
fn bounds(config: &mut CacheConfig) -> SharedBounds<'_, 2> {
  [
    ("bound_cache_max_entries", &mut config.max_entries),
    ("bound_cache_max_bytes", &mut config.max_bytes),
  ]
}

/// Entries expired before this instant are past their grace too.
fn purge_before(config: &CacheConfig, now: u64) -> i64 {
  int(now.saturating_sub(config.stale_if_error_ms))
}

/// Whether `advance` has anything to do: two index probes.
fn due(tx: &Transaction, config: &CacheConfig, now: u64) -> rusqlite::Result<bool> {
  tx.prepare_cached(
    "SELECT EXISTS (SELECT 1 FROM cache_entries WHERE stale = 0 AND expires_at < ?1) \
     OR EXISTS (SELECT 1 FROM cache_entries WHERE stale = 1 AND expires_at < ?2)",
  )?
  .query_row(params![int(now), purge_before(config, now)], |row| {
    row.get(0)
  })
}

/// Drops entries whose TTL and stale-if-error grace have both passed, and
/// marks the ones past their TTL only as stale.
fn advance(tx: &Transaction, config: &CacheConfig, now: u64) -> rusqlite::Result<()> {
  if !due(tx, config, now)? {
    return Ok(());
  }
  let before = purge_before(config, now);
  for stale in [0, 1] {
    tx.prepare_cached("DELETE FROM cache_entries WHERE stale = ?1 AND expires_at < ?2")?
      .execute(params![stale, before])?;
  }
  tx.prepare_cached("UPDATE cache_entries SET stale = 1 WHERE stale = 0 AND expires_at < ?1")?
    .execute([int(now)])?;
  Ok(())
}

/// Evicts until the bounds hold: stale entries first (soonest expired
/// first), then least recently used. Returns how many went.
fn enforce_bounds(tx: &Transaction, config: &CacheConfig) -> rusqlite::Result<u64> {
  let mut evicted = 0;
  loop {
    let (entries, bytes): (i64, i64) = tx
      .prepare_cached("SELECT entries, bytes FROM cache_totals")?
      .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    if entries as u64 <= config.max_entries as u64 && bytes as u64 <= config.max_bytes as u64 {
      return Ok(evicted);
    }
    let victim: Option<i64> = tx
      .prepare_cached(
        "SELECT rowid FROM cache_entries WHERE stale = 1 ORDER BY expires_at LIMIT 1",
      )?
      .query_row([], |row| row.get(0))
      .optional()?;
    let victim = match victim {
      Some(rowid) => Some(rowid),
      None => tx
        .prepare_cached("SELECT rowid FROM cache_entries ORDER BY used LIMIT 1")?
        .query_row([], |row| row.get(0))
        .optional()?,
    };
    let Some(rowid) = victim else {
      return Ok(evicted);
    };
    tx.prepare_cached("DELETE FROM cache_entries WHERE rowid = ?1")?
      .execute([rowid])?;
    evicted += 1;
  }
}

/// An entry as a lookup sees it: its row, what a hit hands out, and when
/// it was last used.
struct Found {
  rowid: i64,
  hit: CacheHit,
  used: i64,
}

fn find(
  tx: &Transaction,
  digest: u64,
  prompt: &str,
  model_id: &str,
) -> rusqlite::Result<Option<Found>> {
  tx.prepare_cached(
    "SELECT rowid, response, created_at, expires_at, stale, used FROM cache_entries \
     WHERE digest = ?1 AND model_id = ?2 AND prompt = ?3",
  )?
  .query_row(params![digest as i64, model_id, prompt], |row| {
    Ok(Found {
      rowid: row.get(0)?,
      hit: CacheHit {
        response: row.get(1)?,
        timestamp: row.get::<_, i64>(2)?.max(0) as u64,
        expires_at: row.get::<_, i64>(3)?.max(0) as u64,
        stale: row.get(4)?,
      },
      used: row.get(5)?,
    })
  })
  .optional()
}

/// Removes the entry for this exact key; true when there was one.
fn delete_key(
  tx: &Transaction,
  digest: u64,
  prompt: &str,
  model_id: &str,
) -> rusqlite::Result<bool> {
  tx.prepare_cached(
    "DELETE FROM cache_entries WHERE digest = ?1 AND model_id = ?2 AND prompt = ?3",
  )?
  .execute(params![digest as i64, model_id, prompt])
  .map(|deleted| deleted > 0)
}

/// Whether an entry was used recently enough that its use need not be
/// recorded: fewer uses have been recorded since than a quarter of the
/// entries, so it is among the most recently used quarter and three
/// quarters of the cache go before it in eviction order. Such a hit needs
/// no write (and no write lock shared with other processes). This makes
/// the file cache's LRU approximate: within that quarter, entries keep the
/// order of their earlier uses, and one `set` that evicts more than three
/// quarters of the entries at once (a large entry under `maxBytes`) can
/// take one that exact LRU would keep.
fn recently_used(tx: &Transaction, used: i64) -> rusqlite::Result<bool> {
  tx.prepare_cached(
    "SELECT (SELECT max(used) FROM cache_entries) - ?1 < (SELECT entries FROM cache_totals) / 4",
  )?
  .query_row([used], |row| row.get(0))
}

/// What a lookup found, and whether it still has to record the use.
enum Lookup {
  Done(Option<CacheHit>),
  RecordUse,
  /// The entry's response is not JSON: the row (`rowid`) is damaged.
  Damaged(i64),
}

const COLUMNS: &str =
  "digest, model_id, prompt, response, bytes, created_at, expires_at, used, stale";

impl SqliteCache {
  fn find(
    &mut self,
    prompt: &str,
    model_id: &str,
    now: u64,
    allow_stale: bool,
  ) -> StorageResult<Option<CacheHit>> {
    let digest = key_digest(self.seed, prompt, model_id);
    let config = self.config;
    let servable = |found: Option<Found>| found.filter(|f| allow_stale || !f.hit.stale);
    let record_use = |tx: &Transaction, rowid: i64| {
      tx.prepare_cached(
        "UPDATE cache_entries SET used = (SELECT max(used) FROM cache_entries) + 1 WHERE rowid = ?1",
      )?
      .execute([rowid])
    };
    // One deferred transaction: a miss, or a hit on a recently used entry,
    // reads only; any other hit records its use there, becoming a write
    // only then. When another process holds the write lock (SQLITE_BUSY),
    // the hit is served without recording its use rather than waiting:
    // a read never waits for a writer.
    let quick = self.db.read(|tx| {
      if due(tx, &config, now)? {
        return Ok(Lookup::RecordUse);
      }
      let Some(found) = servable(find(tx, digest, prompt, model_id)?) else {
        return Ok(Lookup::Done(None));
      };
      if !is_json(&found.hit.response) {
        return Ok(Lookup::Damaged(found.rowid));
      }
      if recently_used(tx, found.used)? {
        return Ok(Lookup::Done(Some(found.hit)));
      }
      match record_use(tx, found.rowid) {
        Ok(_) => Ok(Lookup::Done(Some(found.hit))),
        Err(error) if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
          Ok(Lookup::Done(Some(found.hit)))
        }
        Err(error) => Err(error),
      }
    })?;
    let hit = match quick {
      Lookup::Done(hit) => hit,
      Lookup::RecordUse => match self.db.write(|tx| {
        advance(tx, &config, now)?;
        let Some(found) = servable(find(tx, digest, prompt, model_id)?) else {
          return Ok(Lookup::Done(None));
        };
        if !is_json(&found.hit.response) {
          return Ok(Lookup::Damaged(found.rowid));
        }
        record_use(tx, found.rowid)?;
        Ok(Lookup::Done(Some(found.hit)))
      })? {
        Lookup::Damaged(rowid) => return Err(self.damaged(rowid, prompt, model_id, now)),
        Lookup::Done(hit) => hit,
        Lookup::RecordUse => None,
      },
      Lookup::Damaged(rowid) => return Err(self.damaged(rowid, prompt, model_id, now)),
    };
    match hit {
      Some(_) => self.hits += 1,
      None => self.misses += 1,
    }
    Ok(hit)
  }
}

impl SqliteCache {
  /// A damaged entry: moved to `damaged_rows` (if the file can be written
  /// now; otherwise the next lookup tries again), and reported.
  fn damaged(&mut self, rowid: i64, prompt: &str, model_id: &str, now: u64) -> StorageError {
    let key = serde_json::json!({ "prompt": prompt, "modelId": model_id }).to_string();
    let reason = "the cached response is not valid JSON";
    let moved = self
      .db
      .write(|tx| quarantine(tx, "cache_entries", COLUMNS, rowid, &key, reason, now))
      .is_ok();
    self.misses += 1;
    StorageError::new(
      StorageErrorKind::Corrupt,
      format!(
        "The cache entry for prompt {} and model {} in the storage file {} is damaged: {reason}; {}",
        serde_json::Value::from(prompt),
        serde_json::Value::from(model_id),
        self.db.path().display(),
        if moved {
          "it was moved to the damaged_rows table"
        } else {
          "it will be moved to the damaged_rows table"
        }
      ),
    )
  }
}

impl CacheStore for SqliteCache {
  fn config(&self) -> CacheConfig {
    self.config
  }

  fn set_config(&mut self, config: CacheConfig, now: u64) -> StorageResult<()> {
    // Asked for: these bounds become the file's, for every process.
    let evicted = self.db.write(|tx| {
      store_bounds(tx, config, bounds)?;
      advance(tx, &config, now)?;
      enforce_bounds(tx, &config)
    })?;
    self.evictions += evicted;
    self.config = config;
    Ok(())
  }

  fn set_text(
    &mut self,
    entry: EntryText,
    model_id: &str,
    ttl_ms: Option<u64>,
    now: u64,
  ) -> Result<(), CacheError> {
    let (prompt, response) = (entry.prompt(), entry.response());
    let bytes = prompt.len() + response.len();
    let config = self.config;
    if bytes > config.max_bytes {
      return Err(CacheError::EntryTooLarge {
        bytes,
        max_bytes: config.max_bytes,
      });
    }
    let ttl = config.ttl(ttl_ms);
    let digest = key_digest(self.seed, prompt, model_id);
    let (evicted, config) = self
      .db
      .write(|tx| {
        // The file's bounds, as another process may have set them since.
        let config = read_bounds(tx, config, bounds)?;
        advance(tx, &config, now)?;
        delete_key(tx, digest, prompt, model_id)?;
        tx.prepare_cached(
          "INSERT INTO cache_entries (digest, model_id, prompt, response, bytes, created_at, expires_at, used) \
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, (SELECT coalesce(max(used), 0) + 1 FROM cache_entries))",
        )?
        .execute(params![
          digest as i64,
          model_id,
          prompt,
          response,
          bytes as i64,
          int(now),
          int(add_ms(now, ttl))
        ])?;
        Ok((enforce_bounds(tx, &config)?, config))
      })
      .map_err(CacheError::Storage)?;
    self.evictions += evicted;
    self.config = config;
    Ok(())
  }

  fn lookup(
    &mut self,
    prompt: &str,
    model_id: &str,
    now: u64,
    allow_stale: bool,
  ) -> StorageResult<Option<CacheHit>> {
    self.find(prompt, model_id, now, allow_stale)
  }

  fn delete(&mut self, prompt: &str, model_id: &str) -> StorageResult<bool> {
    let digest = key_digest(self.seed, prompt, model_id);
    self.db.write(|tx| delete_key(tx, digest, prompt, model_id))
  }

  /// Empties the table in one transaction, its pages dropped whole
  /// (`delete_all`): ~650 ms became ~35 ms at 200k entries.
  fn clear(&mut self) -> StorageResult<()> {
    self.db.write(|tx| {
      delete_all(
        tx,
        "cache_entries",
        "cache_count_out",
        "UPDATE cache_totals SET entries = 0, bytes = 0, live_entries = 0, live_bytes = 0",
      )
    })?;
    (self.hits, self.misses, self.evictions) = (0, 0, 0);
    Ok(())
  }

  fn stats(&mut self, now: u64) -> StorageResult<CacheStats> {
    let config = self.config;
    let read = |tx: &Transaction| {
      let (size, bytes) = tx
        .prepare_cached("SELECT live_entries, live_bytes FROM cache_totals")?
        .query_row([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?;
      let age = |sql: &str| -> rusqlite::Result<Option<u64>> {
        tx.prepare_cached(sql)?
          .query_row([], |row| row.get::<_, i64>(0))
          .optional()
          .map(|t| t.map(|t| t.max(0) as u64))
      };
      let oldest =
        age("SELECT created_at FROM cache_entries INDEXED BY cache_live_by_age WHERE stale = 0 ORDER BY created_at LIMIT 1")?;
      let newest = age(
        "SELECT created_at FROM cache_entries INDEXED BY cache_live_by_age WHERE stale = 0 \
           ORDER BY created_at DESC LIMIT 1",
      )?;
      Ok((size, oldest, newest, bytes))
    };
    let (size, oldest, newest, bytes) = self.db.read_current(
      |tx| due(tx, &config, now),
      |tx| advance(tx, &config, now),
      read,
    )?;
    Ok(CacheStats {
      size: size.max(0) as usize,
      oldest_entry: oldest,
      newest_entry: newest,
      hits: self.hits,
      misses: self.misses,
      evictions: self.evictions,
      bytes: bytes.max(0) as usize,
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
