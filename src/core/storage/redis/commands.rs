//! The scripts, one per command, like BullMQ's `commands/` folder: each is
//! `commands/guards.lua` (the checks every command makes before its first
//! write), then its store's include (`queue.lua`, `cache.lua`,
//! `failures.lua`: the keys, the settings and the transitions the store's
//! commands share), then the command itself (`queue/lease.lua`, ...).
//! Every key a command uses is declared in `KEYS` (the store's key head
//! first, then its fixed keys in the order of `*_KEYS` below, which the
//! include checks) or made from the head (one job's hash, one user's
//! index), so all of them share the prefix's hash tag.

use std::sync::LazyLock;

use redis::Script;

macro_rules! commands {
  ($(#[$meta:meta])* $name:ident: $include:literal, $dir:literal {
    $($(#[$variant_meta:meta])* $variant:ident = $file:literal),+ $(,)?
  }) => {
    $(#[$meta])*
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum $name {
      $($(#[$variant_meta])* $variant),+
    }

    impl $name {
      #[cfg(test)]
      pub const ALL: &'static [$name] = &[$($name::$variant),+];

      pub fn script(self) -> &'static Script {
        match self {
          $($name::$variant => {
            static SCRIPT: LazyLock<Script> = LazyLock::new(|| {
              Script::new(concat!(
                include_str!("commands/guards.lua"),
                include_str!(concat!("commands/", $include)),
                include_str!(concat!("commands/", $dir, "/", $file, ".lua")),
              ))
            });
            &SCRIPT
          })+
        }
      }

      /// The command's file name, for messages.
      #[cfg_attr(not(test), allow(dead_code))]
      pub fn name(self) -> &'static str {
        match self {
          $($name::$variant => $file),+
        }
      }
    }
  };
}

commands!(
  /// The job queue's commands (`commands/queue/`).
  QueueCommand: "queue.lua", "queue" {
    Enqueue = "enqueue",
    Lease = "lease",
    /// Leases up to one job per token given, in one run.
    LeaseMany = "lease_many",
    /// Gives up a lease whose reply was lost.
    Revoke = "revoke",
    Peek = "peek",
    Renew = "renew",
    /// Extends the leases of jobs by id.
    Keep = "keep",
    /// Extends the leases a worker holds, by their tokens.
    KeepLeases = "keep_leases",
    /// Records a worker's outcome under its lease token.
    FinishLeased = "finish_leased",
    /// Records a worker's outcome, reads the job back and leases the
    /// next one, in one run.
    FinishLease = "finish_lease",
    Release = "release",
    Stalled = "stalled",
    /// Sets aside a job that cannot be read.
    Damaged = "damaged",
    Complete = "complete",
    Fail = "fail",
    Get = "get",
    Stats = "stats",
    Ready = "ready",
    List = "list",
    RetryFailed = "retry_failed",
    ClearCompleted = "clear_completed",
    SetBound = "set_bound",
    Evict = "evict",
    Bound = "bound",
  }
);

/// The queue's fixed keys after its head, in `KEYS` order (`queue.lua`'s
/// `NAMES`).
pub const QUEUE_KEYS: [&str; 20] = [
  "seq", "fin", "ids", "bound", "bytes", "all", "ready", "delayed", "leased", "done", "gone",
  "tok", "revoked", "stat", "sz", "st:0", "st:1", "st:2", "st:3", "wake",
];

/// `KEYS` for a store whose key head is `head`: the head, then `names`
/// each under it.
pub fn keys(head: &str, names: &[&str]) -> Vec<String> {
  std::iter::once(head.to_string())
    .chain(names.iter().map(|name| format!("{head}{name}")))
    .collect()
}

commands!(
  /// The response cache's commands (`commands/cache/`).
  CacheCommand: "cache.lua", "cache" {
    Set = "set",
    Uses = "uses",
    Delete = "delete",
    /// Removes an entry a hit found unusable.
    Damaged = "damaged",
    Clear = "clear",
    Stats = "stats",
    SetBound = "set_bound",
    /// Evicts what the stored bounds no longer hold.
    Enforce = "enforce",
    Bound = "bound",
  }
);

/// The cache's fixed keys after its head (`cache.lua`'s `NAMES`).
pub const CACHE_KEYS: [&str; 6] = ["used", "live", "born", "stale", "tot", "bound"];

commands!(
  /// The failure history's commands (`commands/failures/`).
  FailureCommand: "failures.lua", "failures" {
    Record = "record",
    List = "list",
    Clear = "clear",
    Stats = "stats",
    SetBound = "set_bound",
    /// Applies the stored bounds to what is held.
    Fit = "fit",
    Bench = "bench",
    Cooldowns = "cooldowns",
    Bytes = "bytes",
    Bound = "bound",
  }
);

/// The failure history's fixed keys after its head (`failures.lua`'s
/// `NAMES`).
pub const FAILURE_KEYS: [&str; 12] = [
  "seq", "bound", "rec", "all", "svc", "bytes", "rb", "rs", "cd", "cdu", "rid", "stat",
];

commands!(
  /// The shared guards' records (`commands/records/`).
  RecordCommand: "records.lua", "records" {
    /// Compares and swaps records.
    Swap = "swap",
    List = "list",
  }
);

/// The records' fixed keys after their head (`records.lua`'s `NAMES`).
pub const RECORD_KEYS: [&str; 1] = ["stat"];

#[cfg(test)]
mod tests {
  use super::*;

  /// The fixed keys in the order of each include's `NAMES`, the order the
  /// scripts read `KEYS` in.
  #[test]
  fn the_scripts_and_the_binding_agree_on_the_keys() {
    let includes = [
      (include_str!("commands/queue.lua"), &QUEUE_KEYS[..]),
      (include_str!("commands/cache.lua"), &CACHE_KEYS[..]),
      (include_str!("commands/failures.lua"), &FAILURE_KEYS[..]),
      (include_str!("commands/records.lua"), &RECORD_KEYS[..]),
    ];
    for (include, keys) in includes {
      let start = include.find("local NAMES = {").unwrap() + "local NAMES = {".len();
      let end = start + include[start..].find('}').unwrap();
      let names: Vec<&str> = include[start..end]
        .split(',')
        .map(|name| name.trim().trim_matches('\''))
        .collect();
      assert_eq!(names, keys);
    }
  }
}
