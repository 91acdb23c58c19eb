//! Freeing large structures away from the caller's thread: `clear` and
//! `clearCompleted` swap the old structures out and hand them here, so the
//! JavaScript thread does not wait for hundreds of thousands of
//! deallocations.

/// Below this many items, freeing inline is cheaper than starting a thread.
pub const OFF_THREAD_FROM: usize = 4_096;

/// Drops `value` on a short-lived thread when `items` is large, else here.
/// If no thread can be started, it is dropped here.
pub fn free<T: Send + 'static>(value: T, items: usize) {
  if items < OFF_THREAD_FROM {
    drop(value);
    return;
  }
  // On failure `spawn` drops the closure, and with it `value`, here.
  let _ = std::thread::Builder::new()
    .name("fallback-free".into())
    .spawn(move || drop(value));
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::atomic::{AtomicUsize, Ordering};
  use std::sync::Arc;

  struct Counted(Arc<AtomicUsize>);
  impl Drop for Counted {
    fn drop(&mut self) {
      self.0.fetch_add(1, Ordering::SeqCst);
    }
  }

  #[test]
  fn small_values_are_freed_inline_and_large_ones_eventually() {
    let dropped = Arc::new(AtomicUsize::new(0));
    free(Counted(dropped.clone()), 1);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    free(Counted(dropped.clone()), OFF_THREAD_FROM);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while dropped.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
      std::thread::yield_now();
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
  }
}
