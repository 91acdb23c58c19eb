//! rediss:// against a real TLS redis-server (test_server.rs makes its
//! certificates): a round trip with the server's CA, and an untrusted
//! certificate refused with a clear message; and a `redisTlsCa` that is
//! no PEM file of certificates, refused when the link is made. Apart from
//! tls.rs, which link.rs imports, so the two modules do not import each
//! other.

use std::path::PathBuf;

use super::link::RedisLink;
use super::options::RedisOptions;
use super::test_server::{self, TestServer};
use crate::core::storage::error::{StorageErrorKind, StorageResult};

/// One job through the queue and one answer through the cache, on `link`.
fn round_trip(link: RedisLink) -> StorageResult<()> {
  use crate::core::cache::conformance::{response, set};
  use crate::core::cache::CacheConfig;
  use crate::core::queue::job::{JobPriority, JobType, NewJob, QueueConfig, QueueError};
  use crate::core::storage::redis::{RedisCache, RedisQueue};
  use crate::core::storage::traits::QueueStore;

  let mut queue = RedisQueue::open(link.clone(), QueueConfig::default())?;
  let enqueued = queue.enqueue(
    NewJob {
      job_type: JobType::Ai,
      operation: "op".into(),
      payload: Some("{\"over\":\"tls\"}".into()),
      user_id: "u".into(),
      priority: JobPriority::High,
      retry_count: 0,
      max_retries: 3,
      next_retry_at: None,
    },
    0,
  );
  let id = enqueued.map_err(|error| match error {
    QueueError::Storage(error) => error,
    other => panic!("{other:?}"),
  })?;
  let leased = queue.dequeue(1)?.expect("the job just queued");
  assert_eq!(
    (&*leased.id, leased.payload.as_deref()),
    (&*id, Some("{\"over\":\"tls\"}"))
  );
  assert!(queue.complete(&id, 2)?);
  let mut cache = RedisCache::open(link, CacheConfig::default())?;
  set(&mut cache, "prompt", "model", "\"answer\"", None, 3);
  assert_eq!(
    response(&mut cache, "prompt", "model", 4).as_deref(),
    Some("\"answer\"")
  );
  Ok(())
}

#[test]
fn rediss_with_the_servers_ca_round_trips_the_queue_and_the_cache() {
  let server = TestServer::start_tls();
  assert!(server.url().starts_with("rediss://"));
  let link = server.link("tls");
  round_trip(link.clone()).unwrap();
  assert_eq!(link.status().reachable, Some(true));
}

#[test]
fn an_untrusted_certificate_is_unavailable_with_a_clear_message() {
  let server = TestServer::start_tls();
  let other = test_server::certificate_authority(server.dir(), "other-ca");
  // The system's roots, then a CA that did not sign the server's certificate.
  let hints = [
    (None, "give its CA's PEM file as redisTlsCa"),
    (Some(other.cert), "no CA certificate of"),
  ];
  for (tls_ca, hint) in hints {
    let link = server.link_trusting("untrusted", tls_ca).unwrap();
    let error = round_trip(link.clone()).unwrap_err();
    assert_eq!(
      error.kind,
      StorageErrorKind::Unavailable,
      "{}",
      error.message
    );
    let message = &error.message;
    assert!(
      message.contains("TLS certificate is not trusted (UnknownIssuer)"),
      "{message}"
    );
    assert!(message.contains(hint), "{message}");
    assert_eq!(link.status().reachable, Some(false));
  }
}

#[test]
fn a_tls_ca_must_be_a_pem_file_of_certificates_for_a_rediss_url() {
  let runtime = tokio::runtime::Builder::new_current_thread()
    .build()
    .unwrap();
  let dir = crate::core::storage::sqlite::test_dir("redis-tls-ca");
  let connect = |url: &str, tls_ca: PathBuf| {
    let options = RedisOptions {
      tls_ca: Some(tls_ca),
      ..RedisOptions::new(url)
    };
    let error = RedisLink::connect(&options, runtime.handle().clone())
      .err()
      .unwrap();
    assert_eq!(error.kind, StorageErrorKind::Unavailable);
    error.message
  };
  let missing = connect("rediss://127.0.0.1:1", dir.join("missing.pem"));
  assert!(missing.contains("cannot read the TLS CA file"), "{missing}");
  let not_pem = dir.join("not.pem");
  std::fs::write(&not_pem, "not a certificate").unwrap();
  let empty = connect("rediss://127.0.0.1:1", not_pem.clone());
  assert!(empty.contains("holds no PEM certificate"), "{empty}");
  let plain = connect("redis://127.0.0.1:1", not_pem);
  assert!(plain.contains("only to a rediss:// URL"), "{plain}");
  let _ = std::fs::remove_dir_all(&dir);
}
