//! Test support: a fresh directory per test (its own module, so that a
//! module's tests need not import the folder's `mod.rs`).

/// A fresh, empty directory for one test's files.
pub fn test_dir(name: &str) -> std::path::PathBuf {
  use std::sync::atomic::{AtomicU64, Ordering};
  static NEXT: AtomicU64 = AtomicU64::new(0);
  let dir = std::env::temp_dir().join(format!(
    "fallback-mechanisms-test-{}-{name}-{}",
    std::process::id(),
    NEXT.fetch_add(1, Ordering::Relaxed)
  ));
  let _ = std::fs::remove_dir_all(&dir);
  std::fs::create_dir_all(&dir).unwrap();
  dir
}
