//! The server's eviction policy: any `maxmemory-policy` but `noeviction`
//! lets a full server delete this library's keys (a job's hash, an index),
//! so it is read at the first answer and warned about, once per server and
//! prefix. Apart from link.rs, which only notes the policy in its status.

use redis::RedisResult;

use super::connection::Connection;
use crate::core::notices;

/// The coded warning of a server whose eviction policy may drop our keys.
pub const EVICTION_POLICY: &str = "REDIS_EVICTION_POLICY";

/// `INFO memory`, where the eviction policy is (managed servers allow it
/// where `CONFIG GET` is not).
pub(super) async fn memory_info(mut connection: Connection) -> RedisResult<String> {
  redis::cmd("INFO")
    .arg("memory")
    .query_async(&mut connection)
    .await
}

/// The policy `INFO memory` gave, if it gave one.
pub(super) fn policy_in(info: &str) -> Option<String> {
  info
    .lines()
    .find_map(|line| line.strip_prefix("maxmemory_policy:"))
    .map(|policy| policy.trim().to_string())
}

/// Warns about any policy but `noeviction`, once per `place`.
pub(super) fn warn_if_evicting(policy: &str, place: &str) {
  if policy != "noeviction" {
    notices::warn_once(
      EVICTION_POLICY,
      place,
      format!(
        "Redis at {place} has maxmemory-policy {policy}: when it is full it may delete this library's keys (a queued job, the queue's indexes, a failure record), and jobs are lost. Set maxmemory-policy noeviction (a full server then refuses new writes with STORAGE_FULL instead), or use a server of its own for this library"
      ),
    );
  }
}
