//! Writing the outbox out: what was accepted while the server did not
//! answer (outbox.rs keeps it) is sent by one task on the link's runtime,
//! oldest first, once the server answers again, with the follow-up runs a
//! kept write asks for. Apart from outbox.rs, which holds the writes and
//! needs no link, so that the two do not import each other.

use std::time::Duration;

use redis::Script;

use super::link::{invocation, run_script, RedisLink};
use super::outbox::{judge, FollowUp, Next, Sent, Write, WriteKind};
use crate::core::notices;
use crate::core::storage::error::{StorageErrorKind, StorageResult};

/// The coded warning of a kept write the server refused for good.
pub const SET_ASIDE: &str = "REDIS_WRITE_SET_ASIDE";

impl RedisLink {
  /// Keeps a write the server did not answer (it is away, or slow), to be
  /// made when it answers.
  pub fn keep(&self, write: Write) -> StorageResult<()> {
    if self.outbox().keep(write)? {
      self.start_writer();
    }
    Ok(())
  }

  /// What a change the other instances must see (new bounds) comes to:
  /// `sent` as it went, or, when the server did not answer, `kept()` kept
  /// to be made when it answers, and the change counts as made.
  pub fn sent_or_kept(
    &self,
    sent: StorageResult<()>,
    kept: impl FnOnce() -> Write,
  ) -> StorageResult<()> {
    match sent {
      Err(away) if away.is_no_answer() => self.keep(kept()),
      other => other,
    }
  }

  /// A store of `kind` opened: what a previous process kept of its kind
  /// can be written now, with `script` and the store's key `names`.
  pub fn resume(&self, kind: WriteKind, script: &'static Script, names: &[&str]) {
    if self.outbox().resume(kind, script, names) {
      self.start_writer();
    }
  }

  fn start_writer(&self) {
    let link = self.clone();
    self.spawn(async move { link.write_out().await });
  }

  /// Writes the outbox out, oldest first, waiting between tries while the
  /// server does not answer; ends when nothing is left.
  async fn write_out(&self) {
    const RETRY_EVERY: Duration = Duration::from_millis(250);
    const LATER: Duration = Duration::from_secs(2);
    let outbox = self.outbox();
    loop {
      let write = match outbox.next() {
        Next::Send(write) => write,
        Next::Wait(pause) => {
          tokio::time::sleep(pause).await;
          continue;
        }
        Next::Done => return,
      };
      match self.send(&write).await {
        Sent::Taken(reply) => {
          outbox.written(&write);
          if let Some(follow) = &write.follow {
            self.follow_up(&write.keys, follow, reply).await;
          }
        }
        Sent::NoAnswer => tokio::time::sleep(RETRY_EVERY).await,
        Sent::Later => outbox.postpone(&write, LATER),
        Sent::Refused(reason) => {
          outbox.set_aside(&write, &reason);
          notices::warn(
            SET_ASIDE,
            format!(
              "{} was accepted while Redis at {} did not answer, and the server has now refused it for good ({reason}); it is set aside, not written{}",
              write.label,
              self.place(),
              if write.in_file() { " (its row stays in the storagePath file's redis_outbox table)" } else { "" }
            ),
          );
        }
      }
    }
  }

  /// What the server made of one send of `write`.
  async fn send(&self, write: &Write) -> Sent {
    let Some(script) = write.script else {
      return Sent::NoAnswer;
    };
    let invocation = invocation(script, &write.keys, &write.args);
    // A kept job counts as written once it would survive its master.
    let durable = write.kind == WriteKind::Job;
    let within = self.replica_wait();
    let reply: StorageResult<redis::Value> = self
      .run_async(move |connection| run_script(invocation, connection, durable, within))
      .await;
    match reply {
      Ok(reply) => judge(write.kind, reply),
      Err(error) if error.is_no_answer() => Sent::NoAnswer,
      // Out of memory may pass; the rest is an answer that will not change.
      Err(error) if error.kind == StorageErrorKind::Full => Sent::Later,
      Err(error) => Sent::Refused(error.message),
    }
  }

  /// Runs the rest of a kept write's work (a lowered bound's evictions, a
  /// batch per run) after its first run replied `reply`. One that fails is
  /// left: later commands carry on with it.
  async fn follow_up(&self, keys: &[String], follow: &FollowUp, mut reply: redis::Value) {
    while let Some(cursor) = (follow.more)(&reply) {
      let mut args = follow.args.clone();
      args.extend(cursor);
      let next = self.command_async(follow.script, keys, &args).await;
      match next {
        Ok(next) => reply = next,
        Err(_) => return,
      }
    }
  }
}
