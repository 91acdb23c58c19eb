//! What was accepted while the server could not be reached: jobs enqueued
//! and failures recorded, kept here and written to the server when it
//! answers again. Kept in this process's memory, and also in the SQLite
//! file when the options gave a `storagePath` with the `redisUrl`, so that
//! what was accepted survives the process too. A job keeps the id it was
//! given; the enqueue script takes an id it already holds as written, so a
//! job whose first write did reach the server (the reply was lost) is not
//! written twice: every kept job arrives exactly once.
//!
//! One task at a time (the link's `write_out`) writes the outbox out,
//! oldest first; it waits between tries while the server is away and ends
//! when nothing is left. Nothing is dropped: a write the server refuses (a
//! full queue) stays for the next try.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use redis::Script;

use crate::core::storage::error::StorageResult;
use crate::core::storage::sqlite::{FileOptions, SqliteOutbox};

/// One script run, kept whole: the script, its key head and its arguments.
#[derive(Clone)]
pub struct Write {
  /// `None` for a write read back from the file, until the store it
  /// belongs to opens and names its script (`resume`).
  pub script: Option<&'static Script>,
  pub head: String,
  pub args: Vec<String>,
  pub kind: WriteKind,
  /// Its row in the file, when there is one.
  row: Option<i64>,
}

impl Write {
  pub fn new(script: &'static Script, head: String, args: Vec<String>, kind: WriteKind) -> Self {
    Self {
      script: Some(script),
      head,
      args,
      kind,
      row: None,
    }
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
  Job = 0,
  Failure = 1,
  /// New bounds asked for while the server was away; kept in memory only
  /// (a later process asks for its own).
  Bound = 2,
}

#[derive(Default)]
pub struct Outbox {
  writes: Mutex<VecDeque<Write>>,
  writing: AtomicBool,
  file: Mutex<Option<SqliteOutbox>>,
}

impl Outbox {
  /// An outbox that keeps its writes in the file at `path` too, with the
  /// writes a previous process left there.
  pub fn in_file(path: &Path, options: FileOptions) -> StorageResult<Self> {
    let mut file = SqliteOutbox::open(path, options)?;
    let writes = file
      .all()?
      .into_iter()
      .map(|(row, kind, head, args)| Write {
        script: None,
        head,
        args,
        kind: if kind == WriteKind::Job as u8 {
          WriteKind::Job
        } else {
          WriteKind::Failure
        },
        row: Some(row),
      })
      .collect();
    Ok(Self {
      writes: Mutex::new(writes),
      writing: AtomicBool::new(false),
      file: Mutex::new(Some(file)),
    })
  }

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

  /// Keeps `write` (in the file first, when there is one: accepted only
  /// once it is there). True when the caller must start a writer (none is
  /// running).
  pub fn keep(&self, mut write: Write) -> StorageResult<bool> {
    let file = &mut *self.file.lock();
    if let (Some(file), false) = (file.as_mut(), write.kind == WriteKind::Bound) {
      write.row = Some(file.add(write.kind as u8, &write.head, &write.args)?);
    }
    self.writes.lock().push_back(write);
    Ok(self.claim_writer())
  }

  /// A store of `kind` opened: the writes of its kind read back from the
  /// file can be written now, with its script. True when the caller must
  /// start a writer.
  pub fn resume(&self, kind: WriteKind, script: &'static Script) -> bool {
    let mut any = false;
    for write in self.writes.lock().iter_mut() {
      if write.kind == kind && write.script.is_none() {
        write.script = Some(script);
        any = true;
      }
    }
    any && self.claim_writer()
  }

  /// Whether this caller becomes the one writer.
  fn claim_writer(&self) -> bool {
    !self.writing.swap(true, Ordering::AcqRel)
  }

  /// The oldest write that can be made now, and where it is; `None` when
  /// the writer should end (it has given up its claim then).
  pub fn next(&self) -> Option<(usize, Write)> {
    loop {
      if let Some(next) = self.peek() {
        return Some(next);
      }
      self.writing.store(false, Ordering::Release);
      // Kept after the look above, before the claim went: that keeper
      // found a writer running, so this one goes on.
      if self.peek().is_none() || !self.claim_writer() {
        return None;
      }
    }
  }

  fn peek(&self) -> Option<(usize, Write)> {
    let writes = self.writes.lock();
    let index = writes.iter().position(|w| w.script.is_some())?;
    Some((index, writes[index].clone()))
  }

  /// `write`, at `index`, reached the server: it goes.
  pub fn written(&self, index: usize, write: &Write) {
    // Only the writer removes, and keepers only append: still at `index`.
    self.writes.lock().remove(index);
    if let (Some(row), Some(file)) = (write.row, self.file.lock().as_mut()) {
      // A row left behind is written again after a restart, and taken as
      // written then (a job's id is already held).
      let _ = file.remove(row);
    }
  }
}

/// Whether the server took a write of `kind` (or already held it), from
/// its reply.
pub fn accepted(kind: WriteKind, reply: &redis::Value) -> bool {
  match kind {
    WriteKind::Failure | WriteKind::Bound => true,
    // "OK", or "DUPLICATE": a first write that reached the server.
    WriteKind::Job => {
      let first = match reply {
        redis::Value::Array(items) => items.first().and_then(super::reply::text),
        _ => None,
      };
      matches!(first.as_deref(), Some("OK" | "DUPLICATE"))
    }
  }
}
