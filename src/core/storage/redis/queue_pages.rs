//! Reading the queue a page at a time, and the operations over many jobs
//! (retrying the failed, clearing the completed): each in runs of a
//! bounded batch, one round trip each, so that a queue of any size never
//! holds the server for long. Apart from queue.rs because other
//! instances' changes may land between two runs, which only this code
//! has to allow for.

use redis::Value;

use super::commands::QueueCommand;
use super::queue::RedisQueue;
use super::reply;
use crate::core::queue::job::Job;
use crate::core::storage::error::StorageResult;
use crate::core::storage::traits::{JobFilter, Page};

/// Jobs a listing reads per round trip (the commands' `BATCH`): a listing
/// of any size holds the server for a bounded time per run.
const LIST_BATCH: usize = 100;
/// The highest rank a listing asks for (Lua prints larger numbers with an
/// exponent, which Redis takes for no rank at all).
const MAX_RANK: usize = 1 << 40;

impl RedisQueue {
  /// In runs of at most `LIST_BATCH` jobs (each one round trip), so a
  /// listing of any size never holds the server for long; other instances'
  /// changes may land between two runs.
  pub(super) fn list_pages(
    &mut self,
    now: u64,
    filter: JobFilter<'_>,
    page: Page,
  ) -> StorageResult<Vec<Job>> {
    let status;
    let (kind, value) = match filter {
      JobFilter::All => ("all", ""),
      JobFilter::Status(wanted) => {
        status = (wanted as u8).to_string();
        ("status", status.as_str())
      }
      JobFilter::User(user) => ("user", user),
    };
    let mut jobs = Vec::new();
    // Beyond any set's size, and an integer Lua writes out whole.
    let mut offset = page.offset.min(MAX_RANK);
    let mut wanted = page.limit.unwrap_or(usize::MAX);
    while wanted > 0 {
      let asked = wanted.min(LIST_BATCH);
      let args = [kind, value, &offset.to_string(), &asked.to_string()];
      let reply: Value = self.link.command(
        QueueCommand::List.script(),
        &self.keys,
        &self.script_args(now, &args),
      )?;
      let Value::Array(mut pair) = reply else {
        break;
      };
      let dropped = pair
        .get(1)
        .and_then(reply::text)
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
      if dropped > 0 {
        self.warn_missing(dropped as u64);
      }
      let (batch, items) = self.usable_jobs(now, pair.swap_remove(0))?;
      // A job found gone or set aside left the index it was listed from,
      // so the next run starts after the jobs returned.
      let short = items + dropped < asked;
      offset += batch.len();
      wanted -= batch.len();
      jobs.extend(batch);
      if short {
        break;
      }
    }
    Ok(jobs)
  }

  /// Runs `command` (one that works a batch per run and replies
  /// `{done, looked at, left}`) until nothing is left; the total done.
  pub(super) fn in_batches(
    &self,
    command: QueueCommand,
    now: u64,
    args: &[&str],
  ) -> StorageResult<usize> {
    let mut done = 0;
    loop {
      let (count, looked, left): (usize, usize, usize) = self.call(command, now, args)?;
      done += count;
      if left == 0 || looked == 0 {
        return Ok(done);
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use crate::core::queue::job::{JobPriority, QueueConfig};
  use crate::core::storage::redis::queue_tests::{job, queue};
  use crate::core::storage::redis::test_server::TestServer;
  use crate::core::storage::traits::QueueStore;

  #[test]
  fn clear_completed_and_stats() {
    let server = TestServer::start();
    let mut q = queue(&server, "clear", QueueConfig::default());
    let ids: Vec<_> = (0..3)
      .map(|_| q.enqueue(job(JobPriority::Medium, "u"), 0).unwrap())
      .collect();
    q.complete(&ids[0], 1).unwrap();
    q.complete(&ids[1], 1).unwrap();
    assert_eq!(q.clear_completed(2).unwrap(), 2);
    let stats = q.stats(2).unwrap();
    assert_eq!((stats.total, stats.pending, stats.completed), (1, 1, 0));
    assert!(q.release(&ids[2], 3).is_ok_and(|released| !released));
  }
}
