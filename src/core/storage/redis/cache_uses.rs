//! The bookkeeping of cache lookups (hit and miss counters, the recency
//! of the entries hit), sent to the server off the caller's thread: a
//! lookup itself is one `HMGET`, or none when the local copy holds the
//! entry. The first use after a quiet spell is sent at once (so another
//! instance's `getStats` sees it a round trip later); uses that come within
//! `SPACING` of a batch's start go together in the next run of
//! `cache/uses.lua`, so a busy instance sends at most a hundred batches a
//! second, whatever its hit rate.
//!
//! So the server's least-recently-used order is the order of those runs:
//! within one batch, and between instances, it is approximate. The
//! counters this instance reports are exact for its own lookups: `settle`
//! waits for a batch on its way and hands back what was not sent, for
//! `stats` and `set` to send with their own request.

use std::sync::Arc;
use std::time::Duration;

use lru::LruCache;
use parking_lot::{Condvar, Mutex};

/// The least time between the starts of two batches.
const SPACING: Duration = Duration::from_millis(10);
/// Digests one run touches at most (Lua's `unpack` is bounded; the rest
/// wait for the next run).
pub const MAX_TOUCHED: usize = 1000;

/// What lookups left to be counted.
#[derive(Default)]
pub struct Uses {
  /// The latest instant the lookups were made at (the callers' clock, as
  /// in every core method): the batch advances time to it.
  pub now: u64,
  pub hits: u64,
  pub misses: u64,
  /// Digests hit, least recently used first.
  pub touched: Vec<String>,
}

impl Uses {
  pub fn is_empty(&self) -> bool {
    self.hits == 0 && self.misses == 0 && self.touched.is_empty()
  }

  /// The script's own arguments: hits, misses, then the digests.
  pub fn args(&self) -> Vec<String> {
    let mut args = Vec::with_capacity(self.touched.len() + 2);
    args.push(self.hits.to_string());
    args.push(self.misses.to_string());
    args.extend(self.touched.iter().cloned());
    args
  }
}

struct Pending {
  now: u64,
  hits: u64,
  misses: u64,
  /// An ordered set: a digest hit again moves to the end.
  touched: LruCache<String, ()>,
  /// A send is scheduled (the task that sends is alive).
  scheduled: bool,
  /// A batch is on its way to the server.
  sending: bool,
}

#[derive(Clone)]
pub struct UseBook {
  pending: Arc<(Mutex<Pending>, Condvar)>,
}

impl Default for UseBook {
  fn default() -> Self {
    Self {
      pending: Arc::new((
        Mutex::new(Pending {
          now: 0,
          hits: 0,
          misses: 0,
          touched: LruCache::unbounded(),
          scheduled: false,
          sending: false,
        }),
        Condvar::new(),
      )),
    }
  }
}

impl UseBook {
  /// Notes a lookup at `now` (`Some(digest)` for a hit). Returns true
  /// when the caller must schedule a send (`send_later`), none being
  /// scheduled.
  pub fn note(&self, hit: Option<&str>, now: u64) -> bool {
    let mut pending = self.pending.0.lock();
    pending.now = pending.now.max(now);
    match hit {
      Some(digest) => {
        pending.hits += 1;
        pending.touched.put(digest.to_string(), ());
      }
      None => pending.misses += 1,
    }
    !std::mem::replace(&mut pending.scheduled, true)
  }

  /// Takes up to `MAX_TOUCHED` digests' worth of uses, for a send.
  fn take(&self) -> Uses {
    let mut pending = self.pending.0.lock();
    pending.sending = true;
    let mut uses = Uses {
      now: pending.now,
      hits: std::mem::take(&mut pending.hits),
      misses: std::mem::take(&mut pending.misses),
      touched: Vec::new(),
    };
    while uses.touched.len() < MAX_TOUCHED {
      let Some((digest, ())) = pending.touched.pop_lru() else {
        break;
      };
      uses.touched.push(digest);
    }
    uses
  }

  /// After a send: those waiting in `settle` may go on.
  fn sent(&self) {
    let (lock, idle) = &*self.pending;
    lock.lock().sending = false;
    idle.notify_all();
  }

  /// Whether more uses wait (the caller sends again); if none, the book
  /// is idle and the next use schedules a send.
  fn more_or_idle(&self) -> bool {
    let mut pending = self.pending.0.lock();
    let more = pending.hits > 0 || pending.misses > 0 || !pending.touched.is_empty();
    if !more {
      pending.scheduled = false;
    }
    more
  }

  /// Waits (at most `patience`) for a batch on its way, then takes every
  /// use not sent: the caller sends them with its own request, so what it
  /// reads back counts every lookup made here before.
  pub fn settle(&self, patience: Duration) -> Uses {
    let (lock, idle) = &*self.pending;
    let mut pending = lock.lock();
    let deadline = std::time::Instant::now() + patience;
    while pending.sending {
      if idle.wait_until(&mut pending, deadline).timed_out() {
        break;
      }
    }
    // The most recent `MAX_TOUCHED` only: one script's arguments are
    // bounded, and the recency of the rest is approximate anyway.
    let mut touched: Vec<String> = pending
      .touched
      .iter()
      .take(MAX_TOUCHED)
      .map(|(digest, ())| digest.clone())
      .collect();
    touched.reverse();
    pending.touched.clear();
    Uses {
      now: pending.now,
      hits: std::mem::take(&mut pending.hits),
      misses: std::mem::take(&mut pending.misses),
      touched,
    }
  }

  /// Sends the uses now, then again (`SPACING` apart) while more came; a
  /// batch the server does not take is dropped (counters and recency are
  /// bookkeeping: a lookup never fails for them).
  pub async fn send_later<F, Fut>(self, send: F)
  where
    F: Fn(Uses) -> Fut,
    Fut: std::future::Future<Output = ()>,
  {
    loop {
      let started = tokio::time::Instant::now();
      let uses = self.take();
      if !uses.is_empty() {
        send(uses).await;
      }
      self.sent();
      // Uses that come within SPACING of this send wait for the next.
      tokio::time::sleep_until(started + SPACING).await;
      if !self.more_or_idle() {
        return;
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn uses_are_counted_once_and_in_recency_order() {
    let book = UseBook::default();
    assert!(book.note(Some("a"), 5));
    assert!(!book.note(Some("b"), 7));
    assert!(!book.note(None, 6));
    assert!(!book.note(Some("a"), 6));
    let uses = book.take();
    assert_eq!((uses.now, uses.hits, uses.misses), (7, 3, 1));
    assert_eq!(uses.touched, ["b", "a"]);
    assert_eq!(uses.args(), ["3", "1", "b", "a"]);
    book.sent();
    assert!(!book.more_or_idle());
    // Idle again: the next use schedules a send.
    assert!(book.note(None, 8));
  }

  #[test]
  fn settle_takes_what_was_not_sent() {
    let book = UseBook::default();
    book.note(Some("a"), 1);
    // Scheduled, not on its way: nothing to wait for.
    let uses = book.settle(Duration::from_millis(10));
    assert_eq!((uses.hits, uses.touched.len()), (1, 1));
    assert!(book.take().is_empty());
  }

  #[test]
  fn settle_keeps_the_most_recent_uses_within_the_bound() {
    let book = UseBook::default();
    for i in 0..MAX_TOUCHED + 5 {
      book.note(Some(&i.to_string()), 1);
    }
    let uses = book.settle(Duration::from_millis(10));
    assert_eq!(uses.hits, MAX_TOUCHED as u64 + 5);
    assert_eq!(uses.touched.len(), MAX_TOUCHED);
    assert_eq!(uses.touched.first().map(String::as_str), Some("5"));
    assert_eq!(
      uses.touched.last().map(String::as_str),
      Some(&*(MAX_TOUCHED + 4).to_string())
    );
  }

  #[test]
  fn a_large_batch_is_sent_in_runs() {
    let book = UseBook::default();
    for i in 0..MAX_TOUCHED + 5 {
      book.note(Some(&i.to_string()), 1);
    }
    assert_eq!(book.take().touched.len(), MAX_TOUCHED);
    book.sent();
    assert!(book.more_or_idle());
    assert_eq!(book.take().touched.len(), 5);
  }
}
