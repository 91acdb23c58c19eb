//! What was accepted while the server could not be reached: jobs enqueued
//! and failures recorded, kept here and written to the server when it
//! answers again, and leases given up on, revoked when it answers. Kept in
//! this process's memory, and also in the SQLite file when the options
//! gave a `storagePath` with the `redisUrl` (jobs and failures), so that
//! what was accepted survives the process too.
//!
//! Every kept write is idempotent by an id it carries: the enqueue command
//! takes a job id it holds, or held for a job since removed, as written;
//! a failure record carries an id the history remembers; a revoke names
//! its lease's token. So a write whose first send did reach the server
//! (the reply was lost) is made once however often it is sent again.
//!
//! One task at a time (the link's `write_out`) writes the outbox out,
//! oldest first; it waits between tries while the server does not answer
//! and ends when nothing is left. A write the server cannot take now (a
//! queue full of live jobs, a server out of memory) waits for a later
//! try without holding up the writes behind it; one it refuses for good
//! (a job over the server's byte bound, foreign data at its keys, a user
//! not allowed) is set aside: counted, warned about, kept in the file's
//! `redis_outbox` with the reason (never sent again), never blocking the
//! rest.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::Script;

use super::commands;
use crate::core::storage::error::StorageResult;
use crate::core::storage::sqlite::{FileOptions, SqliteOutbox};

/// One command run, kept whole: the script, its keys and its arguments.
#[derive(Clone)]
pub struct Write {
  /// `None` for a write read back from the file, until the store it
  /// belongs to opens and names its script (`resume`).
  pub script: Option<&'static Script>,
  /// `KEYS`: the store's key head first (all a write read back from the
  /// file has, until `resume`).
  pub keys: Vec<String>,
  pub args: Vec<String>,
  pub kind: WriteKind,
  /// What it holds, as the bound on what waits here counts it.
  pub bytes: usize,
  /// What it is, for messages (a job's id).
  pub label: String,
  /// This outbox's number for it.
  serial: u64,
  /// Its row in the file, when there is one.
  row: Option<i64>,
  /// Not sent again before this (the server could not take it yet).
  not_before: Option<Instant>,
  /// What runs after it, while its reply says there is more to do.
  pub follow: Option<FollowUp>,
}

/// The rest of a kept write's work, a bounded step per run (a lowered
/// bound's evictions): `script` with `args`, and a cursor when `more` gives
/// one, run while `more` reads "more" from the last reply.
#[derive(Clone)]
pub struct FollowUp {
  pub script: &'static Script,
  pub args: Vec<String>,
  /// `None` when the reply says the work is done; else the cursor to add
  /// to `args` for the next run, if any.
  pub more: fn(&redis::Value) -> Option<Option<String>>,
}

impl Write {
  /// Whether it is kept in the file too.
  pub fn in_file(&self) -> bool {
    self.row.is_some()
  }

  pub fn new(
    script: &'static Script,
    keys: Vec<String>,
    args: Vec<String>,
    kind: WriteKind,
    bytes: usize,
  ) -> Self {
    let label = label_of(kind, &args);
    Self {
      script: Some(script),
      keys,
      args,
      kind,
      bytes,
      label,
      serial: 0,
      row: None,
      not_before: None,
      follow: None,
    }
  }

  /// With `follow` to run after it.
  pub fn then(mut self, follow: FollowUp) -> Self {
    self.follow = Some(follow);
    self
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
  Job = 0,
  Failure = 1,
  /// New bounds asked for while the server was away; kept in memory only
  /// (a later process asks for its own).
  Bound = 2,
  /// A lease whose reply was lost, to be given back (in the file too, so
  /// that a later process gives it back if this one ends first).
  Revoke = 3,
}

impl WriteKind {
  /// The kind of a write kept in the file (never `Bound`: a later process
  /// asks for its own bounds).
  fn lasting(code: u8) -> Option<Self> {
    [WriteKind::Job, WriteKind::Failure, WriteKind::Revoke]
      .into_iter()
      .find(|kind| *kind as u8 == code)
  }
}

/// What the server made of one send.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
  /// Written (or already held: an earlier send landed), with the reply.
  Taken(redis::Value),
  /// No answer: tried again after a pause, in order.
  NoAnswer,
  /// Refused for now (a full queue, a server out of memory): tried again
  /// later, without holding up the writes behind it.
  Later,
  /// Refused for good, with the reason: set aside.
  Refused(String),
}

/// What the writer does next.
pub enum Next {
  Send(Write),
  /// Only writes the server could not take yet are left: wait this long.
  Wait(Duration),
  /// Nothing is left; the writer ends (it has given up its claim).
  Done,
}

#[derive(Default)]
pub struct Outbox {
  writes: Mutex<VecDeque<Write>>,
  writing: AtomicBool,
  serials: AtomicU64,
  /// Writes set aside (refused for good), this process's and those the
  /// file held when it opened.
  refused: AtomicUsize,
  file: Mutex<Option<SqliteOutbox>>,
}

impl Outbox {
  /// An outbox that keeps its writes in the file at `path` too, with the
  /// writes a previous process left there.
  pub fn in_file(path: &Path, options: FileOptions) -> StorageResult<Self> {
    let mut file = SqliteOutbox::open(path, options)?;
    let outbox = Self::default();
    let kept = file.all()?;
    outbox
      .refused
      .store(file.refused_count()?, Ordering::Relaxed);
    {
      let mut writes = outbox.writes.lock();
      for (row, kind, head, args) in kept {
        let Some(kind) = WriteKind::lasting(kind) else {
          continue;
        };
        let label = label_of(kind, &args);
        writes.push_back(Write {
          script: None,
          keys: vec![head],
          bytes: args.iter().map(String::len).sum(),
          args,
          kind,
          label,
          serial: outbox.serials.fetch_add(1, Ordering::Relaxed),
          row: Some(row),
          not_before: None,
          follow: None,
        });
      }
    }
    *outbox.file.lock() = Some(file);
    Ok(outbox)
  }

  /// Jobs waiting here to be written.
  pub fn jobs(&self) -> usize {
    self.held(WriteKind::Job).0
  }

  pub fn failures(&self) -> usize {
    self.held(WriteKind::Failure).0
  }

  /// How many writes of `kind` wait here, and what they hold.
  pub fn held(&self, kind: WriteKind) -> (usize, usize) {
    let writes = self.writes.lock();
    let of_kind = writes.iter().filter(|w| w.kind == kind);
    of_kind.fold((0, 0), |(count, bytes), w| (count + 1, bytes + w.bytes))
  }

  /// Writes of every kind waiting here (revokes and bounds too).
  pub fn waiting(&self) -> usize {
    self.writes.lock().len()
  }

  /// Writes set aside so far (refused for good by the server).
  pub fn refused(&self) -> usize {
    self.refused.load(Ordering::Relaxed)
  }

  /// Keeps `write` (in the file first, when there is one: accepted only
  /// once it is there). True when the caller must start a writer (none is
  /// running).
  pub fn keep(&self, mut write: Write) -> StorageResult<bool> {
    let file = &mut *self.file.lock();
    let lasting = write.kind != WriteKind::Bound;
    if let (Some(file), true) = (file.as_mut(), lasting) {
      write.row = Some(file.add(write.kind as u8, &write.keys[0], &write.args)?);
    }
    write.serial = self.serials.fetch_add(1, Ordering::Relaxed);
    self.writes.lock().push_back(write);
    Ok(self.claim_writer())
  }

  /// Forgets the oldest write of `kind` that waits here (the history's
  /// rule when what waits would pass its byte bound: the oldest failure
  /// goes first). True when there was one.
  pub fn drop_oldest(&self, kind: WriteKind) -> bool {
    let mut writes = self.writes.lock();
    let Some(index) = writes.iter().position(|w| w.kind == kind) else {
      return false;
    };
    let dropped = writes.remove(index);
    drop(writes);
    self.remove_row(dropped.and_then(|w| w.row));
    true
  }

  /// A store of `kind` opened: the writes of its kind read back from the
  /// file can be written now, with its script and keys (`names` after the
  /// head). True when the caller must start a writer.
  pub fn resume(&self, kind: WriteKind, script: &'static Script, names: &[&str]) -> bool {
    let mut any = false;
    for write in self.writes.lock().iter_mut() {
      if write.kind == kind && write.script.is_none() {
        write.script = Some(script);
        write.keys = commands::keys(&write.keys[0], names);
        any = true;
      }
    }
    any && self.claim_writer()
  }

  /// Whether this caller becomes the one writer.
  fn claim_writer(&self) -> bool {
    !self.writing.swap(true, Ordering::AcqRel)
  }

  /// The oldest write that can be sent now.
  pub fn next(&self) -> Next {
    loop {
      match self.peek() {
        Next::Done => {}
        other => return other,
      }
      self.writing.store(false, Ordering::Release);
      // Kept after the look above, before the claim went: that keeper
      // found a writer running, so this one goes on.
      if matches!(self.peek(), Next::Done) || !self.claim_writer() {
        return Next::Done;
      }
    }
  }

  fn peek(&self) -> Next {
    let writes = self.writes.lock();
    let now = Instant::now();
    let mut soonest: Option<Instant> = None;
    for write in writes.iter().filter(|w| w.script.is_some()) {
      match write.not_before {
        Some(at) if at > now => soonest = Some(soonest.map_or(at, |s| s.min(at))),
        _ => return Next::Send(write.clone()),
      }
    }
    match soonest {
      Some(at) => Next::Wait(at - now),
      None => Next::Done,
    }
  }

  /// `write` reached the server (or was refused for good and `set_aside`
  /// recorded why): it goes.
  pub fn written(&self, write: &Write) {
    self.take_out(write);
    self.remove_row(write.row);
  }

  /// The server cannot take `write` yet: it is sent again after `pause`,
  /// the writes behind it meanwhile.
  pub fn postpone(&self, write: &Write, pause: Duration) {
    let mut writes = self.writes.lock();
    if let Some(held) = writes.iter_mut().find(|w| w.serial == write.serial) {
      held.not_before = Some(Instant::now() + pause);
    }
  }

  /// The server refused `write` for good: it leaves the queue of writes
  /// (in the file it stays, marked with `reason`, never sent again).
  pub fn set_aside(&self, write: &Write, reason: &str) {
    self.take_out(write);
    self.refused.fetch_add(1, Ordering::Relaxed);
    if let (Some(row), Some(file)) = (write.row, self.file.lock().as_mut()) {
      let _ = file.refuse(row, reason);
    }
  }

  fn take_out(&self, write: &Write) {
    self.writes.lock().retain(|w| w.serial != write.serial);
  }

  fn remove_row(&self, row: Option<i64>) {
    if let (Some(row), Some(file)) = (row, self.file.lock().as_mut()) {
      // A row left behind is sent again after a restart, and taken as
      // written then (its id is already held).
      let _ = file.remove(row);
    }
  }
}

/// What a kept write is, for messages: a job by its id.
fn label_of(kind: WriteKind, args: &[String]) -> String {
  match kind {
    // The enqueue command's own arguments start after the six shared
    // ones (queue.lua), with the id.
    WriteKind::Job => format!("job {}", args.get(6).map_or("?", String::as_str)),
    WriteKind::Failure => "a failure record".into(),
    WriteKind::Bound => "new bounds".into(),
    WriteKind::Revoke => "a lease given up on".into(),
  }
}

/// What the server made of a kept write of `kind`, from its reply (an
/// error reply never gets here).
pub fn judge(kind: WriteKind, reply: redis::Value) -> Sent {
  if kind != WriteKind::Job {
    return Sent::Taken(reply);
  }
  // The queue's commands reply {result, dropped}; enqueue's result is
  // {word, ...}.
  let word = |value: &redis::Value| match value {
    redis::Value::Array(items) => items.first().and_then(super::reply::text),
    _ => None,
  };
  let result = match &reply {
    redis::Value::Array(items) => items.first(),
    _ => None,
  };
  match result.and_then(word).as_deref() {
    // "DUPLICATE": an earlier send landed (or the job ran and was removed).
    Some("OK" | "DUPLICATE") => Sent::Taken(reply),
    Some("FULL" | "FULL_BYTES") => Sent::Later,
    Some("TOO_LARGE") => Sent::Refused(
      "the job is larger than the queue's whole maxBytes on the server, which another instance set lower".into(),
    ),
    other => Sent::Refused(format!("an unexpected reply to the enqueue: {other:?}")),
  }
}
