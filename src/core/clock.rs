//! Wall-clock time in milliseconds since the Unix epoch. Every core method
//! takes `now` as an argument so that tests can drive time by hand; only the
//! binding reads the real clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// The largest instant a JavaScript `Date` can hold (±8.64e15 ms).
pub const MAX_DATE_MS: u64 = 8_640_000_000_000_000;

pub fn now_ms() -> u64 {
  SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .map(|d| d.as_millis() as u64)
    .unwrap_or(0)
}

/// `start + duration`, clamped to what a JavaScript `Date` can represent.
pub fn add_ms(start: u64, duration: u64) -> u64 {
  start.saturating_add(duration).min(MAX_DATE_MS)
}
