//! The in-memory response cache: an LRU map by key digest, with ordered
//! indexes for expiry, stale entries and live timestamps.
//!
//! Memory: an entry is one allocation holding the prompt and the response
//! text back to back, plus a shared (interned) model id.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;

use lru::LruCache;

use super::entry::{key_digest, CacheConfig, CacheError, CacheHit, CacheStats, EntryText};
use crate::core::clock::add_ms;
use crate::core::storage::error::StorageResult;
use crate::core::storage::free::free;
use crate::core::storage::traits::{CacheStore, Location};

type Digest = u64;

/// The map key is already a good hash; feeding it through SipHash again
/// would only cost time.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
  fn finish(&self) -> u64 {
    self.0
  }
  fn write(&mut self, bytes: &[u8]) {
    for chunk in bytes.chunks(8) {
      let mut buf = [0u8; 8];
      buf[..chunk.len()].copy_from_slice(chunk);
      self.0 ^= u64::from_le_bytes(buf);
    }
  }
  fn write_u64(&mut self, value: u64) {
    self.0 = value;
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
  Live,
  Stale { purge_at: u64 },
}

struct Entry {
  /// The prompt, then the response's JSON text.
  text: Box<str>,
  prompt_len: usize,
  model_id: Arc<str>,
  timestamp: u64,
  expires_at: u64,
  freshness: Freshness,
}

impl Entry {
  fn bytes(&self) -> usize {
    self.text.len()
  }

  fn prompt(&self) -> &str {
    &self.text[..self.prompt_len]
  }

  fn response(&self) -> &str {
    &self.text[self.prompt_len..]
  }

  fn is_key(&self, prompt: &str, model_id: &str) -> bool {
    self.prompt() == prompt && &*self.model_id == model_id
  }

  fn hit(&self) -> CacheHit {
    CacheHit {
      response: self.response().to_owned(),
      timestamp: self.timestamp,
      expires_at: self.expires_at,
      stale: self.freshness != Freshness::Live,
    }
  }
}

pub struct ResponseCache {
  config: CacheConfig,
  seed: u64,
  /// Model ids, shared by the entries that use them.
  model_ids: HashSet<Arc<str>>,
  entries: LruCache<Digest, Entry, BuildHasherDefault<DigestHasher>>,
  /// Live entries by the instant they expire.
  live_expiry: BTreeSet<(u64, Digest)>,
  /// Stale entries by the instant they are dropped; also the first victims
  /// when a bound is reached.
  stale_purge: BTreeSet<(u64, Digest)>,
  /// Multiset of live entries' timestamps, for oldest/newest in O(log n).
  live_timestamps: BTreeMap<u64, u32>,
  live_bytes: usize,
  held_bytes: usize,
  hits: u64,
  misses: u64,
  evictions: u64,
}

impl ResponseCache {
  pub fn new(config: CacheConfig) -> Self {
    Self {
      config,
      seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
      model_ids: HashSet::new(),
      entries: LruCache::unbounded_with_hasher(BuildHasherDefault::default()),
      live_expiry: BTreeSet::new(),
      stale_purge: BTreeSet::new(),
      live_timestamps: BTreeMap::new(),
      live_bytes: 0,
      held_bytes: 0,
      hits: 0,
      misses: 0,
      evictions: 0,
    }
  }

  /// Stores a JSON response. `ttl_ms` of `None` or `0` means the default TTL.
  pub fn set(
    &mut self,
    prompt: &str,
    model_id: &str,
    response: &str,
    ttl_ms: Option<u64>,
    now: u64,
  ) -> Result<(), CacheError> {
    self.set_text(EntryText::new(prompt, response), model_id, ttl_ms, now)
  }
}

impl CacheStore for ResponseCache {
  fn config(&self) -> CacheConfig {
    self.config
  }

  /// New bounds apply at once: whatever no longer fits is evicted, stale
  /// entries first, then least recently used.
  fn set_config(&mut self, config: CacheConfig, now: u64) -> StorageResult<()> {
    self.config = config;
    self.advance(now);
    self.enforce_bounds();
    Ok(())
  }

  /// `set`, with the prompt and response already in one buffer.
  fn set_text(
    &mut self,
    entry_text: EntryText,
    model_id: &str,
    ttl_ms: Option<u64>,
    now: u64,
  ) -> Result<(), CacheError> {
    let EntryText { text, prompt_len } = entry_text;
    let bytes = text.len();
    if bytes > self.config.max_bytes {
      return Err(CacheError::EntryTooLarge {
        bytes,
        max_bytes: self.config.max_bytes,
      });
    }
    self.advance(now);
    let ttl = self.config.ttl(ttl_ms);
    let digest = self.digest(&text[..prompt_len], model_id);
    self.remove(digest);
    let entry = Entry {
      text: text.into_boxed_str(),
      prompt_len,
      model_id: self.intern(model_id),
      timestamp: now,
      expires_at: add_ms(now, ttl),
      freshness: Freshness::Live,
    };
    self.live_expiry.insert((entry.expires_at, digest));
    *self.live_timestamps.entry(entry.timestamp).or_insert(0) += 1;
    self.live_bytes += bytes;
    self.held_bytes += bytes;
    self.entries.push(digest, entry);
    self.enforce_bounds();
    Ok(())
  }

  /// A live entry, or (for the failure path) a stale one kept by
  /// stale-if-error; counted as a hit or a miss.
  fn lookup(
    &mut self,
    prompt: &str,
    model_id: &str,
    now: u64,
    allow_stale: bool,
  ) -> StorageResult<Option<CacheHit>> {
    Ok(self.find(prompt, model_id, now, allow_stale))
  }

  /// Removes the entry for this exact key; true when there was one.
  fn delete(&mut self, prompt: &str, model_id: &str) -> StorageResult<bool> {
    let digest = self.digest(prompt, model_id);
    Ok(match self.entries.peek(&digest) {
      Some(entry) if entry.is_key(prompt, model_id) => self.remove(digest),
      _ => false,
    })
  }

  /// Empties the cache and resets its counters.
  /// Swaps in an empty cache; the old entries are freed on another thread.
  fn clear(&mut self) -> StorageResult<()> {
    let empty = Self {
      seed: self.seed,
      ..Self::new(self.config)
    };
    let old = std::mem::replace(self, empty);
    let items = old.entries.len();
    free(old, items);
    Ok(())
  }

  fn stats(&mut self, now: u64) -> StorageResult<CacheStats> {
    self.advance(now);
    Ok(CacheStats {
      size: self.live_expiry.len(),
      oldest_entry: self.live_timestamps.first_key_value().map(|(t, _)| *t),
      newest_entry: self.live_timestamps.last_key_value().map(|(t, _)| *t),
      hits: self.hits,
      misses: self.misses,
      evictions: self.evictions,
      bytes: self.live_bytes,
    })
  }

  fn location(&self) -> Location<'_> {
    Location::Memory {
      // Never held or counted anything.
      untouched: self.entries.is_empty()
        && self.hits == 0
        && self.misses == 0
        && self.evictions == 0,
    }
  }
}

impl ResponseCache {
  fn intern(&mut self, model_id: &str) -> Arc<str> {
    if let Some(shared) = self.model_ids.get(model_id) {
      return shared.clone();
    }
    let shared: Arc<str> = model_id.into();
    self.model_ids.insert(shared.clone());
    shared
  }

  fn digest(&self, prompt: &str, model_id: &str) -> Digest {
    key_digest(self.seed, prompt, model_id)
  }

  fn find(
    &mut self,
    prompt: &str,
    model_id: &str,
    now: u64,
    allow_stale: bool,
  ) -> Option<CacheHit> {
    self.advance(now);
    let digest = self.digest(prompt, model_id);
    let found = match self.entries.peek(&digest) {
      Some(entry) if entry.is_key(prompt, model_id) => {
        entry.freshness == Freshness::Live || allow_stale
      }
      _ => false,
    };
    if !found {
      self.misses += 1;
      return None;
    }
    self.hits += 1;
    // `get` moves the entry to the most recently used end.
    self.entries.get(&digest).map(Entry::hit)
  }

  /// Moves entries whose TTL has passed out of the live set, and drops stale
  /// ones whose grace has passed. Amortised O(log n) per entry over its life.
  fn advance(&mut self, now: u64) {
    while let Some(&(expires_at, digest)) = self.live_expiry.first() {
      if expires_at >= now {
        break;
      }
      if self.config.stale_if_error_ms == 0 {
        self.remove(digest);
        continue;
      }
      self.live_expiry.pop_first();
      let Some(entry) = self.entries.peek_mut(&digest) else {
        continue;
      };
      let purge_at = add_ms(entry.expires_at, self.config.stale_if_error_ms);
      entry.freshness = Freshness::Stale { purge_at };
      let (bytes, timestamp) = (entry.bytes(), entry.timestamp);
      self.forget_live(timestamp, bytes);
      self.stale_purge.insert((purge_at, digest));
    }
    while let Some(&(purge_at, digest)) = self.stale_purge.first() {
      if purge_at >= now {
        break;
      }
      self.remove(digest);
    }
  }

  fn forget_live(&mut self, timestamp: u64, bytes: usize) {
    if let Some(count) = self.live_timestamps.get_mut(&timestamp) {
      *count -= 1;
      if *count == 0 {
        self.live_timestamps.remove(&timestamp);
      }
    }
    self.live_bytes -= bytes;
  }

  fn remove(&mut self, digest: Digest) -> bool {
    let Some(entry) = self.entries.pop(&digest) else {
      return false;
    };
    let bytes = entry.bytes();
    // The set's copy and this entry's: no other entry uses the model id.
    if Arc::strong_count(&entry.model_id) == 2 {
      self.model_ids.remove(&*entry.model_id);
    }
    match entry.freshness {
      Freshness::Live => {
        self.live_expiry.remove(&(entry.expires_at, digest));
        self.forget_live(entry.timestamp, bytes);
      }
      Freshness::Stale { purge_at } => {
        self.stale_purge.remove(&(purge_at, digest));
      }
    }
    self.held_bytes -= bytes;
    true
  }

  fn enforce_bounds(&mut self) {
    while self.entries.len() > self.config.max_entries || self.held_bytes > self.config.max_bytes {
      let victim = match self.stale_purge.first() {
        Some(&(_, digest)) => digest,
        None => match self.entries.peek_lru() {
          Some((digest, _)) => *digest,
          None => break,
        },
      };
      self.remove(victim);
      self.evictions += 1;
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::cache::conformance;

  #[test]
  fn behaves_like_every_cache_store() {
    conformance::run_all(&mut |_, config| Box::new(ResponseCache::new(config)));
  }

  #[test]
  fn many_entries_stay_consistent() {
    let mut cache = ResponseCache::new(CacheConfig {
      max_entries: 1_000,
      max_bytes: usize::MAX,
      ..CacheConfig::default()
    });
    for i in 0..5_000u64 {
      cache
        .set(&format!("prompt {i}"), "m", "{}", Some(i % 7 + 1), i)
        .unwrap();
    }
    let stats = cache.stats(5_000).unwrap();
    assert!(stats.size <= 1_000);
    assert_eq!(stats.bytes, cache.held_bytes);
  }
}
