//! What this process keeps of the server's replies so that the contract's
//! synchronous reads (a cache hit, `shouldSkipService`) are answered
//! without a round trip, and forgets as soon as the server says a key
//! changed (`tracking.rs` listens for that).
//!
//! A reply is kept only when nothing can have changed it unseen: the
//! server's tracking is confirmed on (`go_live`), and no key the reply
//! depends on was announced changed between the moment the request was
//! sent (its `Ticket`) and the moment the reply is kept. Announcements and
//! replies travel on different connections, so either may arrive first:
//! an announcement that comes before the reply stops it being kept, one
//! that comes after removes it.
//!
//! A reply depends on one key (an entry's hash, one service's failure
//! times) or on every key under a prefix (a listing). The bounds are like
//! the memory store's: entries and bytes, least recently used first out.

use std::collections::VecDeque;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use redis::Value;

/// Announcements remembered for tickets still out; a ticket older than
/// this many announcements cannot be checked, so its reply is not kept.
const RECENT: usize = 4096;
/// What a kept reply costs besides its bytes (the maps' slots, the Arc).
const OVERHEAD_BYTES: usize = 96;

/// When a request was sent, for `keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
  seq: u64,
  epoch: u64,
}

/// What a kept reply depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Depends {
  /// The one key its id names.
  Key,
  /// Every key that starts with this.
  Prefix(String),
}

struct Held {
  value: Arc<Value>,
  depends: Depends,
  bytes: usize,
}

/// An announcement: a changed key, or everything (`None`).
type Announced = (u64, Option<Box<str>>);

struct State {
  /// The server tracks for this copy (confirmed on the current connection).
  live: bool,
  /// Bumped whenever the connection that tracks is lost or replaced.
  epoch: u64,
  /// The number of the last announcement.
  seq: u64,
  recent: VecDeque<Announced>,
  held: LruCache<String, Held>,
  /// Ids of kept replies that depend on a prefix (few: listings).
  prefixed: Vec<String>,
  bytes: usize,
  max_entries: usize,
  max_bytes: usize,
}

pub struct LocalCopy {
  state: Mutex<State>,
}

/// What the copy has served and held, for the benchmark and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
  pub live: bool,
  pub entries: usize,
  pub bytes: usize,
}

impl LocalCopy {
  pub fn new(max_entries: usize, max_bytes: usize) -> Self {
    Self {
      state: Mutex::new(State {
        live: false,
        epoch: 0,
        seq: 0,
        recent: VecDeque::new(),
        held: LruCache::unbounded(),
        prefixed: Vec::new(),
        bytes: 0,
        max_entries: max_entries.max(1),
        max_bytes,
      }),
    }
  }

  /// New bounds; what no longer fits goes at once.
  pub fn set_bounds(&self, max_entries: usize, max_bytes: usize) {
    let mut state = self.state.lock();
    state.max_entries = max_entries.max(1);
    state.max_bytes = max_bytes;
    state.fit();
  }

  pub fn stats(&self) -> CopyStats {
    let state = self.state.lock();
    CopyStats {
      live: state.live,
      entries: state.held.len(),
      bytes: state.bytes,
    }
  }

  /// The kept reply of `id`, while the server tracks for this copy.
  pub fn get(&self, id: &str) -> Option<Arc<Value>> {
    let mut state = self.state.lock();
    if !state.live {
      return None;
    }
    state.held.get(id).map(|held| Arc::clone(&held.value))
  }

  /// Taken before a request whose reply may be kept; `None` while the
  /// server does not track for this copy (the reply is used, not kept).
  pub fn ticket(&self) -> Option<Ticket> {
    let state = self.state.lock();
    state.live.then_some(Ticket {
      seq: state.seq,
      epoch: state.epoch,
    })
  }

  /// Taken before asking the server to track, for `go_live`.
  pub fn epoch_ticket(&self) -> Ticket {
    let state = self.state.lock();
    Ticket {
      seq: state.seq,
      epoch: state.epoch,
    }
  }

  /// The server confirmed it tracks, on a connection asked at `ticket`:
  /// replies may be kept from now on, unless that connection was lost
  /// meanwhile. Returns whether the copy is live.
  pub fn go_live(&self, ticket: Ticket) -> bool {
    let mut state = self.state.lock();
    if state.epoch == ticket.epoch {
      state.live = true;
    }
    state.live
  }

  /// The connection that tracks is gone (or never came): nothing kept can
  /// be trusted any more, and nothing is kept until it is back.
  pub fn go_dark(&self) {
    let mut state = self.state.lock();
    state.live = false;
    state.epoch += 1;
    state.forget_all();
  }

  /// Keeps `value`, the reply of a request sent at `ticket`, under `id`,
  /// unless something it depends on was announced changed since. Returns
  /// whether it was kept.
  pub fn keep(&self, ticket: Ticket, id: &str, depends: Depends, value: Arc<Value>) -> bool {
    let mut state = self.state.lock();
    if !state.live || state.epoch != ticket.epoch || !state.unchanged_since(ticket, id, &depends) {
      return false;
    }
    let bytes = id.len() + value_bytes(&value) + OVERHEAD_BYTES;
    if bytes > state.max_bytes {
      return false;
    }
    if matches!(depends, Depends::Prefix(_)) && !state.prefixed.iter().any(|kept| kept == id) {
      state.prefixed.push(id.to_string());
    }
    if let Some(old) = state.held.put(
      id.to_string(),
      Held {
        value,
        depends,
        bytes,
      },
    ) {
      state.bytes -= old.bytes;
    }
    state.bytes += bytes;
    state.fit();
    true
  }

  /// The server (or this process, around its own write) says `key`
  /// changed.
  pub fn changed(&self, key: &str) {
    let mut state = self.state.lock();
    state.announce(Some(key.into()));
    state.forget(key);
    let gone: Vec<String> = state
      .prefixed
      .iter()
      .filter(|id| {
        matches!(state.held.peek(id.as_str()), Some(Held { depends: Depends::Prefix(prefix), .. }) if key.starts_with(prefix.as_str()))
      })
      .cloned()
      .collect();
    for id in gone {
      state.forget(&id);
    }
  }

  /// Everything may have changed (the server was flushed, or this
  /// process cleared a whole store).
  pub fn changed_all(&self) {
    let mut state = self.state.lock();
    state.forget_all();
  }
}

impl State {
  fn announce(&mut self, key: Option<Box<str>>) {
    self.seq += 1;
    self.recent.push_back((self.seq, key));
    if self.recent.len() > RECENT {
      self.recent.pop_front();
    }
  }

  fn forget(&mut self, id: &str) {
    if let Some(held) = self.held.pop(id) {
      self.bytes -= held.bytes;
      if matches!(held.depends, Depends::Prefix(_)) {
        self.prefixed.retain(|kept| kept != id);
      }
    }
  }

  fn forget_all(&mut self) {
    self.announce(None);
    self.held.clear();
    self.prefixed.clear();
    self.bytes = 0;
  }

  /// Whether no announcement since `ticket` touches what `id` depends on.
  fn unchanged_since(&self, ticket: Ticket, id: &str, depends: &Depends) -> bool {
    let since = self.seq - ticket.seq;
    if since == 0 {
      return true;
    }
    if since as usize > self.recent.len() {
      return false;
    }
    self
      .recent
      .iter()
      .rev()
      .take(since as usize)
      .all(|(_, key)| match (key, depends) {
        (None, _) => false,
        (Some(key), Depends::Key) => &**key != id,
        (Some(key), Depends::Prefix(prefix)) => !key.starts_with(prefix.as_str()),
      })
  }

  fn fit(&mut self) {
    while self.held.len() > self.max_entries || self.bytes > self.max_bytes {
      let Some((id, held)) = self.held.pop_lru() else {
        break;
      };
      self.bytes -= held.bytes;
      if matches!(held.depends, Depends::Prefix(_)) {
        self.prefixed.retain(|kept| *kept != id);
      }
    }
  }
}

/// About what a reply holds, in bytes.
fn value_bytes(value: &Value) -> usize {
  match value {
    Value::BulkString(bytes) => bytes.len() + 8,
    Value::SimpleString(text) => text.len() + 8,
    Value::Array(items) | Value::Set(items) => items.iter().map(value_bytes).sum::<usize>() + 16,
    _ => 16,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn text(s: &str) -> Arc<Value> {
    Arc::new(Value::BulkString(s.as_bytes().to_vec()))
  }

  fn live_copy() -> LocalCopy {
    let copy = LocalCopy::new(100, 1 << 20);
    assert!(copy.go_live(copy.epoch_ticket()));
    copy
  }

  #[test]
  fn nothing_is_kept_until_the_server_tracks() {
    let copy = LocalCopy::new(100, 1 << 20);
    assert_eq!(copy.ticket(), None);
    let early = copy.epoch_ticket();
    assert!(copy.go_live(early));
    let ticket = copy.ticket().unwrap();
    assert!(copy.keep(ticket, "k", Depends::Key, text("v")));
    assert_eq!(copy.get("k").as_deref(), Some(&*text("v")));
  }

  #[test]
  fn a_connection_lost_before_the_confirmation_keeps_the_copy_dark() {
    let copy = LocalCopy::new(100, 1 << 20);
    let asked = copy.epoch_ticket();
    copy.go_dark();
    assert!(!copy.go_live(asked));
    assert_eq!(copy.ticket(), None);
  }

  #[test]
  fn a_change_announced_while_the_request_was_out_stops_the_keep() {
    let copy = live_copy();
    let ticket = copy.ticket().unwrap();
    copy.changed("k");
    assert!(!copy.keep(ticket, "k", Depends::Key, text("old")));
    // Another key's change does not stop it.
    let ticket = copy.ticket().unwrap();
    copy.changed("other");
    assert!(copy.keep(ticket, "k", Depends::Key, text("new")));
  }

  #[test]
  fn a_change_announced_after_the_keep_removes_it() {
    let copy = live_copy();
    assert!(copy.keep(copy.ticket().unwrap(), "k", Depends::Key, text("v")));
    copy.changed("k");
    assert_eq!(copy.get("k"), None);
  }

  #[test]
  fn a_listing_goes_with_any_key_under_its_prefix() {
    let copy = live_copy();
    let prefix = Depends::Prefix("{p}:f:".into());
    assert!(copy.keep(copy.ticket().unwrap(), "list", prefix.clone(), text("l")));
    copy.changed("{p}:c:e:1");
    assert!(copy.get("list").is_some());
    copy.changed("{p}:f:t:api");
    assert_eq!(copy.get("list"), None);
    let ticket = copy.ticket().unwrap();
    copy.changed("{p}:f:s:api");
    assert!(!copy.keep(ticket, "list", prefix, text("l")));
  }

  #[test]
  fn losing_the_connection_forgets_everything_and_stops_keeping() {
    let copy = live_copy();
    let ticket = copy.ticket().unwrap();
    assert!(copy.keep(ticket, "a", Depends::Key, text("v")));
    copy.go_dark();
    assert_eq!(copy.get("a"), None);
    assert!(!copy.keep(ticket, "b", Depends::Key, text("v")));
    assert_eq!(copy.stats().entries, 0);
  }

  #[test]
  fn a_ticket_older_than_what_is_remembered_is_not_trusted() {
    let copy = live_copy();
    let ticket = copy.ticket().unwrap();
    for i in 0..=RECENT {
      copy.changed(&format!("x{i}"));
    }
    assert!(!copy.keep(ticket, "k", Depends::Key, text("v")));
  }

  #[test]
  fn the_bounds_hold_least_recently_used_first_out() {
    let copy = live_copy();
    copy.set_bounds(2, 1 << 20);
    for id in ["a", "b"] {
      assert!(copy.keep(copy.ticket().unwrap(), id, Depends::Key, text(id)));
    }
    copy.get("a");
    assert!(copy.keep(copy.ticket().unwrap(), "c", Depends::Key, text("c")));
    assert!(copy.get("a").is_some() && copy.get("c").is_some());
    assert_eq!(copy.get("b"), None);
    let big = "x".repeat(4000);
    copy.set_bounds(10, 2000);
    assert!(!copy.keep(copy.ticket().unwrap(), "big", Depends::Key, text(&big)));
    assert!(copy.stats().bytes <= 2000);
  }
}
