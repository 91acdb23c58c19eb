//! Reading the server's replies: a reply item as text, and what an error
//! reply means (its kind, and a message that says so).

use redis::{ErrorKind, RedisError, Value};

use crate::core::storage::error::StorageErrorKind;

/// A reply item as text: a bulk or simple string (UTF-8), or a number.
pub fn text(value: &Value) -> Option<String> {
  match value {
    Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
    Value::SimpleString(text) => Some(text.clone()),
    Value::Int(n) => Some(n.to_string()),
    Value::Double(n) => Some(n.to_string()),
    _ => None,
  }
}

/// Whether an `ERR` reply is the server refusing the command itself (no
/// scripting, no tracking, or an ACL that does not allow a command a
/// script runs) rather than anything about the data.
pub fn refused_by_acl_or_server(message: &str) -> bool {
  [
    "unknown command",
    "can't run this command",
    "No permissions",
  ]
  .iter()
  .any(|refusal| message.contains(refusal))
}

/// What an error from redis-rs says, and what to call it. Only "no answer"
/// (the connection, a timeout, a server busy loading or failing over) is
/// `Unavailable`, the one kind after which a write is kept to be made
/// again: every other error is the server's answer, and it will not change
/// by sending the same write again.
pub(super) fn classify(error: &RedisError) -> (StorageErrorKind, String) {
  let code = error.code().unwrap_or("");
  let kind = match code {
    "OOM" => StorageErrorKind::Full,
    "NOPERM" => StorageErrorKind::Denied,
    // A cluster or a server in the middle of something, a replica that is
    // not promoted yet: asking again later is the cure.
    "LOADING" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" | "MOVED"
    | "ASK" => StorageErrorKind::Unavailable,
    // A server without scripting (a proxy that leaves EVALSHA out), or a
    // script refused a command its ACL user may not run (reported as ERR
    // from inside the script: "can't run this command", "No permissions").
    "ERR" if refused_by_acl_or_server(&error.to_string()) => StorageErrorKind::Denied,
    // Foreign data at a key (WRONGTYPE), a script the server could not
    // keep (NOSCRIPT after loading it), a script that failed on data it
    // cannot read: an answer about the data.
    _ if matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension) => {
      StorageErrorKind::Corrupt
    }
    _ => StorageErrorKind::Unavailable,
  };
  let detail = match kind {
    StorageErrorKind::Full => format!(
      "the server is out of memory and refuses writes (maxmemory, with the noeviction policy); nothing was written: {error}"
    ),
    StorageErrorKind::Denied => format!(
      "the server refused the command to this user (an ACL must allow EVALSHA, EVAL, SCRIPT LOAD and the prefix's keys); nothing was written: {error}"
    ),
    StorageErrorKind::Corrupt if code == "WRONGTYPE" => format!(
      "a key holds data of another kind (not this library's); nothing was written: {error}"
    ),
    StorageErrorKind::Corrupt => format!("the server refused the command; nothing was written: {error}"),
    _ => error.to_string(),
  };
  (kind, detail)
}
