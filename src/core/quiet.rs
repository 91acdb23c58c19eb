//! When no cooldown can run, published to whoever watches: the time from
//! which the failure store holds no running cooldown, as far as it can tell
//! without a look-up (`FailureStore::quiet_from`). A chain of models reads
//! it before each call and asks the store only when a cooldown may run,
//! which in memory is almost never.
//!
//! Only a later time must reach the watchers at once (a model benched):
//! the stores publish under their lock after every change through
//! `Stores::with_failures` and every move. An earlier time (cooldowns
//! cleared) may arrive late; until it does, chains ask the store, which
//! answers correctly.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Told each new time, in ms since the epoch (`u64::MAX`: always ask).
pub type Watcher = Box<dyn Fn(u64) + Send>;

pub struct QuietWatch {
  quiet_from: AtomicU64,
  watchers: Mutex<Watchers>,
}

#[derive(Default)]
struct Watchers {
  next_id: u64,
  by_id: Vec<(u64, Watcher)>,
}

impl QuietWatch {
  pub fn new(quiet_from: u64) -> Self {
    Self {
      quiet_from: AtomicU64::new(quiet_from),
      watchers: Mutex::new(Watchers::default()),
    }
  }

  /// The time last published.
  pub fn quiet_from(&self) -> u64 {
    self.quiet_from.load(Ordering::Acquire)
  }

  /// Publishes `quiet_from` to every watcher when it changed. Callers hold
  /// the failure store's lock, so that publications arrive in order.
  pub fn publish(&self, quiet_from: u64) {
    if self.quiet_from.swap(quiet_from, Ordering::AcqRel) == quiet_from {
      return;
    }
    for (_, watcher) in &self.watchers.lock().by_id {
      watcher(quiet_from);
    }
  }

  /// Adds `watcher`, told the current time at once; the id unwatches it.
  /// A publication racing with this reaches the watcher after the current
  /// time does: both take the watchers' lock, and the time is read under it.
  pub fn watch(&self, watcher: Watcher) -> u64 {
    let mut watchers = self.watchers.lock();
    watcher(self.quiet_from());
    let id = watchers.next_id;
    watchers.next_id += 1;
    watchers.by_id.push((id, watcher));
    id
  }

  /// Removes the watcher `id`; once this returns it is never called again.
  pub fn unwatch(&self, id: u64) {
    self.watchers.lock().by_id.retain(|(held, _)| *held != id);
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::Arc;

  fn recorder() -> (Arc<Mutex<Vec<u64>>>, Watcher) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    (seen, Box::new(move |time| into.lock().push(time)))
  }

  #[test]
  fn a_watcher_is_told_the_current_time_then_each_change_until_unwatched() {
    let watch = QuietWatch::new(0);
    watch.publish(5_000);
    let (seen, watcher) = recorder();
    let id = watch.watch(watcher);
    watch.publish(5_000);
    watch.publish(9_000);
    watch.publish(u64::MAX);
    watch.unwatch(id);
    watch.publish(0);
    assert_eq!(*seen.lock(), vec![5_000, 9_000, u64::MAX]);
    assert_eq!(watch.quiet_from(), 0);
  }

  #[test]
  fn watchers_are_told_apart() {
    let watch = QuietWatch::new(0);
    let (first, watcher) = recorder();
    let first_id = watch.watch(watcher);
    let (second, watcher) = recorder();
    watch.watch(watcher);
    watch.unwatch(first_id);
    watch.publish(7);
    assert_eq!(*first.lock(), vec![0]);
    assert_eq!(*second.lock(), vec![0, 7]);
  }
}
