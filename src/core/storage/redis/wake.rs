//! An idle worker's wait for new work: a blocking pop (`BLPOP`) of the
//! queue's wake list, which every command that makes a job pending pushes
//! to (`queue.lua`'s `signal`). So an idle worker sends one command a
//! second at most, not a lease every poll, and hears of a job at once.
//!
//! The pop runs on a connection of its own: a blocking command on the
//! link's shared connection would hold up every other request behind it.
//! Each pop is bounded (a second, plus `redisTimeoutMs` for the reply), so
//! a server that went away is noticed and a stopping worker is never held;
//! a signal is only a hint, and one that is lost (a worker popped it and
//! died) costs latency, never a job: the worker looks anyway from time to
//! time, and at the due time its last empty lease told it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::oneshot;

use super::link::RedisLink;
use super::tracking::home_node;
use crate::core::storage::traits::{Heard, WorkSignal};

/// The longest one pop blocks: the server is asked again at least this
/// often, so a connection that died silently is found out.
pub const LONGEST_POP: Duration = Duration::from_secs(1);
/// The shortest pop worth sending (`BLPOP` with a timeout of 0 blocks for
/// ever).
const SHORTEST_POP: Duration = Duration::from_millis(50);

pub struct WakeSignal {
  link: RedisLink,
  key: String,
  /// The signal's own connection, made at the first wait and again after
  /// a failure.
  connection: Arc<Mutex<Option<MultiplexedConnection>>>,
  /// A pop sent and not yet heard (the last wait was given up on).
  pending: Option<oneshot::Receiver<Heard>>,
}

impl WakeSignal {
  pub fn new(link: RedisLink, key: String) -> Self {
    Self {
      link,
      key,
      connection: Arc::new(Mutex::new(None)),
      pending: None,
    }
  }

  /// Sends one pop that blocks up to `block` on the link's runtime.
  fn send_pop(&mut self, block: Duration) -> oneshot::Receiver<Heard> {
    let (heard, hear) = oneshot::channel();
    let home = self.link.home().clone();
    let slot = self.connection.clone();
    let key = self.key.clone();
    let patience = Duration::from_millis(self.link.timeout_ms().max(1));
    self.link.spawn(async move {
      let outcome = tokio::time::timeout(block + patience, async {
        let held = slot.lock().clone();
        let mut connection = match held {
          Some(connection) => connection,
          None => {
            let config = AsyncConnectionConfig::new()
              .set_connection_timeout(Some(patience))
              .set_response_timeout(None);
            // On a cluster, the master serving the prefix's slot holds
            // the list; it is found again after a lost connection.
            let made = home_node(&home)
              .await?
              .get_multiplexed_async_connection_with_config(&config)
              .await?;
            *slot.lock() = Some(made.clone());
            made
          }
        };
        redis::cmd("BLPOP")
          .arg(&key)
          .arg(block.as_secs_f64())
          .query_async::<Value>(&mut connection)
          .await
      })
      .await;
      let said = match outcome {
        Ok(Ok(Value::Nil)) => Heard::Nothing,
        Ok(Ok(_)) => Heard::Work,
        // No answer or a refusal: the next pop starts on a new connection
        // (one that timed out may still owe this reply).
        Ok(Err(_)) | Err(_) => {
          *slot.lock() = None;
          Heard::Failed
        }
      };
      let _ = heard.send(said);
    });
    hear
  }
}

impl WorkSignal for WakeSignal {
  fn wait(&mut self, at_most: Duration) -> Pin<Box<dyn Future<Output = Heard> + Send + '_>> {
    Box::pin(async move {
      if self.pending.is_none() {
        if at_most < SHORTEST_POP {
          tokio::time::sleep(at_most).await;
          return Heard::Nothing;
        }
        self.pending = Some(self.send_pop(at_most.min(LONGEST_POP)));
      }
      let heard = match self.pending.as_mut() {
        Some(pending) => pending.await.unwrap_or(Heard::Failed),
        None => Heard::Failed,
      };
      self.pending = None;
      heard
    })
  }
}
