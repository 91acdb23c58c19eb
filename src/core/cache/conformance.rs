//! What every cache store does alike (in memory, in SQLite, on Redis), as
//! cases each store's tests run on fresh stores of its own kind.

use super::entry::{
  CacheConfig, CacheError, CacheStats, EntryText, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES,
  DEFAULT_TTL_MS,
};
use crate::core::storage::traits::CacheStore;

/// Opens a fresh, empty store named after a case, with a config.
pub type Open<'a> = &'a mut dyn FnMut(&str, CacheConfig) -> Box<dyn CacheStore>;

/// Runs every case on a store of its own. The case running is printed
/// first, so a failure says which.
pub fn run_all(open: Open<'_>) {
  for (name, config, case) in CASES {
    eprintln!("cache store case: {name}");
    case(&mut *open(name, *config));
  }
}

type Case = (&'static str, CacheConfig, fn(&mut dyn CacheStore));

/// A config with these bounds and the default TTL.
pub const fn bounded(max_entries: usize, max_bytes: usize, stale_if_error_ms: u64) -> CacheConfig {
  CacheConfig {
    max_entries,
    max_bytes,
    default_ttl_ms: DEFAULT_TTL_MS,
    stale_if_error_ms,
  }
}

const DEFAULT: CacheConfig = bounded(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES, 0);

const CASES: &[Case] = &[
  ("exact-pair", DEFAULT, exact_pair_is_the_key),
  ("ttl", DEFAULT, default_ttl_and_explicit_ttl),
  ("counts", DEFAULT, counts_hits_misses_and_bytes),
  (
    "oldest-newest",
    DEFAULT,
    oldest_and_newest_follow_live_entries,
  ),
  (
    "lru",
    bounded(2, usize::MAX, 0),
    least_recently_used_goes_first,
  ),
  (
    "bytes",
    bounded(100, 10, 0),
    byte_bound_evicts_and_refuses_oversized_entries,
  ),
  ("replace", DEFAULT, replacing_a_key_keeps_one_entry),
  (
    "expired-first",
    bounded(2, usize::MAX, 1_000),
    expired_entries_go_before_live_ones,
  ),
  (
    "stale",
    bounded(10, usize::MAX, 100),
    stale_if_error_serves_only_the_failure_path,
  ),
  ("lower-bound", DEFAULT, lowering_a_bound_applies_at_once),
  ("delete", DEFAULT, delete_only_removes_the_exact_key),
];

/// Stores a response (the test fails if it cannot).
pub fn set(
  cache: &mut dyn CacheStore,
  prompt: &str,
  model_id: &str,
  response: &str,
  ttl: Option<u64>,
  now: u64,
) {
  cache
    .set_text(EntryText::new(prompt, response), model_id, ttl, now)
    .unwrap();
}

/// The response a `get` finds, if any.
pub fn response(
  cache: &mut dyn CacheStore,
  prompt: &str,
  model_id: &str,
  now: u64,
) -> Option<String> {
  cache
    .get(prompt, model_id, now)
    .unwrap()
    .map(|hit| hit.response)
}

fn exact_pair_is_the_key(cache: &mut dyn CacheStore) {
  set(cache, "ab", "c", "1", None, 0);
  assert_eq!(response(cache, "a", "bc", 1), None);
  assert_eq!(response(cache, "ab", "c", 1).as_deref(), Some("1"));
  set(cache, "a", "bc", "2", None, 0);
  set(cache, "ab", "other", "3", None, 0);
  assert_eq!(response(cache, "ab", "c", 1).as_deref(), Some("1"));
  assert_eq!(response(cache, "a", "bc", 1).as_deref(), Some("2"));
  assert_eq!(response(cache, "ab", "other", 1).as_deref(), Some("3"));
  assert_eq!(cache.stats(1).unwrap().size, 3);
}

fn default_ttl_and_explicit_ttl(cache: &mut dyn CacheStore) {
  set(cache, "p", "m", "1", Some(0), 1_000);
  let hit = cache.get("p", "m", 1_000).unwrap().unwrap();
  assert_eq!(
    (hit.timestamp, hit.expires_at),
    (1_000, 1_000 + DEFAULT_TTL_MS)
  );
  assert!(!hit.stale);
  set(cache, "q", "m", "2", Some(50), 1_000);
  assert!(response(cache, "q", "m", 1_050).is_some());
  assert!(response(cache, "q", "m", 1_051).is_none());
  assert!(
    cache.get_for_fallback("q", "m", 1_051).unwrap().is_none(),
    "no stale-if-error by default"
  );
  let stats = cache.stats(1_051).unwrap();
  assert_eq!((stats.size, stats.bytes), (1, 2));
}

fn counts_hits_misses_and_bytes(cache: &mut dyn CacheStore) {
  set(cache, "hello", "m", "\"world\"", None, 5);
  cache.get("hello", "m", 6).unwrap();
  cache.get("nope", "m", 6).unwrap();
  cache.get("nope", "m", 6).unwrap();
  let stats = cache.stats(6).unwrap();
  assert_eq!((stats.hits, stats.misses, stats.bytes), (1, 2, 5 + 7));
  assert_eq!((stats.oldest_entry, stats.newest_entry), (Some(5), Some(5)));
  cache.clear().unwrap();
  assert_eq!(cache.stats(6).unwrap(), CacheStats::default());
  assert!(response(cache, "hello", "m", 6).is_none());
}

fn oldest_and_newest_follow_live_entries(cache: &mut dyn CacheStore) {
  set(cache, "a", "m", "1", Some(1_000), 100);
  set(cache, "b", "m", "1", None, 200);
  set(cache, "c", "m", "1", None, 300);
  let stats = cache.stats(300).unwrap();
  assert_eq!(
    (stats.oldest_entry, stats.newest_entry),
    (Some(100), Some(300))
  );
  let stats = cache.stats(1_101).unwrap();
  assert_eq!((stats.oldest_entry, stats.size), (Some(200), 2));
  cache.delete("c", "m").unwrap();
  assert_eq!(cache.stats(1_101).unwrap().newest_entry, Some(200));
}

fn least_recently_used_goes_first(cache: &mut dyn CacheStore) {
  set(cache, "a", "m", "1", None, 0);
  set(cache, "b", "m", "2", None, 0);
  assert!(response(cache, "a", "m", 0).is_some());
  set(cache, "c", "m", "3", None, 0);
  assert!(response(cache, "b", "m", 0).is_none());
  assert!(response(cache, "a", "m", 0).is_some());
  assert!(response(cache, "c", "m", 0).is_some());
  assert_eq!(cache.stats(0).unwrap().evictions, 1);
}

fn byte_bound_evicts_and_refuses_oversized_entries(cache: &mut dyn CacheStore) {
  set(cache, "aa", "m", "111", None, 0);
  set(cache, "bb", "m", "222", None, 0);
  assert_eq!(cache.stats(0).unwrap().bytes, 10);
  assert!(response(cache, "aa", "m", 0).is_some());
  set(cache, "c", "m", "3", None, 0);
  assert!(
    response(cache, "bb", "m", 0).is_none(),
    "least recently used"
  );
  assert!(response(cache, "aa", "m", 0).is_some(), "recently read");
  assert_eq!(
    cache.set_text(EntryText::new("big", "12345678"), "m", None, 0),
    Err(CacheError::EntryTooLarge {
      bytes: 11,
      max_bytes: 10
    })
  );
  // The refused entry evicted nothing.
  let stats = cache.stats(0).unwrap();
  assert_eq!((stats.size, stats.bytes, stats.evictions), (2, 7, 1));
}

fn replacing_a_key_keeps_one_entry(cache: &mut dyn CacheStore) {
  set(cache, "p", "m", "1", None, 0);
  set(cache, "p", "m", "22", None, 1);
  let stats = cache.stats(1).unwrap();
  assert_eq!(
    (stats.size, stats.bytes, stats.oldest_entry),
    (1, 3, Some(1))
  );
  assert_eq!(response(cache, "p", "m", 1).as_deref(), Some("22"));
}

fn expired_entries_go_before_live_ones(cache: &mut dyn CacheStore) {
  set(cache, "old", "m", "1", Some(10), 0);
  set(cache, "live", "m", "2", None, 0);
  // "old" was used last, but it is stale by now.
  assert!(cache.get_for_fallback("old", "m", 15).unwrap().is_some());
  set(cache, "new", "m", "3", None, 20);
  assert!(response(cache, "live", "m", 20).is_some());
  assert!(cache.get_for_fallback("old", "m", 20).unwrap().is_none());
}

fn stale_if_error_serves_only_the_failure_path(cache: &mut dyn CacheStore) {
  set(cache, "p", "m", "1", Some(10), 0);
  set(cache, "q", "m", "22", None, 5);
  assert!(response(cache, "p", "m", 11).is_none());
  let hit = cache.get_for_fallback("p", "m", 50).unwrap().unwrap();
  assert!(hit.stale);
  assert_eq!((hit.response.as_str(), hit.expires_at), ("1", 10));
  let stats = cache.stats(50).unwrap();
  assert_eq!(
    (
      stats.size,
      stats.bytes,
      stats.oldest_entry,
      stats.newest_entry
    ),
    (1, 3, Some(5), Some(5))
  );
  assert!(!cache.get_for_fallback("q", "m", 50).unwrap().unwrap().stale);
  assert!(cache.get_for_fallback("p", "m", 111).unwrap().is_none());
  let stats = cache.stats(111).unwrap();
  assert_eq!((stats.hits, stats.misses, stats.bytes), (2, 2, 3));
}

fn lowering_a_bound_applies_at_once(cache: &mut dyn CacheStore) {
  for i in 0..10 {
    set(cache, &format!("p{i}"), "m", "1", None, i);
  }
  let config = CacheConfig {
    max_entries: 3,
    ..cache.config()
  };
  cache.set_config(config, 10).unwrap();
  let stats = cache.stats(10).unwrap();
  assert_eq!(
    (stats.size, stats.evictions, stats.oldest_entry),
    (3, 7, Some(7))
  );
  assert_eq!(cache.config().max_entries, 3);
}

fn delete_only_removes_the_exact_key(cache: &mut dyn CacheStore) {
  set(cache, "ab", "c", "1", None, 0);
  assert!(!cache.delete("a", "bc").unwrap());
  assert!(cache.delete("ab", "c").unwrap());
  assert!(!cache.delete("ab", "c").unwrap());
  assert_eq!(cache.stats(0).unwrap().size, 0);
}
