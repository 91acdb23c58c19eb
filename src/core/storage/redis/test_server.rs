//! A real `redis-server` for one test: 127.0.0.1, a free port, a temporary
//! directory; stopped by its process id when dropped (also when the test
//! fails). `redis-server` must be installed (`.ci/run` installs it).
//! `start_tls` serves TLS only, with a certificate for 127.0.0.1 signed by a
//! CA of its own (made by the `openssl` command, which `npm run test:rust`
//! installs with `redis-server` when missing).

use std::ffi::{OsStr, OsString};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use super::link::RedisLink;
use super::options::RedisOptions;
use crate::core::storage::error::StorageResult;

/// The password in `TestServer::unreachable`'s URL.
pub const PASSWORD: &str = "hunter2";

pub struct TestServer {
  child: Child,
  pub port: u16,
  dir: PathBuf,
  /// `redis-server`'s arguments besides those of `spawn` (its port, TLS).
  args: Vec<OsString>,
  /// `start_tls`: the PEM file of the CA that signed the server's certificate.
  pub tls_ca: Option<PathBuf>,
  pub runtime: Runtime,
}

impl TestServer {
  pub fn start() -> Self {
    let port = free_port();
    let dir = crate::core::storage::sqlite::test_dir("redis");
    let args = vec!["--port".into(), port.to_string().into()];
    Self::launch(dir, port, args, None)
  }

  /// A server that speaks TLS only (`rediss://`), on a certificate for
  /// 127.0.0.1 signed by `tls_ca`; clients show no certificate.
  pub fn start_tls() -> Self {
    let port = free_port();
    let dir = crate::core::storage::sqlite::test_dir("redis-tls");
    let ca = certificate_authority(&dir, "ca");
    let (cert, key) = server_certificate(&dir, &ca);
    let options: [(&str, &dyn AsRef<OsStr>); 6] = [
      ("--port", &"0"),
      ("--tls-port", &port.to_string()),
      ("--tls-cert-file", &cert),
      ("--tls-key-file", &key),
      ("--tls-ca-cert-file", &ca.cert),
      ("--tls-auth-clients", &"no"),
    ];
    let args = options
      .iter()
      .flat_map(|(flag, value)| [OsString::from(flag), value.as_ref().to_owned()])
      .collect();
    Self::launch(dir, port, args, Some(ca.cert.clone()))
  }

  /// Starts `redis-server` with `args` and keeps them for `restart`.
  fn launch(dir: PathBuf, port: u16, args: Vec<OsString>, tls_ca: Option<PathBuf>) -> Self {
    let child = spawn(port, &dir, &args);
    Self {
      child,
      port,
      dir,
      args,
      tls_ca,
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
    self.child = spawn(self.port, &self.dir, &self.args);
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

  /// The server's temporary directory (removed when it stops).
  pub fn dir(&self) -> &Path {
    &self.dir
  }

  pub fn url(&self) -> String {
    let scheme = if self.tls_ca.is_some() {
      "rediss"
    } else {
      "redis"
    };
    format!("{scheme}://127.0.0.1:{}", self.port)
  }

  /// A link under its own prefix, so tests sharing a server never meet;
  /// on a TLS server it trusts the server's CA.
  pub fn link(&self, prefix: &str) -> RedisLink {
    self.link_trusting(prefix, self.tls_ca.clone()).unwrap()
  }

  /// A link under its own prefix with its own timeout (and, with `user`,
  /// `user:password` in its URL).
  pub fn link_with(&self, prefix: &str, timeout_ms: u64, user: Option<(&str, &str)>) -> RedisLink {
    let url = match user {
      Some((user, password)) => format!("redis://{user}:{password}@127.0.0.1:{}", self.port),
      None => self.url(),
    };
    let options = RedisOptions {
      prefix: prefix.into(),
      timeout_ms,
      ..RedisOptions::new(url)
    };
    RedisLink::connect(&options, self.runtime.handle().clone()).unwrap()
  }

  /// Pauses the server (SIGSTOP): it takes connections and requests but
  /// answers none until `resume`, as a paused VM or a long script would.
  pub fn pause(&self) {
    signal(self.child.id(), "-STOP");
  }

  /// Lets a paused server go on (SIGCONT): it runs what it was sent.
  pub fn resume(&self) {
    signal(self.child.id(), "-CONT");
  }

  /// One command on a connection of its own, past every store (to plant
  /// foreign data, configure the server, read what it holds).
  pub fn command(&self, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(self.url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
      command.arg(*arg);
    }
    command.query(&mut connection).unwrap()
  }

  /// A link that trusts the CA of `tls_ca` (the system's roots when `None`).
  pub fn link_trusting(&self, prefix: &str, tls_ca: Option<PathBuf>) -> StorageResult<RedisLink> {
    let options = RedisOptions {
      prefix: prefix.into(),
      timeout_ms: 2000,
      tls_ca,
      ..RedisOptions::new(self.url())
    };
    RedisLink::connect(&options, self.runtime.handle().clone())
  }
}

/// A server on `port` (`args` name it, plain or TLS) keeping its files in
/// `dir`, once `port` accepts connections.
fn spawn(port: u16, dir: &Path, args: &[OsString]) -> Child {
  let child = Command::new("redis-server")
    .args(args)
    .args(["--bind", "127.0.0.1", "--save", ""])
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

/// A certificate authority's files: its certificate (what clients trust)
/// and its key.
pub struct Authority {
  pub cert: PathBuf,
  key: PathBuf,
}

/// A new self-signed CA in `dir`, as `{name}.crt` and `{name}.key`.
pub fn certificate_authority(dir: &Path, name: &str) -> Authority {
  let (cert, key) = (
    dir.join(format!("{name}.crt")),
    dir.join(format!("{name}.key")),
  );
  let subject = format!("/CN=fallback-mechanisms test {name}");
  openssl(
    &format!("req -x509 {NEW_KEY} -days 2"),
    &[("-subj", &subject), ("-keyout", &key), ("-out", &cert)],
  );
  Authority { cert, key }
}

/// `openssl req` arguments for a new P-256 key, written unencrypted.
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/// A certificate for 127.0.0.1 and localhost signed by `ca`, and its key.
fn server_certificate(dir: &Path, ca: &Authority) -> (PathBuf, PathBuf) {
  let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
  let (request, extensions) = (dir.join("server.csr"), dir.join("server.ext"));
  let wanted = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
  std::fs::write(&extensions, wanted).unwrap();
  openssl(
    &format!("req {NEW_KEY} -subj /CN=127.0.0.1"),
    &[("-keyout", &key), ("-out", &request)],
  );
  openssl(
    "x509 -req -days 2 -set_serial 1",
    &[
      ("-in", &request),
      ("-CA", &ca.cert),
      ("-CAkey", &ca.key),
      ("-extfile", &extensions),
      ("-out", &cert),
    ],
  );
  (cert, key)
}

/// Runs `openssl` with the words of `fixed`, then each flag and its value.
fn openssl(fixed: &str, named: &[(&str, &dyn AsRef<OsStr>)]) {
  let mut command = Command::new("openssl");
  command.args(fixed.split_whitespace());
  for (flag, value) in named {
    command.arg(flag).arg(value);
  }
  let output = command
    .output()
    .expect("the openssl command is installed (apt-get install openssl)");
  assert!(
    output.status.success(),
    "openssl {fixed}: {}",
    String::from_utf8_lossy(&output.stderr)
  );
}

fn signal(pid: u32, which: &str) {
  let status = Command::new("kill")
    .arg(which)
    .arg(pid.to_string())
    .status()
    .expect("the kill command");
  assert!(status.success(), "kill {which} {pid}");
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
