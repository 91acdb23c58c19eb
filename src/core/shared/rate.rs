//! Rate limits every instance shares: requests and tokens per minute over a
//! sliding minute, and concurrency slots held as leases.
//!
//! The minute is counted in one-second buckets, and a bucket that reaches
//! into the minute counts whole: the count is never below the true count
//! of any 60 s window, so no such window sees more than the limit (it may
//! see up to a second's worth fewer). Tokens are known only once a call
//! ends: a call starts while fewer than `tokens_per_minute` were spent in
//! the minute, and what it spends is charged when it ends.

use serde::{Deserialize, Serialize};

pub const MINUTE_MS: u64 = 60_000;
const BUCKET_MS: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitOptions {
  #[serde(default)]
  pub requests_per_minute: Option<u64>,
  #[serde(default)]
  pub tokens_per_minute: Option<u64>,
  #[serde(default)]
  pub concurrency: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Lease {
  pub id: String,
  pub until: u64,
}

/// A model's or service's limits as the store keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LimitRecord {
  /// `[bucket start ms, requests]`.
  #[serde(default)]
  pub requests: Vec<[u64; 2]>,
  /// `[bucket start ms, tokens]`.
  #[serde(default)]
  pub tokens: Vec<[u64; 2]>,
  #[serde(default)]
  pub leases: Vec<Lease>,
  /// The limits last asked for (for `getLimits`).
  #[serde(default)]
  pub limits: LimitOptions,
}

/// Which limit turned a call away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
  RequestsPerMinute,
  TokensPerMinute,
  Concurrency,
}

impl Limit {
  pub fn name(self) -> &'static str {
    match self {
      Limit::RequestsPerMinute => "requestsPerMinute",
      Limit::TokensPerMinute => "tokensPerMinute",
      Limit::Concurrency => "concurrency",
    }
  }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
  /// Go ahead; release `lease` (a concurrency slot) when done.
  Allowed { lease: Option<String> },
  /// Over `limit`; a slot may be free at `retry_at` (`None`: when a
  /// concurrency slot is released).
  Limited { limit: Limit, retry_at: Option<u64> },
}

/// The first bucket that can reach into the minute ending at `now`.
fn minute_from(now: u64) -> u64 {
  now.saturating_sub(MINUTE_MS + BUCKET_MS)
}

fn prune(record: &mut LimitRecord, now: u64) {
  let from = minute_from(now);
  record.requests.retain(|b| b[0] + BUCKET_MS > from);
  record.tokens.retain(|b| b[0] + BUCKET_MS > from);
  record.leases.retain(|lease| lease.until > now);
}

/// What was counted in the minute ending at `now`.
pub fn in_minute(buckets: &[[u64; 2]], now: u64) -> u64 {
  let from = now.saturating_sub(MINUTE_MS);
  buckets
    .iter()
    .filter(|b| b[0] + BUCKET_MS > from)
    .map(|b| b[1])
    .sum()
}

/// When the oldest bucket counted leaves the minute.
fn frees_at(buckets: &[[u64; 2]], now: u64) -> Option<u64> {
  let from = now.saturating_sub(MINUTE_MS);
  buckets
    .iter()
    .find(|b| b[0] + BUCKET_MS > from)
    .map(|b| b[0] + BUCKET_MS + MINUTE_MS)
}

fn charge(buckets: &mut Vec<[u64; 2]>, amount: u64, now: u64) {
  let start = now - now % BUCKET_MS;
  match buckets.last_mut() {
    Some(bucket) if bucket[0] == start => bucket[1] = bucket[1].saturating_add(amount),
    _ => buckets.push([start, amount]),
  }
}

/// May a call start now? The record to write when it may (its request
/// counted, its slot leased for `lease_ms`).
pub fn admit(
  record: Option<LimitRecord>,
  options: &LimitOptions,
  now: u64,
  lease_id: &str,
  lease_ms: u64,
) -> (Entry, Option<LimitRecord>) {
  let mut record = record.unwrap_or_default();
  prune(&mut record, now);
  if let Some(limit) = options.requests_per_minute {
    if in_minute(&record.requests, now) >= limit {
      let retry_at = frees_at(&record.requests, now);
      return (
        Entry::Limited {
          limit: Limit::RequestsPerMinute,
          retry_at,
        },
        None,
      );
    }
  }
  if let Some(limit) = options.tokens_per_minute {
    if in_minute(&record.tokens, now) >= limit {
      let retry_at = frees_at(&record.tokens, now);
      return (
        Entry::Limited {
          limit: Limit::TokensPerMinute,
          retry_at,
        },
        None,
      );
    }
  }
  let mut lease = None;
  if let Some(limit) = options.concurrency {
    if record.leases.len() as u64 >= limit {
      let retry_at = record.leases.iter().map(|lease| lease.until).min();
      return (
        Entry::Limited {
          limit: Limit::Concurrency,
          retry_at,
        },
        None,
      );
    }
    record.leases.push(Lease {
      id: lease_id.to_owned(),
      until: now.saturating_add(lease_ms),
    });
    lease = Some(lease_id.to_owned());
  }
  if options.requests_per_minute.is_some() {
    charge(&mut record.requests, 1, now);
  }
  record.limits = *options;
  (Entry::Allowed { lease }, Some(record))
}

/// A call ended: its slot released, the tokens it spent charged.
pub fn settle(
  record: Option<LimitRecord>,
  lease: Option<&str>,
  tokens: u64,
  now: u64,
) -> LimitRecord {
  let mut record = record.unwrap_or_default();
  prune(&mut record, now);
  if let Some(id) = lease {
    record.leases.retain(|held| held.id != id);
  }
  if tokens > 0 {
    charge(&mut record.tokens, tokens, now);
  }
  record
}

/// The slots held by `ids` kept until `until` (a live process renews its
/// leases; a dead one's run out).
pub fn renew(record: Option<LimitRecord>, ids: &[String], until: u64) -> Option<LimitRecord> {
  let mut record = record?;
  let mut renewed = false;
  for lease in &mut record.leases {
    if ids.contains(&lease.id) {
      lease.until = lease.until.max(until);
      renewed = true;
    }
  }
  renewed.then_some(record)
}

/// When the record may go: when nothing it holds counts any more.
pub fn expires_at(record: &LimitRecord, now: u64) -> u64 {
  let leases = record
    .leases
    .iter()
    .map(|lease| lease.until)
    .max()
    .unwrap_or(0);
  leases.max(now + MINUTE_MS + 2 * BUCKET_MS)
}

#[cfg(test)]
mod tests {
  use super::*;

  const RPM: LimitOptions = LimitOptions {
    requests_per_minute: Some(3),
    tokens_per_minute: None,
    concurrency: None,
  };

  fn allowed(entry: &Entry) -> bool {
    matches!(entry, Entry::Allowed { .. })
  }

  #[test]
  fn no_sixty_second_window_sees_more_than_the_limit() {
    let mut record = None;
    let mut calls = Vec::new();
    let mut now = 0;
    while now < 300_000 {
      let (entry, write) = admit(record.clone(), &RPM, now, "l", 1_000);
      if allowed(&entry) {
        calls.push(now);
        record = write;
      }
      now += 250;
    }
    for &start in &calls {
      let within = calls
        .iter()
        .filter(|&&t| t >= start && t < start + MINUTE_MS)
        .count();
      assert!(within <= 3, "{within} calls in the minute from {start}");
    }
    assert!(calls.len() >= 12, "the limit is used: {}", calls.len());
  }

  #[test]
  fn a_limited_call_says_when_to_come_back() {
    let mut record = None;
    for _ in 0..3 {
      record = admit(record, &RPM, 500, "l", 1_000).1;
    }
    let (entry, write) = admit(record, &RPM, 10_000, "l", 1_000);
    assert_eq!(
      entry,
      Entry::Limited {
        limit: Limit::RequestsPerMinute,
        retry_at: Some(61_000)
      }
    );
    assert_eq!(write, None);
  }

  #[test]
  fn tokens_are_charged_at_the_end_and_checked_at_the_start() {
    let options = LimitOptions {
      tokens_per_minute: Some(100),
      ..LimitOptions::default()
    };
    let (entry, record) = admit(None, &options, 0, "l", 1_000);
    assert!(allowed(&entry));
    let record = settle(record, None, 150, 10);
    assert!(matches!(
      admit(Some(record.clone()), &options, 20, "l", 1_000).0,
      Entry::Limited {
        limit: Limit::TokensPerMinute,
        ..
      }
    ));
    assert!(allowed(
      &admit(Some(record), &options, 61_020, "l", 1_000).0
    ));
  }

  #[test]
  fn concurrency_slots_are_leases_released_at_the_end_or_when_they_run_out() {
    let options = LimitOptions {
      concurrency: Some(1),
      ..LimitOptions::default()
    };
    let (entry, record) = admit(None, &options, 0, "a", 1_000);
    assert_eq!(
      entry,
      Entry::Allowed {
        lease: Some("a".into())
      }
    );
    let (entry, _) = admit(record.clone(), &options, 10, "b", 1_000);
    assert_eq!(
      entry,
      Entry::Limited {
        limit: Limit::Concurrency,
        retry_at: Some(1_000)
      }
    );
    let released = settle(record.clone(), Some("a"), 0, 20);
    assert!(allowed(&admit(Some(released), &options, 30, "b", 1_000).0));
    assert!(
      allowed(&admit(record.clone(), &options, 1_000, "b", 1_000).0),
      "a's lease ran out"
    );
    let renewed = renew(record, &["a".to_string()], 5_000);
    assert!(!allowed(&admit(renewed, &options, 1_000, "b", 1_000).0));
  }
}
