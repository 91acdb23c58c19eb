//! The connection to a Redis or Valkey server (or a Redis Cluster) that the
//! three Redis stores share: redis-rs's `ConnectionManager` (one
//! multiplexed connection that reconnects by itself), or its cluster client
//! when the URL names a cluster node (`connection.rs`), on a tokio runtime
//! handed in by the caller (the binding hands in napi-rs's), every request
//! bounded by `redisTimeoutMs`, and what the last request said about the
//! server (for `getStorageStatus()`).
//!
//! Around it, each in a file of its own: the options and their checks
//! (`options.rs`), TLS for `rediss://` URLs (`tls.rs`), the task that
//! writes the outbox out (`outbox_writer.rs`), the eviction policy's
//! warning (`eviction.rs`) and what an error reply means (`reply.rs`).
//!
//! The contract's synchronous methods need a blocking round trip: the
//! request runs as a task on the runtime and the caller waits for it on a
//! channel, never longer than the timeout. A caller that is itself a task
//! of a multi-threaded runtime (the worker's loop) waits inside
//! `block_in_place`, so the runtime's other tasks, the connection's own
//! among them, keep running.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
  ConnectionInfo, FromRedisValue, IntoConnectionInfo, ProtocolVersion, RedisError, RedisResult,
  Script, ScriptInvocation,
};
use tokio::runtime::{Handle, RuntimeFlavor};

use super::connection::{Connection, Connector, Mode};
use super::eviction::{self, memory_info};
use super::local_copy::{CopyStats, Depends, LocalCopy};
use super::options::{check_prefix, check_url, redact_url, seed_urls, RedisOptions};
use super::outbox::Outbox;
use super::reply::classify;
use super::tls::{self, certificate_error, certificates};
use super::tracking::{self, Tracking};
use crate::core::storage::error::{StorageError, StorageErrorKind, StorageResult};

/// What the last request said about the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
  /// `None` until a request has been made.
  pub reachable: Option<bool>,
  pub last_error: Option<String>,
  pub last_error_at: Option<u64>,
  /// The server's `maxmemory-policy`, once read (at the first answer).
  pub eviction_policy: Option<String>,
}

/// Every link alive in the process, so that a process about to end can
/// tell whether anything it accepted still waits for a server.
static LINKS: LazyLock<Mutex<Vec<Weak<Inner>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// The writes waiting for a server on every link of the process (kept
/// jobs, failures, bounds, leases to give back).
pub fn waiting_anywhere() -> usize {
  let mut links = LINKS.lock();
  links.retain(|link| link.strong_count() > 0);
  links
    .iter()
    .filter_map(Weak::upgrade)
    .map(|inner| inner.outbox.waiting())
    .sum()
}

#[derive(Clone)]
pub struct RedisLink {
  inner: Arc<Inner>,
}

struct Inner {
  handle: Handle,
  connector: Connector,
  /// `{prefix}:`: every key starts with it, so one prefix is one hash tag.
  key_head: String,
  timeout: Duration,
  url: String,
  place: String,
  password: Option<String>,
  /// The CA file trusted instead of the system's roots (`redisTlsCa`).
  tls_ca: Option<PathBuf>,
  status: Mutex<LinkStatus>,
  /// Whether the server's eviction policy was asked for.
  policy_asked: AtomicBool,
  /// What was accepted while the server was away, to be written to it.
  outbox: Arc<Outbox>,
  /// The local copy of what the synchronous reads read, and the
  /// connection that keeps it coherent.
  tracking: Tracking,
}

impl RedisLink {
  /// Prepares the connection without waiting for the server: an app starts
  /// while Redis is down, and the first request tries to connect.
  pub fn connect(options: &RedisOptions, handle: Handle) -> StorageResult<Self> {
    let bad = |message: String| StorageError::new(StorageErrorKind::Unavailable, message);
    check_url(&options.url).map_err(bad)?;
    check_prefix(&options.prefix).map_err(bad)?;
    let seeds = seed_urls(&options.url)
      .into_iter()
      .map(IntoConnectionInfo::into_connection_info)
      .collect::<RedisResult<Vec<_>>>()
      .map_err(|_| {
        bad(format!(
          "not a valid Redis URL: {}",
          redact_url(&options.url)
        ))
      })?;
    let info = seeds[0].clone();
    let password = info.redis_settings().password().map(str::to_string);
    let certificates = certificates(options).map_err(bad)?;
    let listening_seeds = seeds.iter().map(resp3).collect();
    let client = tls::client(info, certificates.clone()).map_err(bad)?;
    let timeout = Duration::from_millis(options.timeout_ms.max(1));
    let config = ConnectionManagerConfig::new()
      .set_connection_timeout(Some(timeout))
      .set_response_timeout(Some(timeout))
      .set_number_of_retries(1)
      .set_max_delay(Duration::from_millis(200));
    let manager = {
      let _entered = handle.enter();
      ConnectionManager::new_lazy_with_config(client, config)
    }
    .map_err(|e| bad(e.to_string()))?;
    let key_head = format!("{{{}}}:", options.prefix);
    let connector = Connector::new(
      manager,
      seeds,
      certificates.clone(),
      timeout,
      key_head.clone(),
    );
    let outbox = match &options.outbox_file {
      Some((path, file_options)) => Outbox::in_file(path, *file_options)?,
      None => Outbox::default(),
    };
    let place = format!(
      "{} (keyPrefix {})",
      redact_url(&options.url),
      options.prefix
    );
    let tracking = Tracking::new(tracking::Setup {
      seeds: listening_seeds,
      make_client: Arc::new(move |info| tls::client(info, certificates.clone()).ok()),
      prefixes: vec![format!("{key_head}c:e:"), format!("{key_head}f:")],
      timeout,
      place: place.clone(),
    });
    let link = Self {
      inner: Arc::new(Inner {
        handle,
        connector,
        key_head,
        timeout,
        url: redact_url(&options.url),
        place,
        password,
        tls_ca: options.tls_ca.clone(),
        status: Mutex::new(LinkStatus::default()),
        policy_asked: AtomicBool::new(false),
        outbox: Arc::new(outbox),
        tracking,
      }),
    };
    LINKS.lock().push(Arc::downgrade(&link.inner));
    Ok(link)
  }

  /// The full name of one of this prefix's keys.
  pub fn key(&self, name: &str) -> String {
    let mut key = String::with_capacity(self.inner.key_head.len() + name.len());
    key.push_str(&self.inner.key_head);
    key.push_str(name);
    key
  }

  /// The client the link's connection was made with.
  /// How to reach the node holding the prefix's keys on a connection of
  /// one's own (an idle worker's blocking wait, wake.rs).
  pub(super) fn home(&self) -> &tracking::Setup {
    self.inner.tracking.home()
  }

  /// The URL, its password hidden.
  pub fn url(&self) -> &str {
    &self.inner.url
  }

  /// Where the stores on this link keep their state: the URL (password
  /// hidden) and the key prefix. Two links with the same place share it.
  pub fn place(&self) -> &str {
    &self.inner.place
  }

  pub fn timeout(&self) -> Duration {
    self.inner.timeout
  }

  pub fn timeout_ms(&self) -> u64 {
    self.inner.timeout.as_millis() as u64
  }

  pub fn status(&self) -> LinkStatus {
    self.inner.status.lock().clone()
  }

  /// A standalone server or a cluster, once the URL's node has answered.
  pub fn mode(&self) -> Option<Mode> {
    self.inner.connector.mode()
  }

  pub fn outbox(&self) -> &Arc<Outbox> {
    &self.inner.outbox
  }

  pub(super) fn tracking(&self) -> &Tracking {
    &self.inner.tracking
  }

  /// Reads the server's `maxmemory-policy` (from `INFO memory`, which
  /// managed servers allow where `CONFIG GET` is not): any policy but
  /// `noeviction` lets the server delete this library's keys when it is
  /// full (a job's hash, an index), so it is warned about, once per server
  /// and prefix.
  async fn check_eviction_policy(&self) {
    let info: StorageResult<String> = self.run_async(memory_info).await;
    match info {
      Ok(info) => self.take_policy(&info),
      // Asked again at the next answer.
      Err(_) => self.inner.policy_asked.store(false, Ordering::Release),
    }
  }

  /// The server's `maxmemory-policy`: as read at the first answer, or
  /// read now (one round trip) when that has not come back yet.
  pub fn eviction_policy(&self) -> Option<String> {
    if let Some(policy) = self.status().eviction_policy {
      return Some(policy);
    }
    if let Ok(info) = self.run(memory_info) {
      self.take_policy(&info);
    }
    self.status().eviction_policy
  }

  /// Notes the policy `INFO memory` gave, and warns about any but
  /// `noeviction`.
  fn take_policy(&self, info: &str) {
    let Some(policy) = eviction::policy_in(info) else {
      return;
    };
    self.inner.status.lock().eviction_policy = Some(policy.clone());
    eviction::warn_if_evicting(&policy, &self.inner.place);
  }

  /// The reply of `read`: the local copy's while the server tracks and
  /// nothing it `depends` on changed since it was kept, else the
  /// server's (one round trip), kept for the next time.
  pub fn tracked_read<F, Fut>(
    &self,
    id: &str,
    depends: Depends,
    read: F,
  ) -> StorageResult<Arc<redis::Value>>
  where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = RedisResult<redis::Value>> + Send + 'static,
  {
    let tracking = &self.inner.tracking;
    let copy = tracking.copy();
    if let Some(kept) = copy.get(id) {
      return Ok(kept);
    }
    tracking.start(&self.inner.handle);
    let ticket = copy.ticket();
    let value = Arc::new(self.run(read)?);
    if let Some(ticket) = ticket {
      copy.keep(ticket, id, depends, Arc::clone(&value));
    }
    Ok(value)
  }

  /// Around a write of this process to `key`: the local copy forgets it
  /// at once (the server's announcement comes later, on another
  /// connection), so a read after the write never sees what was before.
  ///
  /// Every link of this process on the same place forgets it too: two
  /// instances made with the same options have links of their own, and
  /// one must read what the other wrote as soon as it returns.
  pub fn changing(&self, key: &str) {
    self.each_copy_here(|copy| copy.changed(key));
  }

  /// Around a clear of a whole store: every copy of this place forgets all.
  pub fn changing_all(&self) {
    self.each_copy_here(LocalCopy::changed_all);
  }

  fn each_copy_here(&self, mut act: impl FnMut(&LocalCopy)) {
    act(self.inner.tracking.copy());
    let links = LINKS.lock();
    for other in links.iter().filter_map(Weak::upgrade) {
      if !Arc::ptr_eq(&other, &self.inner) && other.place == self.inner.place {
        act(other.tracking.copy());
      }
    }
  }

  /// What the local copy holds, and whether the server tracks for it.
  pub fn local_copy_stats(&self) -> CopyStats {
    self.inner.tracking.copy().stats()
  }

  /// `command` off the caller's thread: for bookkeeping nobody waits for.
  pub async fn command_async<T>(
    &self,
    script: &'static Script,
    keys: &[String],
    args: &[String],
  ) -> StorageResult<T>
  where
    T: FromRedisValue + Send + 'static,
  {
    let invocation = invocation(script, keys, args);
    self
      .run_async(
        move |mut connection| async move { invocation.invoke_async(&mut connection).await },
      )
      .await
  }

  /// Runs one command (one round trip) and reads its reply.
  pub fn command<T>(
    &self,
    script: &'static Script,
    keys: &[String],
    args: &[String],
  ) -> StorageResult<T>
  where
    T: FromRedisValue + Send + 'static,
  {
    self.invoke(invocation(script, keys, args), false)
  }

  /// `command` for a write that must outlive a failover (an enqueue).
  pub fn command_replicated<T>(
    &self,
    script: &'static Script,
    keys: &[String],
    args: &[String],
  ) -> StorageResult<T>
  where
    T: FromRedisValue + Send + 'static,
  {
    self.invoke(invocation(script, keys, args), true)
  }

  /// How long a write waits for a replica: half the request's time, so
  /// that the script's own round trip fits in the rest.
  pub(super) fn replica_wait(&self) -> Duration {
    self.inner.timeout / 2
  }

  /// Runs `task` on the link's runtime.
  pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
    self.inner.handle.spawn(task);
  }

  /// Asks the server whether it answers (one round trip).
  pub fn ping(&self) -> StorageResult<()> {
    self.run(|mut connection| async move {
      redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map(drop)
    })
  }

  /// Runs one request and waits for it, at most the timeout.
  pub fn run<T, F, Fut>(&self, work: F) -> StorageResult<T>
  where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = RedisResult<T>> + Send + 'static,
    T: Send + 'static,
  {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    let request = self.bounded(self.on_connection(work));
    self.inner.handle.spawn(async move {
      let _ = sender.send(request.await);
    });
    // The task is bounded by the timeout; the margin only covers a runtime
    // that cannot run it at all (shutting down).
    let patience = self.inner.timeout + Duration::from_millis(100);
    let received = wait_blocking(|| receiver.recv_timeout(patience));
    let outcome = received.unwrap_or_else(|_| Err(Failure::TimedOut));
    self.settle(outcome)
  }

  /// Runs one script invocation (one round trip) and reads its reply.
  /// `replicated`: on a cluster whose master has a replica, the reply
  /// counts only once the replica holds the write too; a replica that does
  /// not confirm in time makes it a request without an answer, so the
  /// caller keeps the write to send again (it is idempotent).
  pub fn invoke<T>(
    &self,
    invocation: ScriptInvocation<'static>,
    replicated: bool,
  ) -> StorageResult<T>
  where
    T: FromRedisValue + Send + 'static,
  {
    let within = self.replica_wait();
    self.run(move |connection| run_script(invocation, connection, replicated, within))
  }

  /// `run` for asynchronous callers: the request runs on the link's
  /// runtime and the caller awaits it.
  pub async fn run_async<T, F, Fut>(&self, work: F) -> StorageResult<T>
  where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = RedisResult<T>> + Send + 'static,
    T: Send + 'static,
  {
    let request = self.bounded(self.on_connection(work));
    let joined = self.inner.handle.spawn(request).await;
    let outcome = joined.unwrap_or_else(|_| Err(Failure::TimedOut));
    self.settle(outcome)
  }

  /// `work` on the link's connection, made first if need be (the first
  /// request asks the node whether it is part of a cluster).
  fn on_connection<T, F, Fut>(
    &self,
    work: F,
  ) -> impl Future<Output = RedisResult<T>> + Send + 'static
  where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = RedisResult<T>> + Send + 'static,
    T: Send + 'static,
  {
    let inner = Arc::clone(&self.inner);
    async move { work(inner.connector.connection().await?).await }
  }

  fn bounded<T>(
    &self,
    request: impl Future<Output = RedisResult<T>> + Send + 'static,
  ) -> impl Future<Output = Result<T, Failure>> + Send + 'static
  where
    T: Send + 'static,
  {
    let timeout = self.inner.timeout;
    async move {
      match tokio::time::timeout(timeout, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Failure::Redis(error)),
        Err(_) => Err(Failure::TimedOut),
      }
    }
  }

  /// Notes what the request said about the server and maps its error.
  fn settle<T>(&self, outcome: Result<T, Failure>) -> StorageResult<T> {
    let mut status = self.inner.status.lock();
    match outcome {
      Ok(value) => {
        status.reachable = Some(true);
        drop(status);
        if !self.inner.policy_asked.swap(true, Ordering::AcqRel) {
          let link = self.clone();
          self.spawn(async move { link.check_eviction_policy().await });
        }
        Ok(value)
      }
      Err(failure) => {
        let error = self.describe(failure);
        // A reply the server gave (a key of the wrong type, out of
        // memory) says it is up.
        status.reachable = Some(!error.is_no_answer());
        status.last_error = Some(error.message.clone());
        status.last_error_at = Some(crate::core::clock::now_ms());
        Err(error)
      }
    }
  }

  fn describe(&self, failure: Failure) -> StorageError {
    let (kind, detail) = match failure {
      Failure::TimedOut => (
        StorageErrorKind::Unavailable,
        format!("no reply within {} ms", self.timeout_ms()),
      ),
      Failure::Redis(error) => match certificate_error(&error) {
        Some(problem) => (
          StorageErrorKind::Unavailable,
          tls::untrusted(problem, self.inner.tls_ca.as_deref()),
        ),
        None => classify(&error),
      },
    };
    let mut message = format!("Redis at {}: {detail}", self.inner.url);
    if let Some(password) = self.inner.password.as_deref().filter(|p| !p.is_empty()) {
      message = message.replace(password, "***");
    }
    StorageError::new(kind, message)
  }
}

/// Runs `invocation` and, when `durable`, waits `within` for a replica to
/// hold what it wrote (`Connection::replicated`).
pub(super) async fn run_script<T: FromRedisValue>(
  invocation: ScriptInvocation<'static>,
  mut connection: Connection,
  durable: bool,
  within: Duration,
) -> RedisResult<T> {
  let reply = invocation.invoke_async(&mut connection).await?;
  if durable && !connection.replicated(within).await {
    let unconfirmed = std::io::Error::new(
      std::io::ErrorKind::TimedOut,
      format!(
        "no replica confirmed the write within {} ms",
        within.as_millis()
      ),
    );
    return Err(unconfirmed.into());
  }
  Ok(reply)
}

/// A command's invocation: its script with `keys` and `args`.
pub(super) fn invocation(
  script: &'static Script,
  keys: &[String],
  args: &[String],
) -> ScriptInvocation<'static> {
  let mut invocation = script.prepare_invoke();
  for key in keys {
    invocation.key(key);
  }
  invocation.arg(args);
  invocation
}

/// The same connection info, speaking RESP3 (for the connection that
/// listens for the server's announcements).
fn resp3(info: &ConnectionInfo) -> ConnectionInfo {
  let settings = info
    .redis_settings()
    .clone()
    .set_protocol(ProtocolVersion::RESP3);
  info.clone().set_redis_settings(settings)
}

enum Failure {
  TimedOut,
  Redis(RedisError),
}

/// Runs `wait`, a blocking wait, where blocking is allowed: inside
/// `block_in_place` on a worker of a multi-threaded runtime, as it is
/// elsewhere.
fn wait_blocking<T>(wait: impl FnOnce() -> T) -> T {
  match Handle::try_current() {
    Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
      tokio::task::block_in_place(wait)
    }
    _ => wait(),
  }
}
