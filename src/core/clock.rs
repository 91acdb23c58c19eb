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

/// A JavaScript clock reading (`Date.now()`, a number) as an instant: the
/// system clock when it is not a valid time.
pub fn from_js(ms: f64) -> u64 {
  match ms {
    ms if ms.is_finite() && ms >= 0.0 => (ms as u64).min(MAX_DATE_MS),
    _ => now_ms(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_javascript_reading_is_clamped_or_replaced() {
    assert_eq!(from_js(1_700_000_000_000.7), 1_700_000_000_000);
    assert_eq!(from_js(1e300), MAX_DATE_MS);
    assert!(from_js(f64::NAN) > 1_600_000_000_000);
    assert!(from_js(-1.0) > 1_600_000_000_000);
  }
}
