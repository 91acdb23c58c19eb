//! Coded warnings that the core raises on its own threads (a store's
//! background writer, a script that found a job gone), for the binding to
//! show as `process.emitWarning(message, { code })`. The core only hands
//! them to the sink the binding installed; those raised before there is
//! one (while the package loads) are handed over when it comes. The last
//! few are kept for `recent` (cargo tests read them).

use std::collections::{HashSet, VecDeque};
use std::sync::LazyLock;

use parking_lot::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
  pub code: &'static str,
  pub message: String,
}

type Sink = Box<dyn Fn(Notice) + Send + Sync>;

struct Notices {
  sink: Option<Sink>,
  /// (code, topic) pairs already told, for `warn_once`.
  told: HashSet<(&'static str, String)>,
  recent: VecDeque<Notice>,
  /// Raised before there was a sink, for the first one.
  undelivered: VecDeque<Notice>,
}

static NOTICES: LazyLock<Mutex<Notices>> = LazyLock::new(|| {
  Mutex::new(Notices {
    sink: None,
    told: HashSet::new(),
    recent: VecDeque::new(),
    undelivered: VecDeque::new(),
  })
});

/// Kept for `recent`, and the `warn_once` topics remembered, at most.
const KEPT: usize = 64;
const TOPICS: usize = 10_000;

/// Where notices go from now on (those raised before go there first).
pub fn set_sink(sink: impl Fn(Notice) + Send + Sync + 'static) {
  let mut notices = NOTICES.lock();
  for notice in std::mem::take(&mut notices.undelivered) {
    sink(notice);
  }
  notices.sink = Some(Box::new(sink));
}

/// Raises a coded warning.
pub fn warn(code: &'static str, message: impl Into<String>) {
  let notice = Notice {
    code,
    message: message.into(),
  };
  let mut notices = NOTICES.lock();
  if notices.recent.len() == KEPT {
    notices.recent.pop_front();
  }
  notices.recent.push_back(notice.clone());
  match &notices.sink {
    Some(sink) => sink(notice),
    None if notices.undelivered.len() < KEPT => notices.undelivered.push_back(notice),
    None => {}
  }
}

/// Raises a coded warning once per process for `topic` (a server, a key
/// prefix): a condition that lasts is told once, not on every call.
pub fn warn_once(code: &'static str, topic: &str, message: impl Into<String>) {
  {
    let mut notices = NOTICES.lock();
    if notices.told.len() >= TOPICS {
      notices.told.clear();
    }
    if !notices.told.insert((code, topic.to_string())) {
      return;
    }
  }
  warn(code, message);
}

/// The last notices raised (at most 64), oldest first.
pub fn recent() -> Vec<Notice> {
  NOTICES.lock().recent.iter().cloned().collect()
}
