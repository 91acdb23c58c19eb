//! What was accepted while the server could not be reached: jobs enqueued
//! and failures recorded, kept here (in this process's memory) and written
//! to the server when it answers again. A job keeps the id it was given;
//! the enqueue script takes an id it already holds as written, so a job
//! whose first write did reach the server (the reply was lost) is not
//! written twice: every kept job arrives exactly once.
//!
//! One task at a time writes the outbox out, on the link's runtime, oldest
//! first; it waits between tries while the server is away and ends when the
//! outbox is empty. Nothing is dropped: a write the server refuses (a full
//! queue) stays for the next try.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::Script;

use super::link::RedisLink;

/// How long the writer waits between tries while the server is away.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// One script run, kept whole: the script, its key head and its arguments.
#[derive(Clone)]
pub struct Write {
  pub script: &'static Script,
  pub head: String,
  pub args: Vec<String>,
  pub kind: WriteKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
  Job,
  Failure,
}

#[derive(Default)]
pub struct Outbox {
  writes: Mutex<VecDeque<Write>>,
  writing: AtomicBool,
}

impl Outbox {
  /// Jobs waiting here to be written.
  pub fn jobs(&self) -> usize {
    self.count(WriteKind::Job)
  }

  pub fn failures(&self) -> usize {
    self.count(WriteKind::Failure)
  }

  fn count(&self, kind: WriteKind) -> usize {
    self.writes.lock().iter().filter(|w| w.kind == kind).count()
  }

  /// Keeps `write` and makes sure a task is writing the outbox out.
  pub fn keep(self: &Arc<Self>, link: &RedisLink, write: Write) {
    self.writes.lock().push_back(write);
    self.start_writer(link);
  }

  fn start_writer(self: &Arc<Self>, link: &RedisLink) {
    if self.writing.swap(true, Ordering::AcqRel) {
      return;
    }
    let outbox = self.clone();
    let writer = link.clone();
    link.spawn(async move { outbox.write_out(&writer).await });
  }

  async fn write_out(self: Arc<Self>, link: &RedisLink) {
    loop {
      let next = self.writes.lock().front().cloned();
      let Some(write) = next else {
        self.writing.store(false, Ordering::Release);
        // Kept meanwhile, after the look above: write that too.
        if self.writes.lock().is_empty() || self.writing.swap(true, Ordering::AcqRel) {
          return;
        }
        continue;
      };
      if send(link, &write).await {
        self.writes.lock().pop_front();
      } else {
        tokio::time::sleep(RETRY_EVERY).await;
      }
    }
  }
}

/// Whether the server took the write (or already held it).
async fn send(link: &RedisLink, write: &Write) -> bool {
  let mut invocation = write.script.key(&write.head);
  invocation.arg(&write.args);
  let reply: Result<redis::Value, _> = link
    .run_async(move |mut connection| async move { invocation.invoke_async(&mut connection).await })
    .await;
  match (write.kind, reply) {
    (_, Err(_)) => false,
    (WriteKind::Failure, Ok(_)) => true,
    (WriteKind::Job, Ok(reply)) => {
      // "OK", or "DUPLICATE": a first write that reached the server.
      let first = match &reply {
        redis::Value::Array(items) => items.first().and_then(super::reply::text),
        _ => None,
      };
      matches!(first.as_deref(), Some("OK" | "DUPLICATE"))
    }
  }
}
