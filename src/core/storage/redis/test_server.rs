//! A real `redis-server` for one test: 127.0.0.1, a free port, a temporary
//! directory; stopped by its process id when dropped (also when the test
//! fails). `redis-server` must be installed (`.ci/run` installs it).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use super::link::{RedisLink, RedisOptions};

/// The password in `TestServer::unreachable`'s URL.
pub const PASSWORD: &str = "hunter2";

pub struct TestServer {
  child: Child,
  pub port: u16,
  dir: std::path::PathBuf,
  pub runtime: Runtime,
}

impl TestServer {
  pub fn start() -> Self {
    let port = free_port();
    let dir = crate::core::storage::sqlite::test_dir("redis");
    let child = spawn(port, &dir);
    Self {
      child,
      port,
      dir,
      runtime: runtime(),
    }
  }

  /// Kills the server (SIGKILL), as a crash would.
  pub fn kill(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
  }

  /// Starts the server again on the same port and directory.
  pub fn restart(&mut self) {
    self.kill();
    self.child = spawn(self.port, &self.dir);
  }

  /// A link to a port nothing listens on, with `PASSWORD` in its URL (no
  /// message may show it), and the runtime it runs on.
  pub fn unreachable(timeout_ms: u64) -> (Runtime, RedisLink) {
    let runtime = runtime();
    let options = RedisOptions {
      timeout_ms,
      ..RedisOptions::new(format!("redis://:{PASSWORD}@127.0.0.1:{}", free_port()))
    };
    let link = RedisLink::connect(&options, runtime.handle().clone()).unwrap();
    (runtime, link)
  }

  pub fn url(&self) -> String {
    format!("redis://127.0.0.1:{}", self.port)
  }

  /// A link under its own prefix, so tests sharing a server never meet.
  pub fn link(&self, prefix: &str) -> RedisLink {
    let options = RedisOptions {
      prefix: prefix.into(),
      timeout_ms: 2000,
      ..RedisOptions::new(self.url())
    };
    RedisLink::connect(&options, self.runtime.handle().clone()).unwrap()
  }
}

/// A server on `port` keeping its files in `dir`, once it accepts
/// connections.
fn spawn(port: u16, dir: &std::path::Path) -> Child {
  let child = Command::new("redis-server")
    .args([
      "--port",
      &port.to_string(),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
    ])
    .args(["--appendonly", "no", "--dir"])
    .arg(dir)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("redis-server is installed (apt-get install redis-server)");
  let deadline = Instant::now() + Duration::from_secs(10);
  while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
    assert!(Instant::now() < deadline, "redis-server did not start");
    std::thread::sleep(Duration::from_millis(20));
  }
  child
}

fn free_port() -> u16 {
  TcpListener::bind("127.0.0.1:0")
    .and_then(|listener| listener.local_addr())
    .expect("a free port")
    .port()
}

fn runtime() -> Runtime {
  tokio::runtime::Builder::new_multi_thread()
    .worker_threads(1)
    .enable_all()
    .build()
    .unwrap()
}

impl Drop for TestServer {
  fn drop(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
    let _ = std::fs::remove_dir_all(&self.dir);
  }
}
