//! Reading the scripts' replies.

use redis::Value;

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
