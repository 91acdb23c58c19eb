//! Numbers handed back through a `Float64Array` the caller passes (one per
//! module in `lib/classes.js`), where the measured alternative (an object
//! made property by property, or JSON text to parse) costs more than the
//! call itself: `getStats`, and a cache hit's two instants.

use crate::core::cache::{CacheHit, CacheStats};
use crate::core::queue::QueueStats;

use super::errors::JsResult;
use super::raw::{Js, Raw};

/// `[timestamp, expiresAt, stale]`.
pub fn cache_hit(js: Js<'_>, numbers: Raw<'_>, hit: &CacheHit) -> JsResult<()> {
  let stale = if hit.stale { 1.0 } else { 0.0 };
  js.write_f64s(
    numbers,
    &[hit.timestamp as f64, hit.expires_at as f64, stale],
  )
}

/// `[size, oldest, newest, hits, misses, evictions, bytes]` (oldest and
/// newest are -1 when there is no live entry).
pub fn cache_stats(js: Js<'_>, numbers: Raw<'_>, stats: &CacheStats) -> JsResult<()> {
  let instant = |ms: Option<u64>| ms.map_or(-1.0, |ms| ms as f64);
  js.write_f64s(
    numbers,
    &[
      stats.size as f64,
      instant(stats.oldest_entry),
      instant(stats.newest_entry),
      stats.hits as f64,
      stats.misses as f64,
      stats.evictions as f64,
      stats.bytes as f64,
    ],
  )
}

/// `[total, pending, processing, completed, failed]`.
pub fn queue_stats(js: Js<'_>, numbers: Raw<'_>, stats: &QueueStats) -> JsResult<()> {
  js.write_f64s(
    numbers,
    &[
      stats.total as f64,
      stats.pending as f64,
      stats.processing as f64,
      stats.completed as f64,
      stats.failed as f64,
    ],
  )
}
