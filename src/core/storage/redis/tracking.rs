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
use redis::{
  ConnectionAddr, ConnectionInfo, ErrorKind, PushInfo, PushKind, RedisError, RedisResult, Value,
};
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
/// How often a listening connection is asked whether it still listens
/// where it should: the longest a silently dropped connection (a NAT or
/// load balancer's idle timeout) or a slot moved to another master leaves
/// the copy unwarned.
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Makes a client (TLS settings included) for a node's connection info.
pub type MakeClient = Arc<dyn Fn(ConnectionInfo) -> Option<redis::Client> + Send + Sync>;

/// What the connection that listens is made from: the nodes the URL
/// names, and how to reach the one holding the prefix's keys.
#[derive(Clone)]
pub struct Setup {
  /// The nodes the URL names (RESP3), tried in order.
  pub seeds: Vec<ConnectionInfo>,
  pub make_client: MakeClient,
  pub prefixes: Vec<String>,
  pub timeout: Duration,
  pub place: String,
}

pub struct Tracking {
  copy: Arc<LocalCopy>,
  home: Setup,
  started: AtomicBool,
  /// Dropped with the link, which ends the listening task.
  _stop: oneshot::Sender<()>,
  stopped: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Tracking {
  /// Ready to listen as `setup` says.
  pub fn new(setup: Setup) -> Self {
    let (stop, stopped) = oneshot::channel();
    Self {
      copy: Arc::new(LocalCopy::new(DEFAULT_ENTRIES, DEFAULT_BYTES)),
      home: setup,
      started: AtomicBool::new(false),
      _stop: stop,
      stopped: Mutex::new(Some(stopped)),
    }
  }

  pub fn copy(&self) -> &Arc<LocalCopy> {
    &self.copy
  }

  pub fn home(&self) -> &Setup {
    &self.home
  }

  /// Opens the listening connection, once.
  pub fn start(&self, handle: &Handle) {
    if self.started.load(Ordering::Acquire) || self.started.swap(true, Ordering::AcqRel) {
      return;
    }
    let Some(stopped) = self.stopped.lock().take() else {
      return;
    };
    handle.spawn(listen(self.home.clone(), Arc::clone(&self.copy), stopped));
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
  loop {
    // Made again after every loss: on a cluster the prefix's master may
    // have changed.
    let attempt = async {
      let client = home_node(&setup).await?;
      let mut connection = ConnectionManager::new_with_config(client, config.clone()).await?;
      // Whatever was kept may have changed unseen while tracking was off.
      copy.go_dark();
      let asked = copy.epoch_ticket();
      tracking_on.query_async::<()>(&mut connection).await?;
      Ok::<_, RedisError>((connection, asked))
    };
    let outcome = tokio::select! {
      _ = &mut stopped => return,
      outcome = tokio::time::timeout(setup.timeout, attempt) => outcome,
    };
    match outcome {
      // Held while it listens: a connection dropped here would announce
      // nothing more, and tell nobody.
      Ok(Ok((listening, asked))) if copy.go_live(asked) => {
        tokio::select! {
          _ = &mut stopped => return,
          () = lost.notified() => {}
          () = until_unsure(listening, &setup) => copy.go_dark(),
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

/// Returns once the listening connection can no longer be trusted to
/// announce every change: it does not answer a probe in time, or its node
/// no longer serves the prefix's keys (on a cluster, a probe of one of
/// them is then redirected with `MOVED` or `ASK`). Until then it probes
/// every `PROBE_EVERY`: one cheap `EXISTS`, which is also what keeps an
/// idle connection from being dropped unseen.
async fn until_unsure(mut listening: ConnectionManager, setup: &Setup) {
  let mut probe = redis::cmd("EXISTS");
  probe.arg(format!("{}probe", setup.prefixes[0]));
  loop {
    tokio::time::sleep(PROBE_EVERY).await;
    let asked = probe.query_async::<i64>(&mut listening);
    match tokio::time::timeout(setup.timeout, asked).await {
      Ok(Ok(_)) => {}
      _ => return,
    }
  }
}

/// The node holding the prefix's keys: the one the URL names, or, on a
/// cluster, the master serving the prefix's slot (a node announces changes
/// to its own keys only, and serves blocking pops of its own lists only),
/// as the first seed that answers says.
pub async fn home_node(setup: &Setup) -> RedisResult<redis::Client> {
  let mut last = None;
  for seed in &setup.seeds {
    let Some(client) = (setup.make_client)(seed.clone()) else {
      continue;
    };
    match master_of_prefix(&client, &setup.prefixes[0]).await {
      Ok(None) => return Ok(client),
      Ok(Some((host, port))) => {
        let addr = match seed.addr() {
          ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
          } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
          },
          _ => ConnectionAddr::Tcp(host, port),
        };
        if let Some(master) = (setup.make_client)(seed.clone().set_addr(addr)) {
          return Ok(master);
        }
      }
      Err(error) => last = Some(error),
    }
  }
  Err(last.unwrap_or_else(|| RedisError::from((ErrorKind::Client, "no Redis node to listen on"))))
}

/// On a cluster node, the address of the master serving `key`'s slot;
/// `None` on a standalone server.
async fn master_of_prefix(client: &redis::Client, key: &str) -> RedisResult<Option<(String, u16)>> {
  let mut node = client.get_multiplexed_async_connection().await?;
  let info: String = redis::cmd("INFO")
    .arg("cluster")
    .query_async(&mut node)
    .await?;
  if !info.contains("cluster_enabled:1") {
    return Ok(None);
  }
  let slot: i64 = redis::cmd("CLUSTER")
    .arg("KEYSLOT")
    .arg(key)
    .query_async(&mut node)
    .await?;
  let ranges: Vec<Value> = redis::cmd("CLUSTER")
    .arg("SLOTS")
    .query_async(&mut node)
    .await?;
  for range in ranges {
    let Value::Array(range) = range else { continue };
    let bound = |i: usize| match range.get(i) {
      Some(Value::Int(n)) => Some(*n),
      _ => None,
    };
    let (Some(first), Some(last)) = (bound(0), bound(1)) else {
      continue;
    };
    if !(first..=last).contains(&slot) {
      continue;
    }
    if let Some(Value::Array(master)) = range.get(2) {
      let host = master.first().and_then(super::reply::text);
      let port = master.get(1).and_then(|port| match port {
        Value::Int(port) => u16::try_from(*port).ok(),
        _ => None,
      });
      if let (Some(host), Some(port)) = (host, port) {
        return Ok(Some((host, port)));
      }
    }
  }
  Err(RedisError::from((
    ErrorKind::Client,
    "no master serves the prefix's slot",
  )))
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
