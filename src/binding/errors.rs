//! Every error a binding function can raise is a `Fault`: one of ours
//! (class, code, message) or a JavaScript exception already pending. The
//! core's errors map to faults here; `boundary.rs` throws them.

use crate::core::cache::CacheError;
use crate::core::queue::QueueError;
use crate::core::storage::StorageError;

pub const ERR_INVALID_ARG_TYPE: &str = "ERR_INVALID_ARG_TYPE";
pub const ERR_INVALID_ARG_VALUE: &str = "ERR_INVALID_ARG_VALUE";
pub const ERR_OUT_OF_RANGE: &str = "ERR_OUT_OF_RANGE";
pub const ERR_INVALID_URL: &str = "ERR_INVALID_URL";
pub const ERR_INTERNAL: &str = "ERR_FALLBACK_INTERNAL";
pub const ENTRY_TOO_LARGE: &str = "ENTRY_TOO_LARGE";
pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
pub const QUEUE_FULL: &str = "QUEUE_FULL";
pub const ALREADY_IN_USE: &str = "ALREADY_IN_USE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
  Error,
  TypeError,
  RangeError,
}

#[derive(Debug)]
pub enum Fault {
  /// An error we raise ourselves.
  Raise {
    class: ErrorClass,
    code: &'static str,
    message: String,
  },
  /// A JavaScript exception is already pending (thrown by user code we
  /// called); leave it to propagate as it is.
  Pending,
}

pub type JsResult<T> = Result<T, Fault>;

impl Fault {
  pub fn type_error(code: &'static str, message: impl Into<String>) -> Self {
    Fault::Raise {
      class: ErrorClass::TypeError,
      code,
      message: message.into(),
    }
  }

  pub fn range_error(code: &'static str, message: impl Into<String>) -> Self {
    Fault::Raise {
      class: ErrorClass::RangeError,
      code,
      message: message.into(),
    }
  }

  pub fn error(code: &'static str, message: impl Into<String>) -> Self {
    Fault::Raise {
      class: ErrorClass::Error,
      code,
      message: message.into(),
    }
  }

  /// The message this fault would be thrown with.
  pub fn message(&self) -> String {
    match self {
      Fault::Raise { message, .. } => message.clone(),
      Fault::Pending => "a JavaScript exception".to_string(),
    }
  }

  pub fn internal(what: impl std::fmt::Display) -> Self {
    Fault::error(
      ERR_INTERNAL,
      format!("fallback-mechanisms internal error: {what}"),
    )
  }
}

impl From<CacheError> for Fault {
  fn from(error: CacheError) -> Self {
    match error {
      CacheError::Storage(error) => error.into(),
      CacheError::EntryTooLarge { .. } => Fault::range_error(ENTRY_TOO_LARGE, error.to_string()),
    }
  }
}

impl From<QueueError> for Fault {
  fn from(error: QueueError) -> Self {
    match error {
      QueueError::Storage(error) => error.into(),
      QueueError::Full { .. } | QueueError::FullBytes { .. } | QueueError::WaitingFull { .. } => {
        Fault::error(QUEUE_FULL, error.to_string())
      }
      QueueError::PayloadTooLarge { .. } | QueueError::JobTooLarge { .. } => {
        Fault::range_error(PAYLOAD_TOO_LARGE, error.to_string())
      }
      QueueError::TooLong(_) => Fault::range_error(ERR_OUT_OF_RANGE, error.to_string()),
    }
  }
}

impl From<StorageError> for Fault {
  fn from(error: StorageError) -> Self {
    Fault::error(error.kind.code(), error.message)
  }
}

impl From<napi::Error> for Fault {
  fn from(error: napi::Error) -> Self {
    match error.status {
      napi::Status::PendingException => Fault::Pending,
      _ => Fault::internal(error.reason),
    }
  }
}
