//! What a SQLite error means for the caller.

use std::path::Path;

use rusqlite::ErrorCode;

use crate::core::storage::error::{StorageError, StorageErrorKind};

/// A SQLite error on the file at `path`, as a storage error.
pub(super) fn at(path: &Path, error: rusqlite::Error) -> StorageError {
  let kind = match error.sqlite_error_code() {
    Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StorageErrorKind::Corrupt,
    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StorageErrorKind::Busy,
    _ => StorageErrorKind::Unavailable,
  };
  let message = match kind {
    StorageErrorKind::Corrupt => format!(
      "The storage file {} is not a fallback-mechanisms database or is damaged ({error})",
      path.display()
    ),
    StorageErrorKind::Busy => format!(
      "The storage file {} is locked by another process for longer than the busy timeout ({error}); try again shortly",
      path.display()
    ),
    _ => format!(
      "The storage file {} cannot be used: {error}",
      path.display()
    ),
  };
  StorageError::new(kind, message)
}
