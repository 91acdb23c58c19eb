//! The response cache in Redis: every call is one run of `cache.lua`,
//! atomic on the server, so every instance on the prefix sees one cache:
//! the same entries, bounds (the last `set_config` wins) and counters
//! (`hits`, `misses`, `evictions` count every instance's calls, since the
//! last `clear`).
//!
//! An entry's key name is the 128-bit digest of its (prompt, model id)
//! pair; the entry holds the pair, and the script compares it, so a digest
//! collision is a miss (or one key replacing the other), never another
//! key's answer.
//!
//! How close the bounds are to the memory cache's:
//! - Least recently used is exact in the order the server ran the calls:
//!   every `set` and every hit takes the next number of one counter on the
//!   server (not a clock), so instances with skewed clocks still agree on
//!   the order. Stale entries go first (soonest expired first), as in
//!   memory. The price is that a hit is a write on the server.
//! - Bytes are the prompt's and the response's UTF-8 bytes, as in memory
//!   and SQLite, not what Redis spends on them: the model id, the instants,
//!   the key names and Redis's own structures are not counted (about 600
//!   bytes an entry, measured on Redis 7.0 with short prompts: the entry's
//!   hash and its members in four sorted sets). So `maxBytes` bounds the
//!   data, and the server holds that plus about 600 bytes times the
//!   entries.
//! - Expiry follows the `now` of the calls, like everywhere in the core:
//!   instances whose clocks disagree see an entry expire at their own
//!   instant. The default TTL and `staleIfErrorMs` are each instance's own
//!   (as with a SQLite file): an instance without stale-if-error drops
//!   expired entries that another would have kept.
//!
//! Costs: `get`, `set` and `delete` are O(log n) on the server, plus the
//! entries that expire meanwhile (each is moved or dropped once in its
//! life); `stats` reads counters and the ends of sorted sets, O(log n),
//! never a scan; `clear` is O(n), deleting this prefix's cache keys only.
//! A hit takes about 15 µs of the server's time on Redis 7.0 (a `GET`
//! takes 0.1 µs), most of it the script's ~20 commands, seven of them
//! the `TYPE` checks that keep foreign data under the prefix untouched.

use std::sync::Arc;

use redis::Value;

use super::cache_uses::UseBook;
use super::commands::{self, CacheCommand, CACHE_KEYS};
use super::link::RedisLink;
use super::local_copy::Depends;
use super::outbox::{FollowUp, Write, WriteKind};
use crate::core::cache::entry::{
  shared_key_digest, CacheConfig, CacheError, CacheHit, CacheStats, EntryText,
};
use crate::core::clock::add_ms;
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};
use crate::core::storage::sqlite::is_json;
use crate::core::storage::traits::{CacheStore, Location};

#[derive(Clone)]
pub struct RedisCache {
  link: RedisLink,
  head: String,
  /// `KEYS` of every command: the head, then `CACHE_KEYS`.
  keys: Arc<[String]>,
  config: CacheConfig,
  /// Lookups' bookkeeping, sent off the caller's thread; shared with the
  /// detached copies.
  uses: UseBook,
}

impl RedisCache {
  pub fn open(link: RedisLink, config: CacheConfig) -> StorageResult<Self> {
    let head = link.key("c:");
    let keys = commands::keys(&head, &CACHE_KEYS).into();
    let mut cache = Self {
      link,
      head,
      keys,
      config,
      uses: UseBook::default(),
    };
    // The bounds another instance set, if the server is there to say.
    if let Ok(bounds) = cache.call::<Vec<Option<String>>>(CacheCommand::Bound, None, &[]) {
      cache.take_bounds(bounds.first(), bounds.get(1));
    }
    cache.bound_local_copy();
    Ok(cache)
  }

  pub fn link(&self) -> &RedisLink {
    &self.link
  }

  /// One run of `command` at `now` (the caller's clock, as in every core
  /// method; `None` for the commands that do not advance time).
  fn call<T: redis::FromRedisValue + Send + 'static>(
    &self,
    command: CacheCommand,
    now: Option<u64>,
    args: &[&str],
  ) -> StorageResult<T> {
    let args = self.script_args(now, args);
    self.link.command(command.script(), &self.keys, &args)
  }

  /// The commands' arguments: the time, the cache's bounds, then the
  /// command's own.
  fn script_args(&self, now: Option<u64>, args: &[&str]) -> Vec<String> {
    let mut all = uses_head(self.config, now.unwrap_or(0));
    if now.is_none() {
      all[0].clear();
    }
    all.extend(args.iter().map(|arg| arg.to_string()));
    all
  }

  /// The bounds the server holds, as a reply gave them.
  fn take_bounds(
    &mut self,
    max_entries: Option<&Option<String>>,
    max_bytes: Option<&Option<String>>,
  ) {
    let read = |text: Option<&Option<String>>| {
      text
        .and_then(Option::as_deref)
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|&n| n > 0)
    };
    if let Some(n) = read(max_entries) {
      self.config.max_entries = n;
    }
    if let Some(n) = read(max_bytes) {
      self.config.max_bytes = n;
    }
  }

  /// An entry that cannot be served (not this library's shape, or not
  /// JSON): removed if the server lets it be, and reported.
  fn damaged(&self, digest: &str, prompt: &str, model_id: &str) -> StorageError {
    let removed = self
      .call::<i64>(CacheCommand::Damaged, None, &[digest, prompt, model_id])
      .is_ok();
    StorageError::new(
      StorageErrorKind::Corrupt,
      format!(
        "The cache entry for prompt {} and model {} on Redis at {} is damaged: it is not an entry \
         with a JSON response; {}",
        serde_json::Value::from(prompt),
        serde_json::Value::from(model_id),
        self.link.url(),
        if removed {
          "it was removed"
        } else {
          "removing it failed too; the next lookup tries again"
        }
      ),
    )
  }
}

impl RedisCache {
  fn entry_key(&self, digest: &str) -> String {
    format!("{}e:{digest}", self.head)
  }

  /// The local copy holds at most what this cache may hold.
  fn bound_local_copy(&self) {
    let copy = self.link.tracking().copy();
    copy.set_bounds(self.config.max_entries, self.config.max_bytes);
  }

  /// An entry's fields, from the local copy or by one `HMGET`.
  fn read_entry(&self, digest: &str) -> StorageResult<Arc<Value>> {
    let key = self.entry_key(digest);
    let read = key.clone();
    self
      .link
      .tracked_read(&key, Depends::Key, move |mut connection| async move {
        redis::cmd("HMGET")
          .arg(&read)
          .arg(&["p", "m", "r", "t", "x"])
          .query_async::<Value>(&mut connection)
          .await
      })
  }

  /// Counts a lookup made at `now`, off the caller's thread.
  fn note_use(&self, hit: Option<&str>, now: u64) {
    if !self.uses.note(hit, now) {
      return;
    }
    let (book, link, keys) = (self.uses.clone(), self.link.clone(), Arc::clone(&self.keys));
    let config = self.config;
    self.link.spawn(book.send_later(move |uses| {
      let (link, keys) = (link.clone(), Arc::clone(&keys));
      async move {
        let mut args = uses_head(config, uses.now);
        args.extend(uses.args());
        let _: StorageResult<Value> = link
          .command_async(CacheCommand::Uses.script(), &keys, &args)
          .await;
      }
    }));
  }

  /// Around a write to `digest`'s entry: the local copy forgets it.
  fn changing(&self, digest: &str) {
    self.link.changing(&self.entry_key(digest));
  }
}

/// What a lookup makes of an entry's fields (prompt, model id, response,
/// timestamp, expiry): the hit, or `None`, decided by the entry's own
/// expiry; `Err(())` when the entry is not one this library wrote.
fn decide(
  fields: &Value,
  prompt: &str,
  model_id: &str,
  now: u64,
  allow_stale: bool,
  stale_if_error_ms: u64,
) -> Result<Option<CacheHit>, ()> {
  let Value::Array(fields) = fields else {
    return Err(());
  };
  // Read in place: a warm hit copies the response once, nothing else.
  let bytes = |i: usize| match fields.get(i) {
    Some(Value::BulkString(bytes)) => Some(bytes.as_slice()),
    _ => None,
  };
  let (Some(response), Some(timestamp), Some(expires_at)) = (bytes(2), bytes(3), bytes(4)) else {
    return Ok(None);
  };
  if bytes(0) != Some(prompt.as_bytes()) || bytes(1) != Some(model_id.as_bytes()) {
    return Ok(None);
  }
  let number = |t: &[u8]| {
    std::str::from_utf8(t)
      .ok()
      .and_then(|t| t.parse::<u64>().ok())
      .ok_or(())
  };
  let (timestamp, expires_at) = (number(timestamp)?, number(expires_at)?);
  let stale = expires_at < now;
  let purge_before = now.saturating_sub(stale_if_error_ms);
  if stale && !(allow_stale && expires_at >= purge_before) {
    return Ok(None);
  }
  let response = std::str::from_utf8(response).map_err(drop)?;
  if !is_json(response) {
    return Err(());
  }
  let response = response.to_string();
  Ok(Some(CacheHit {
    response,
    timestamp,
    expires_at,
    stale,
  }))
}

/// The arguments every cache command starts with (see `script_args`).
fn uses_head(config: CacheConfig, now: u64) -> Vec<String> {
  vec![
    now.to_string(),
    now.saturating_sub(config.stale_if_error_ms).to_string(),
    config.max_entries.to_string(),
    config.max_bytes.to_string(),
  ]
}

/// Whether `set_bound` or `enforce` replied that more entries must go
/// (their reply is `{evicted, more}`).
fn more_to_evict(reply: &Value) -> Option<Option<String>> {
  let Value::Array(pair) = reply else {
    return None;
  };
  (pair.get(1) == Some(&Value::Int(1))).then_some(None)
}

/// The name of a key's entry: its shared digest in hex.
fn digest_name(prompt: &str, model_id: &str) -> String {
  format!("{:032x}", shared_key_digest(prompt, model_id))
}

impl CacheStore for RedisCache {
  fn config(&self) -> CacheConfig {
    self.config
  }

  /// The bounds become the server's, for every instance on the prefix.
  fn set_config(&mut self, config: CacheConfig, now: u64) -> StorageResult<()> {
    let previous = std::mem::replace(&mut self.config, config);
    let (entries, bytes) = (config.max_entries.to_string(), config.max_bytes.to_string());
    // The lookups before count before anything is evicted.
    let uses = self.uses.settle(self.link.timeout()).args();
    let mut bounds = vec![entries.as_str(), &bytes];
    bounds.extend(uses.iter().map(String::as_str));
    let bounds = bounds.as_slice();
    let sent = self
      .call::<(u64, u64)>(CacheCommand::SetBound, Some(now), bounds)
      .and_then(|(_, mut more)| {
        // What no longer fits goes a batch per run.
        while more == 1 {
          more = self
            .call::<(u64, u64)>(CacheCommand::Enforce, Some(now), &[])?
            .1;
        }
        Ok(())
      });
    // Asked for while the server is away: used here at once, and stored
    // for every instance when it answers.
    let outcome = self.link.sent_or_kept(sent, || {
      let args = self.script_args(Some(now), bounds);
      let script = CacheCommand::SetBound.script();
      let enforce = FollowUp {
        script: CacheCommand::Enforce.script(),
        args: self.script_args(Some(now), &[]),
        more: more_to_evict,
      };
      Write::new(script, self.keys.to_vec(), args, WriteKind::Bound, 0).then(enforce)
    });
    if outcome.is_err() {
      self.config = previous;
    }
    self.bound_local_copy();
    outcome
  }

  fn set_text(
    &mut self,
    entry: EntryText,
    model_id: &str,
    ttl_ms: Option<u64>,
    now: u64,
  ) -> Result<(), CacheError> {
    let (prompt, response) = (entry.prompt(), entry.response());
    let ttl = self.config.ttl(ttl_ms);
    let digest = digest_name(prompt, model_id);
    let expires_at = add_ms(now, ttl).to_string();
    let uses = self.uses.settle(self.link.timeout()).args();
    let mut args = vec![digest.as_str(), prompt, model_id, response, &expires_at];
    args.extend(uses.iter().map(String::as_str));
    // The server checks the size against its bound (which another instance
    // may have changed), so an oversized entry costs a round trip too.
    self.changing(&digest);
    let reply: Result<Vec<Option<String>>, _> = self.call(CacheCommand::Set, Some(now), &args);
    self.changing(&digest);
    let reply = reply.map_err(CacheError::Storage)?;
    let word = reply.first().cloned().flatten();
    match word.as_deref() {
      Some("OK") => {
        self.take_bounds(reply.get(1), reply.get(2));
        Ok(())
      }
      Some("TOO_LARGE") => {
        self.take_bounds(None, reply.get(1));
        Err(CacheError::EntryTooLarge {
          bytes: prompt.len() + response.len(),
          max_bytes: self.config.max_bytes,
        })
      }
      _ => Err(CacheError::Storage(StorageError::new(
        StorageErrorKind::Corrupt,
        format!(
          "Redis at {}: an unexpected reply to a cache write",
          self.link.url()
        ),
      ))),
    }
  }

  fn lookup(
    &mut self,
    prompt: &str,
    model_id: &str,
    now: u64,
    allow_stale: bool,
  ) -> StorageResult<Option<CacheHit>> {
    let digest = digest_name(prompt, model_id);
    let fields = self.read_entry(&digest)?;
    let stale_if_error_ms = self.config.stale_if_error_ms;
    match decide(
      &fields,
      prompt,
      model_id,
      now,
      allow_stale,
      stale_if_error_ms,
    ) {
      Ok(found) => {
        self.note_use(found.as_ref().map(|_| digest.as_str()), now);
        Ok(found)
      }
      Err(()) => Err(self.damaged(&digest, prompt, model_id)),
    }
  }

  fn delete(&mut self, prompt: &str, model_id: &str) -> StorageResult<bool> {
    let digest = digest_name(prompt, model_id);
    self.changing(&digest);
    let deleted = self.call::<i64>(CacheCommand::Delete, None, &[&digest, prompt, model_id]);
    self.changing(&digest);
    deleted.map(|n| n == 1)
  }

  /// In runs of a few thousand entries (each one round trip), so a large
  /// cache never holds the server for long; other instances may see it
  /// half empty meanwhile.
  fn clear(&mut self) -> StorageResult<()> {
    // Lookups made before the clear are not counted after it.
    drop(self.uses.settle(self.link.timeout()));
    self.link.changing_all();
    let cleared = (|| {
      while self.call::<i64>(CacheCommand::Clear, None, &[])? == 0 {}
      Ok(())
    })();
    self.link.changing_all();
    cleared
  }

  fn stats(&mut self, now: u64) -> StorageResult<CacheStats> {
    // This instance's lookups not yet counted go with the read.
    let uses = self.uses.settle(self.link.timeout()).args();
    let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
    let reply: Vec<Option<String>> = self.call(CacheCommand::Stats, Some(now), &uses)?;
    let number = |i: usize| {
      reply
        .get(i)
        .and_then(Option::as_deref)
        .and_then(|t| t.parse::<f64>().ok())
        .map(|n| n.max(0.0) as u64)
    };
    let stats = CacheStats {
      size: number(0).unwrap_or(0) as usize,
      oldest_entry: number(1),
      newest_entry: number(2),
      hits: number(3).unwrap_or(0),
      misses: number(4).unwrap_or(0),
      evictions: number(5).unwrap_or(0),
      bytes: number(6).unwrap_or(0) as usize,
    };
    self.take_bounds(reply.get(7), reply.get(8));
    Ok(stats)
  }

  fn detached(&self) -> Option<Box<dyn CacheStore>> {
    Some(Box::new(self.clone()))
  }

  fn location(&self) -> Location<'_> {
    Location::Redis(self.link.place())
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::cache::conformance::{self, bounded, response, set};
  use crate::core::storage::redis::test_server::{self, TestServer};

  fn cache(server: &TestServer, prefix: &str, config: CacheConfig) -> RedisCache {
    RedisCache::open(server.link(prefix), config).unwrap()
  }

  /// A raw command on the cache's server, past the script.
  fn raw<T: redis::FromRedisValue + Send + 'static>(cache: &RedisCache, args: &[&str]) -> T {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
      command.arg(*arg);
    }
    cache
      .link()
      .run(move |mut connection| async move { command.query_async(&mut connection).await })
      .unwrap()
  }

  fn entry_key(cache: &RedisCache, prompt: &str, model_id: &str) -> String {
    format!("{}e:{}", cache.head, digest_name(prompt, model_id))
  }

  #[test]
  fn behaves_like_every_cache_store() {
    let server = TestServer::start();
    conformance::run_all(&mut |name, config| Box::new(cache(&server, name, config)));
  }

  #[test]
  fn a_digest_collision_is_a_miss_never_another_answer() {
    let server = TestServer::start();
    let mut c = cache(&server, "collision", CacheConfig::default());
    set(&mut c, "y", "m", "\"y's\"", None, 0);
    // As if ("x", "m") had the digest of ("y", "m"): its entry sits where
    // ("y", "m") looks.
    let key = entry_key(&c, "y", "m");
    raw::<i64>(&c, &["HSET", &key, "p", "x"]);
    assert_eq!(response(&mut c, "y", "m", 1), None);
    assert!(!c.delete("y", "m").unwrap());
    // Setting the key replaces the colliding entry.
    set(&mut c, "y", "m", "2", None, 2);
    assert_eq!(response(&mut c, "y", "m", 3).as_deref(), Some("2"));
    let stats = c.stats(3).unwrap();
    assert_eq!((stats.size, stats.bytes), (1, 2));
  }

  #[test]
  fn counters_and_entries_are_shared_by_instances() {
    let server = TestServer::start();
    let mut a = cache(&server, "shared", CacheConfig::default());
    let mut b = cache(&server, "shared", CacheConfig::default());
    // Real instants, up to the largest a Date holds, keep every digit.
    let (t, max) = (1_700_000_000_123, crate::core::clock::MAX_DATE_MS);
    set(&mut a, "p", "m", "\"answer\"", Some(max - t), t);
    set(&mut a, "q", "m", "1", None, max);
    let hit = b.get("p", "m", max).unwrap().unwrap();
    assert_eq!(hit.response, "\"answer\"");
    assert_eq!((hit.timestamp, hit.expires_at), (t, max));
    assert!(response(&mut a, "nope", "m", max).is_none());
    // An instance's lookups are counted once they are sent: off its
    // thread, or with its own stats (or set).
    b.stats(max).unwrap();
    let expected = CacheStats {
      size: 2,
      oldest_entry: Some(t),
      newest_entry: Some(max),
      hits: 1,
      misses: 1,
      evictions: 0,
      bytes: 1 + 8 + 1 + 1,
    };
    assert_eq!(a.stats(max).unwrap(), expected);
    assert_eq!(b.stats(max).unwrap(), expected);
    // Another prefix is another cache.
    let mut other = cache(&server, "shared-not", CacheConfig::default());
    assert_eq!(other.stats(max).unwrap(), CacheStats::default());
  }

  #[test]
  fn clear_empties_and_resets_this_prefix_only() {
    let server = TestServer::start();
    let mut c = cache(&server, "clear", bounded(2, usize::MAX, 0));
    let mut neighbour = cache(&server, "clear-not", CacheConfig::default());
    set(&mut neighbour, "p", "m", "1", None, 0);
    raw::<()>(&c, &["SET", &c.link().key("q:mine"), "kept"]);
    for (i, prompt) in ["a", "b", "c"].into_iter().enumerate() {
      set(&mut c, prompt, "m", "1", None, i as u64);
    }
    response(&mut c, "c", "m", 3);
    response(&mut c, "a", "m", 3);
    assert_ne!(c.stats(3).unwrap(), CacheStats::default());
    c.clear().unwrap();
    assert_eq!(c.stats(3).unwrap(), CacheStats::default());
    assert!(response(&mut c, "c", "m", 4).is_none());
    let keys: Vec<String> = raw(&c, &["KEYS", &format!("{}*", c.head)]);
    assert_eq!(keys, vec![format!("{}tot", c.head)], "only the new miss");
    let kept: String = raw(&c, &["GET", &c.link().key("q:mine")]);
    assert_eq!(kept, "kept");
    assert_eq!(response(&mut neighbour, "p", "m", 4).as_deref(), Some("1"));
    // The bound stays.
    for prompt in ["a", "b", "c"] {
      set(&mut c, prompt, "m", "1", None, 5);
    }
    assert_eq!(c.stats(5).unwrap().size, 2);
  }

  #[test]
  fn bounds_are_shared_by_instances() {
    let server = TestServer::start();
    let mut a = cache(&server, "bounds", CacheConfig::default());
    let mut b = cache(&server, "bounds", CacheConfig::default());
    let lower = CacheConfig {
      max_entries: 3,
      ..a.config()
    };
    a.set_config(lower, 0).unwrap();
    for i in 0..5 {
      set(&mut b, &format!("p{i}"), "m", "1", None, i);
    }
    assert_eq!(
      b.config().max_entries,
      3,
      "the server's bound, read by a set"
    );
    assert_eq!(b.stats(5).unwrap().size, 3);
    // An instance opened later starts with it.
    let later = cache(&server, "bounds", CacheConfig::default());
    assert_eq!(later.config().max_entries, 3);
  }

  #[test]
  fn foreign_data_under_the_prefix_is_corrupt_and_left_alone() {
    let server = TestServer::start();
    let mut c = cache(&server, "foreign", CacheConfig::default());
    set(&mut c, "p", "m", "1", None, 0);
    let stale = c.link().key("c:stale");
    raw::<()>(&c, &["SET", &stale, "not yours"]);
    let corrupt = |error: StorageError| {
      assert_eq!(error.kind, StorageErrorKind::Corrupt, "{}", error.message);
    };
    match c.set_text(EntryText::new("q", "2"), "m", None, 1) {
      Err(CacheError::Storage(error)) => corrupt(error),
      other => panic!("{other:?}"),
    }
    // A lookup reads the entry alone, so it is still served; its
    // bookkeeping waits for the prefix to be this library's again.
    assert_eq!(response(&mut c, "p", "m", 1).as_deref(), Some("1"));
    corrupt(c.delete("p", "m").unwrap_err());
    corrupt(c.stats(1).unwrap_err());
    corrupt(c.clear().unwrap_err());
    let lower = CacheConfig {
      max_entries: 1,
      ..c.config()
    };
    corrupt(c.set_config(lower, 1).unwrap_err());
    assert_eq!(c.config().max_entries, CacheConfig::default().max_entries);
    assert_eq!(c.link().status().reachable, Some(true));
    // Nothing was touched: the foreign value, and the cache as it was.
    assert_eq!(raw::<String>(&c, &["GET", &stale]), "not yours");
    raw::<()>(&c, &["DEL", &stale]);
    let stats = c.stats(1).unwrap();
    assert_eq!((stats.size, stats.hits, stats.misses), (1, 0, 0));
    assert_eq!(response(&mut c, "p", "m", 1).as_deref(), Some("1"));

    // Foreign data where an entry would go.
    let key = entry_key(&c, "q", "m");
    raw::<()>(&c, &["SET", &key, "not yours either"]);
    assert!(c
      .set_text(EntryText::new("q", "2"), "m", None, 2)
      .is_err_and(|e| matches!(e, CacheError::Storage(e) if e.kind == StorageErrorKind::Corrupt)));
    corrupt(c.get("q", "m", 2).unwrap_err());
    assert_eq!(raw::<String>(&c, &["GET", &key]), "not yours either");
    assert_eq!(c.stats(2).unwrap().size, 1);
  }

  #[test]
  fn a_damaged_entry_is_reported_then_gone() {
    let server = TestServer::start();
    let mut c = cache(&server, "damaged", CacheConfig::default());
    set(&mut c, "p", "m", "1", None, 0);
    raw::<i64>(&c, &["HSET", &entry_key(&c, "p", "m"), "r", "{not json"]);
    let error = c.get("p", "m", 1).unwrap_err();
    assert_eq!(error.kind, StorageErrorKind::Corrupt);
    assert!(
      error.message.contains("it was removed"),
      "{}",
      error.message
    );
    assert!(c.get("p", "m", 1).unwrap().is_none());
    let stats = c.stats(1).unwrap();
    assert_eq!((stats.size, stats.hits, stats.misses), (0, 0, 2));
  }

  #[test]
  fn many_entries_stay_consistent() {
    let server = TestServer::start();
    let mut c = cache(&server, "many", bounded(50, 400, 20));
    for i in 0..500u64 {
      set(
        &mut c,
        &format!("prompt {i}"),
        "m",
        "{}",
        Some(i % 7 + 1),
        i,
      );
      if i % 3 == 0 {
        c.get_for_fallback(&format!("prompt {}", i / 2), "m", i)
          .unwrap();
      }
    }
    let stats = c.stats(500).unwrap();
    assert!(stats.size <= 50);
    assert!(stats.bytes <= 400);
    let held: usize = raw(&c, &["ZCARD", &c.link().key("c:used")]);
    let entries: Vec<String> = raw(&c, &["KEYS", &format!("{}e:*", c.head)]);
    assert_eq!(entries.len(), held, "every entry is indexed");
    let live: usize = raw(&c, &["ZCARD", &c.link().key("c:live")]);
    assert_eq!(live, stats.size);
    // Long after: everything expired and past its grace.
    let stats = c.stats(10_000).unwrap();
    assert_eq!((stats.size, stats.bytes, stats.oldest_entry), (0, 0, None));
    let held: usize = raw(&c, &["ZCARD", &c.link().key("c:used")]);
    assert_eq!(held, 0);
  }

  #[test]
  fn an_unreachable_server_is_unavailable_within_the_timeout() {
    let (_runtime, link) = TestServer::unreachable(200);
    let mut c = RedisCache::open(link, CacheConfig::default()).unwrap();
    let started = std::time::Instant::now();
    let error = c.get("p", "m", 0).unwrap_err();
    assert_eq!(error.kind, StorageErrorKind::Unavailable);
    assert!(
      !error.message.contains(test_server::PASSWORD),
      "{}",
      error.message
    );
    match c.set_text(EntryText::new("p", "1"), "m", None, 0) {
      Err(CacheError::Storage(error)) => assert_eq!(error.kind, StorageErrorKind::Unavailable),
      other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
    assert_eq!(c.link().status().reachable, Some(false));
    assert!(c.link().url().contains(":***@"));
    assert_eq!(c.location(), Location::Redis(c.link().place()));
  }
}
