//! What the link talks to: one Redis or Valkey server through redis-rs's
//! `ConnectionManager`, or a Redis Cluster through redis-rs's cluster
//! client, behind one `Connection` type so that the stores' requests read
//! the same either way.
//!
//! A single `redisUrl` may name a standalone server or any one node of a
//! cluster: the first request asks that node (`INFO cluster`) and, on a
//! cluster, discovers the other nodes from it. A comma-separated list of
//! URLs names a cluster's seed nodes. The answer is kept for the life of
//! the link; until the node answers, nothing is assumed (an app starts
//! while Redis is down).
//!
//! On a cluster every request goes to the master serving the slot of the
//! prefix's hash tag: all of a prefix's keys live there, the scripts run
//! there (and are loaded there when it lost them), and the keyless
//! requests (`PING`, `INFO`, `WAIT`) then ask about that node. redis-rs
//! follows `MOVED` and `ASK` and refreshes its map of the slots when a
//! master fails over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{
  Arg, Cmd, ConnectionInfo, ErrorKind, Pipeline, RedisFuture, RedisResult, ServerErrorKind,
  TlsCertificates, Value,
};
use tokio::sync::OnceCell;

/// How the link reaches Redis, once the node it names has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
  Standalone,
  Cluster,
}

impl Mode {
  /// As Redis's own `INFO server` says it (`redis_mode`).
  pub fn name(self) -> &'static str {
    match self {
      Mode::Standalone => "standalone",
      Mode::Cluster => "cluster",
    }
  }
}

/// A connection the stores send their requests on.
#[derive(Clone)]
pub enum Connection {
  Server(ConnectionManager),
  Cluster(Box<ClusterLink>),
}

#[derive(Clone)]
pub struct ClusterLink {
  connection: ClusterConnection,
  /// The master serving the prefix's slot.
  home: SingleNodeRoutingInfo,
  replicas: Arc<Replicas>,
  /// Each script's source by its SHA1, as `SCRIPT LOAD` sent it.
  scripts: Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>,
}

impl ClusterLink {
  /// `cmd` on the prefix's master. While that master is not connected
  /// (a failover) redis-rs sends a keyless command to its replica or to any
  /// node, so a `SCRIPT LOAD` may load the script where the next `EVALSHA`
  /// does not run: an `EVALSHA` the master answers `NOSCRIPT` is sent again
  /// as `EVAL` with the source, which a wrong node redirects (`MOVED`) and
  /// the master keeps.
  async fn request(&mut self, cmd: &Cmd) -> RedisResult<Value> {
    let args: Vec<&[u8]> = cmd
      .args_iter()
      .filter_map(|arg| match arg {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
      })
      .collect();
    let name = |i: usize| args.get(i).map(|arg| arg.to_ascii_uppercase());
    let reply = self
      .connection
      .route_command(cmd.clone(), RoutingInfo::SingleNode(self.home.clone()))
      .await;
    match (name(0).as_deref(), &reply) {
      (Some(b"SCRIPT"), Ok(loaded)) if name(1).as_deref() == Some(b"LOAD") => {
        let sha = match loaded {
          Value::BulkString(sha) => Some(sha.clone()),
          Value::SimpleString(sha) => Some(sha.as_bytes().to_vec()),
          _ => None,
        };
        if let (Some(sha), Some(source)) = (sha, args.get(2)) {
          self.scripts.lock().insert(sha, source.to_vec());
        }
        reply
      }
      (Some(b"EVALSHA"), answer) if no_script(answer) => {
        let source = args
          .get(1)
          .and_then(|sha| self.scripts.lock().get(*sha).cloned());
        let Some(source) = source else {
          return reply;
        };
        let mut eval = redis::cmd("EVAL");
        eval.arg(source);
        for arg in &args[2..] {
          eval.arg(*arg);
        }
        let home = RoutingInfo::SingleNode(self.home.clone());
        self.connection.route_command(eval, home).await
      }
      _ => reply,
    }
  }
}

/// Whether `reply` is the server's `NOSCRIPT` (a connection hands a
/// server's error back as a value; a caller reading it, as an error).
fn no_script(reply: &RedisResult<Value>) -> bool {
  match reply {
    Ok(Value::ServerError(error)) => error.kind() == Some(ServerErrorKind::NoScript),
    Err(error) => error.kind() == ErrorKind::Server(ServerErrorKind::NoScript),
    _ => false,
  }
}

impl ConnectionLike for Connection {
  fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
    match self {
      Connection::Server(manager) => manager.req_packed_command(cmd),
      Connection::Cluster(cluster) => Box::pin(cluster.request(cmd)),
    }
  }

  fn req_packed_commands<'a>(
    &'a mut self,
    pipeline: &'a Pipeline,
    offset: usize,
    count: usize,
  ) -> RedisFuture<'a, Vec<Value>> {
    match self {
      Connection::Server(manager) => manager.req_packed_commands(pipeline, offset, count),
      Connection::Cluster(cluster) => {
        let home = cluster.home.clone();
        Box::pin(
          cluster
            .connection
            .route_pipeline(pipeline.clone(), offset, count, home),
        )
      }
    }
  }

  fn get_db(&self) -> i64 {
    match self {
      Connection::Server(manager) => manager.get_db(),
      Connection::Cluster(_) => 0,
    }
  }
}

impl Connection {
  /// Waits, after a write that must outlive its master (an enqueue), for
  /// one replica of the prefix's master to hold it, at most `within`:
  /// Redis replicates asynchronously, and a master that dies before its
  /// replica has a write loses it in the failover. `false` when a replica
  /// exists and none confirmed in time. Always `true` on a standalone
  /// server (its durability is its own persistence) and on a cluster
  /// master without replicas (nothing would take over its slots).
  pub async fn replicated(&mut self, within: Duration) -> bool {
    let Connection::Cluster(cluster) = self else {
      return true;
    };
    let replicas = Arc::clone(&cluster.replicas);
    let has_replicas = match replicas.known() {
      Some(has) => has,
      None => replicas.recount(self).await,
    };
    if !has_replicas {
      return true;
    }
    let millis = within.as_millis().max(1) as u64;
    let confirmed: i64 = match redis::cmd("WAIT")
      .arg(1)
      .arg(millis)
      .query_async(self)
      .await
    {
      Ok(confirmed) => confirmed,
      // A user who may not WAIT cannot be made to: the write stands as
      // the master took it, as on a server without replicas.
      Err(error) if error.code() == Some("NOPERM") => return true,
      // Any other error (a replica answering for its master mid-failover)
      // confirms nothing.
      Err(_) => 0,
    };
    // None confirmed: a master whose replica is gone (it was promoted
    // elsewhere, or died) waits for nobody.
    confirmed >= 1 || !replicas.recount(self).await
  }
}

/// Whether the prefix's master has replicas, asked again now and then: a
/// failover or a replica added changes it.
struct Replicas {
  /// Whether a replica was connected, and when that was asked.
  seen: Mutex<Option<(bool, Instant)>>,
}

impl Replicas {
  const ASK_EVERY: Duration = Duration::from_secs(5);

  fn new() -> Self {
    Self {
      seen: Mutex::new(None),
    }
  }

  /// Whether the master had a replica when last asked, not long ago.
  fn known(&self) -> Option<bool> {
    self
      .seen
      .lock()
      .filter(|(_, at)| at.elapsed() < Self::ASK_EVERY)
      .map(|(has, _)| has)
  }

  /// Asks the master (`INFO replication`) whether a replica is connected.
  /// No answer, or one from a node that is not a master (a replica that
  /// answered for it), says it may have one.
  async fn recount(&self, connection: &mut Connection) -> bool {
    let info: RedisResult<String> = redis::cmd("INFO")
      .arg("replication")
      .query_async(connection)
      .await;
    let Some(info) = info.ok().filter(|info| info.contains("role:master")) else {
      return true;
    };
    let connected = info
      .lines()
      .find_map(|line| line.strip_prefix("connected_slaves:"))
      .and_then(|n| n.trim().parse::<u32>().ok())
      .unwrap_or(0);
    *self.seen.lock() = Some((connected > 0, Instant::now()));
    connected > 0
  }
}

/// Makes the connection on the first request, once it knows what the URL
/// names.
pub struct Connector {
  /// The standalone connection (lazy: it connects on its first request).
  manager: ConnectionManager,
  seeds: Vec<ConnectionInfo>,
  /// `redisTlsCa`'s certificates, for the cluster's nodes.
  certificates: Option<TlsCertificates>,
  timeout: Duration,
  /// The prefix's key head (`{prefix}:`), whose slot every request goes to.
  key_head: String,
  connection: OnceCell<Connection>,
}

impl Connector {
  /// `manager` connects to the first of `seeds`; several seeds name a
  /// cluster.
  pub fn new(
    manager: ConnectionManager,
    seeds: Vec<ConnectionInfo>,
    certificates: Option<TlsCertificates>,
    timeout: Duration,
    key_head: String,
  ) -> Self {
    Self {
      manager,
      seeds,
      certificates,
      timeout,
      key_head,
      connection: OnceCell::new(),
    }
  }

  /// The connection, made on first use: the node is asked whether it is
  /// part of a cluster. A node that does not answer is asked again at the
  /// next request.
  pub async fn connection(&self) -> RedisResult<Connection> {
    self
      .connection
      .get_or_try_init(|| async {
        if self.seeds.len() > 1 || self.in_cluster().await? {
          self.cluster().await
        } else {
          Ok(Connection::Server(self.manager.clone()))
        }
      })
      .await
      .cloned()
  }

  /// What the URL named, once its node answered.
  pub fn mode(&self) -> Option<Mode> {
    self.connection.get().map(|connection| match connection {
      Connection::Server(_) => Mode::Standalone,
      Connection::Cluster(_) => Mode::Cluster,
    })
  }

  /// Whether the node the URL names runs in cluster mode. A user whose ACL
  /// refuses `INFO` is taken to be on a standalone server (the README asks
  /// for `INFO`; on a cluster its requests would be redirected, and fail).
  async fn in_cluster(&self) -> RedisResult<bool> {
    let mut manager = self.manager.clone();
    let info: RedisResult<String> = redis::cmd("INFO")
      .arg("cluster")
      .query_async(&mut manager)
      .await;
    match info {
      Ok(info) => Ok(info.lines().any(|line| line.trim() == "cluster_enabled:1")),
      Err(error) if error.code() == Some("NOPERM") => Ok(false),
      Err(error) => Err(error),
    }
  }

  async fn cluster(&self) -> RedisResult<Connection> {
    let mut builder = ClusterClientBuilder::new(self.seeds.clone())
      .connection_timeout(self.timeout)
      .response_timeout(self.timeout)
      // A redirection (MOVED, ASK) or a failover is followed within the
      // request's time; the link bounds the whole request anyway.
      .retries(3)
      .min_retry_wait(10)
      .max_retry_wait(100);
    if let Some(certificates) = &self.certificates {
      builder = builder.certs(certificates.clone());
    }
    let client = builder.build()?;
    let connection = client.get_async_connection().await?;
    let home = SingleNodeRoutingInfo::SpecificNode(Route::with_key(
      self.key_head.as_bytes(),
      SlotAddr::Master,
    ));
    Ok(Connection::Cluster(Box::new(ClusterLink {
      connection,
      home,
      replicas: Arc::new(Replicas::new()),
      scripts: Arc::default(),
    })))
  }
}
