//! How a store can fail. At the bottom of the core: the domain errors
//! (`CacheError`, `QueueError`) carry a `StorageError` without knowing the
//! store traits.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
  /// The storage cannot be reached or written (a path that is not writable,
  /// a full disk, a file deleted while in use).
  Unavailable,
  /// Another process held the file's lock for longer than this call's busy
  /// timeout: worth trying again shortly.
  Busy,
  /// The file is not a database of this library, or is damaged.
  Corrupt,
  /// The file was written by a newer release whose schema this one cannot read.
  TooNew,
  /// The server is out of memory and takes no more writes (`maxmemory`
  /// with the `noeviction` policy): nothing was written.
  Full,
  /// The server refused the command to this user (an ACL without
  /// `EVALSHA`, or without access to the prefix's keys).
  Denied,
}

impl StorageErrorKind {
  pub fn code(self) -> &'static str {
    match self {
      StorageErrorKind::Unavailable => "STORAGE_UNAVAILABLE",
      StorageErrorKind::Busy => "STORAGE_BUSY",
      StorageErrorKind::Corrupt => "STORAGE_CORRUPT",
      StorageErrorKind::TooNew => "STORAGE_TOO_NEW",
      StorageErrorKind::Full => "STORAGE_FULL",
      StorageErrorKind::Denied => "STORAGE_DENIED",
    }
  }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
  pub kind: StorageErrorKind,
  pub message: String,
}

impl StorageError {
  pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
    Self {
      kind,
      message: message.into(),
    }
  }
}

impl StorageError {
  /// Whether the store gave no answer (unreachable, or no reply within
  /// its timeout): the one failure after which a write may still have
  /// landed, and may be kept to be made again when the store answers.
  /// Every other failure is an answer: the write was not made.
  pub fn is_no_answer(&self) -> bool {
    self.kind == StorageErrorKind::Unavailable
  }
}

impl std::fmt::Display for StorageError {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.write_str(&self.message)
  }
}

pub type StorageResult<T> = Result<T, StorageError>;
