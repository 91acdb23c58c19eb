//! Server-assisted client-side caching: a RESP3 connection of its own on
//! which the server announces every change to this prefix's cache entries
//! and failure history (`CLIENT TRACKING ON BCAST PREFIX ...`), so that
//! `local_copy.rs` may answer the synchronous reads from memory.
//!
//! Broadcast mode is used because the announcements then do not depend on
//! which connection read a key: reads keep going over the link's shared
//! connection (RESP2, unchanged), and this one only listens. A server that
//! cannot track (RESP2 only, `CLIENT` refused by an ACL, a proxy) leaves
//! the copy dark: every read asks the server, as before, and a coded
//! warning says so once. A lost connection forgets the copy at once; it is
//! trusted again only after the new connection confirmed the tracking.
//!
//! The connection is opened at the first read, not when the link is made,
//! so an app that never reads does not hold it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, RedisError, Value};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};

use super::local_copy::LocalCopy;
use super::reply::refused_by_acl_or_server;
use crate::core::notices;

/// The coded warning of a server that does not track for us.
pub const TRACKING_UNAVAILABLE: &str = "REDIS_TRACKING_UNAVAILABLE";
/// Replies kept when no store gave bounds: the default cache's.
const DEFAULT_ENTRIES: usize = 1000;
const DEFAULT_BYTES: usize = 50 << 20;
/// How long to wait before asking a server that did not answer again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What the connection that listens is made from, taken when it starts.
struct Setup {
  client: redis::Client,
  prefixes: Vec<String>,
  timeout: Duration,
  place: String,
}

pub struct Tracking {
  copy: Arc<LocalCopy>,
  started: AtomicBool,
  setup: Mutex<Option<Setup>>,
  /// Dropped with the link, which ends the listening task.
  _stop: oneshot::Sender<()>,
  stopped: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Tracking {
  /// Ready to listen with `client` (a RESP3 one) for changes under
  /// `prefixes`; `None` for a link whose reads must always ask.
  pub fn new(
    client: Option<redis::Client>,
    prefixes: Vec<String>,
    timeout: Duration,
    place: String,
  ) -> Self {
    let (stop, stopped) = oneshot::channel();
    Self {
      copy: Arc::new(LocalCopy::new(DEFAULT_ENTRIES, DEFAULT_BYTES)),
      started: AtomicBool::new(client.is_none()),
      setup: Mutex::new(client.map(|client| Setup {
        client,
        prefixes,
        timeout,
        place,
      })),
      _stop: stop,
      stopped: Mutex::new(Some(stopped)),
    }
  }

  pub fn copy(&self) -> &Arc<LocalCopy> {
    &self.copy
  }

  /// Opens the listening connection, once.
  pub fn start(&self, handle: &Handle) {
    if self.started.load(Ordering::Acquire) || self.started.swap(true, Ordering::AcqRel) {
      return;
    }
    let (Some(setup), Some(stopped)) = (self.setup.lock().take(), self.stopped.lock().take())
    else {
      return;
    };
    handle.spawn(listen(setup, Arc::clone(&self.copy), stopped));
  }
}

/// Listens for the server's announcements until the link is dropped.
async fn listen(setup: Setup, copy: Arc<LocalCopy>, mut stopped: oneshot::Receiver<()>) {
  let lost = Arc::new(Notify::new());
  let announce = {
    let (copy, lost) = (Arc::clone(&copy), Arc::clone(&lost));
    move |push: PushInfo| {
      take_announcement(&copy, &lost, push);
      Ok::<(), redis::aio::SendError>(())
    }
  };
  let config = ConnectionManagerConfig::new()
    .set_connection_timeout(Some(setup.timeout))
    .set_response_timeout(Some(setup.timeout))
    .set_number_of_retries(1)
    .set_max_delay(Duration::from_millis(200))
    .set_push_sender(announce);
  let mut tracking_on = redis::pipe();
  tracking_on
    .cmd("CLIENT")
    .arg("TRACKING")
    .arg("OFF")
    .ignore();
  tracking_on
    .cmd("CLIENT")
    .arg("TRACKING")
    .arg("ON")
    .arg("BCAST");
  for prefix in &setup.prefixes {
    tracking_on.arg("PREFIX").arg(prefix);
  }
  let mut manager = None;
  loop {
    let attempt = async {
      let connection = match manager.take() {
        Some(connection) => connection,
        None => ConnectionManager::new_with_config(setup.client.clone(), config.clone()).await?,
      };
      manager = Some(connection.clone());
      let mut connection = connection;
      // Whatever was kept may have changed unseen while tracking was off.
      copy.go_dark();
      let asked = copy.epoch_ticket();
      tracking_on
        .query_async::<()>(&mut connection)
        .await
        .map(|()| asked)
    };
    let outcome = tokio::select! {
      _ = &mut stopped => return,
      outcome = tokio::time::timeout(setup.timeout, attempt) => outcome,
    };
    match outcome {
      Ok(Ok(asked)) if copy.go_live(asked) => {
        tokio::select! {
          _ = &mut stopped => return,
          () = lost.notified() => {}
        }
      }
      Ok(Err(error)) if cannot_track(&error) => {
        copy.go_dark();
        notices::warn_once(
          TRACKING_UNAVAILABLE,
          &setup.place,
          format!(
            "Redis at {} does not track keys for this client ({error}): the synchronous reads (aiResponseCache.get, shouldSkipService) ask the server each time, a round trip on the JavaScript thread",
            setup.place
          ),
        );
        return;
      }
      _ => {
        tokio::select! {
          _ = &mut stopped => return,
          () = tokio::time::sleep(RETRY_EVERY) => {}
        }
      }
    }
  }
}

/// One push from the server (or the library's own disconnection notice).
fn take_announcement(copy: &LocalCopy, lost: &Notify, push: PushInfo) {
  match push.kind {
    PushKind::Invalidate => match push.data.first() {
      Some(Value::Array(keys)) => {
        for key in keys {
          if let Value::BulkString(key) = key {
            copy.changed(&String::from_utf8_lossy(key));
          }
        }
      }
      // The server flushed, or dropped its tracking table.
      _ => copy.changed_all(),
    },
    PushKind::Disconnection => {
      copy.go_dark();
      lost.notify_one();
    }
    _ => {}
  }
}

/// Whether the server refuses tracking for good (no RESP3, no `CLIENT`).
fn cannot_track(error: &RedisError) -> bool {
  matches!(error.code(), Some("NOPROTO" | "NOPERM"))
    || refused_by_acl_or_server(&error.to_string())
    || error.to_string().contains("HELLO")
}
