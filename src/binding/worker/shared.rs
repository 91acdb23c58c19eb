//! What a worker's task, its jobs' tasks and its `JobWorker` handle share,
//! and the store calls they make: each runs on tokio's blocking threads
//! (`off_runtime`), with the worker's short busy timeout, tried again as
//! `core::worker::patience` says.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch, Notify};

use crate::core::clock;
use crate::core::singletons::SharedQueue;
use crate::core::storage::{StorageError, StorageErrorKind};
use crate::core::worker::ends::{stalls, CallHeard, JobEnd, Tally};
use crate::core::worker::patience::{briefly, record_patience, Patience, RECORD_AGAIN};
use crate::core::worker::{Recorded, Worker, WorkerConfig};

/// What the worker's task, its jobs' tasks and its `JobWorker` share.
pub(super) struct Shared {
  pub(super) queue: SharedQueue,
  pub(super) worker: Mutex<Worker>,
  /// A slot was freed, or a stop was asked: look again now.
  pub(super) wake: Notify,
  /// A slot was freed by a job whose end found nothing ready to take in
  /// its place: wait for work (a full worker waits for a slot).
  pub(super) freed: Notify,
  /// Whether a job's end takes the next one in the same step: a worker
  /// does; a drain takes only from its loop, which keeps its budget.
  chains: bool,
  /// A running job finished (or went back to pending).
  pub(super) finished: Notify,
  /// Set at the end of a stop's grace: running jobs are aborted and handed
  /// back.
  pub(super) abandon: watch::Sender<bool>,
  /// The environment went away.
  pub(super) gone: AtomicBool,
  /// Jobs started and not yet done with (their outcome recorded and
  /// reported): a drain resolves once it is 0.
  pub(super) tasks: AtomicUsize,
  /// What the recorded outcomes were.
  pub(super) tally: Mutex<Tally>,
  /// For each job handed to the JavaScript thread, in the order they were
  /// handed: whether its handler's call has come back (see `release_all`).
  pub(super) calls: Mutex<HashMap<Arc<str>, HandedCall>>,
  /// Jobs handed so far (their order).
  pub(super) handed: AtomicU64,
  /// The queue's `leaseMs`, as last read.
  pub(super) lease_ms: AtomicU64,
}

/// A job's handler call: its place in the order calls were handed to the
/// JavaScript thread, and what hears that the call returned.
pub(super) struct HandedCall {
  pub(super) order: u64,
  pub(super) returned: oneshot::Receiver<()>,
}

impl Shared {
  /// `chains`: a worker's, whose jobs' ends take the next job; not a
  /// drain's.
  pub(super) fn new(queue: &SharedQueue, config: WorkerConfig, chains: bool) -> Arc<Self> {
    Arc::new(Self {
      queue: queue.clone(),
      worker: Mutex::new(Worker::new(config)),
      wake: Notify::new(),
      freed: Notify::new(),
      chains,
      finished: Notify::new(),
      abandon: watch::channel(false).0,
      gone: AtomicBool::new(false),
      tasks: AtomicUsize::new(0),
      tally: Mutex::new(Tally::default()),
      calls: Mutex::new(HashMap::new()),
      handed: AtomicU64::new(0),
      lease_ms: AtomicU64::new(0),
    })
  }

  pub(super) fn running(&self) -> usize {
    self.worker.lock().running()
  }

  /// Hands a running job back to pending: untried when the worker stopped
  /// (`stop()` past its grace), as a stall when its environment ended
  /// under it (`stalled`: counted, so a job that ends its worker every
  /// time fails after `maxStalls`).
  pub(super) fn release(&self, id: &str, stalled: bool) {
    let mut worker = self.worker.lock();
    if worker.finish(id) {
      let mut queue = self.queue.lock();
      let now = clock::now_ms();
      let _ = if stalled {
        queue.stalled(id, now)
      } else {
        queue.release(id, now)
      };
    }
    drop(worker);
    self.finished.notify_one();
  }

  /// The environment went away: every job running here goes back to
  /// pending now, not when its lease runs out, a stall counted when its
  /// handler ran (`ends::stalls` tells which did).
  pub(super) fn release_all(&self) {
    // Once: every job's task hears that the environment went, and what
    // was heard of the calls must be read in one place to tell the one
    // the thread ended in from those it never got to.
    if self.gone.swap(true, Ordering::AcqRel) {
      return;
    }
    let running = self.worker.lock().running_ids();
    let heard = running
      .into_iter()
      .map(|id| {
        let call = self.calls.lock().remove(&id);
        let heard = call.map(|mut call| CallHeard {
          order: call.order,
          returned: call.returned.try_recv().is_ok(),
        });
        (id, heard)
      })
      .collect();
    for (id, ran) in stalls(heard) {
      self.release(&id, ran);
    }
  }

  /// Forgets what was heard of job `id`'s call (it is done with).
  pub(super) fn forget_call(&self, id: &str) {
    self.calls.lock().remove(id);
  }

  /// Records a job's end and reads the job back; `None` when it no longer
  /// ran here, or the store could not take the outcome (then the job stays
  /// leased and comes back when the lease runs out: run again, not lost).
  /// The outcome is recorded only while the job is under this worker's
  /// lease still (`Worker::record`): a handler that recorded its job's
  /// outcome itself (`complete` or `fail` on the queue) is taken at its
  /// word, and a job whose lease ran out meanwhile is left to whoever has
  /// it now; the events follow what was recorded. A store held by another
  /// process, or a server that does not answer, is asked again off the
  /// JavaScript thread (`patience::RECORD_AGAIN`), each try within the
  /// store's (short) busy timeout and with the queue's lock let go in
  /// between, for as long as the lease could still be this worker's.
  pub(super) async fn record(self: &Arc<Self>, id: &str, end: &JobEnd) -> Recorded {
    let (owned, end) = (id.to_string(), end.clone());
    // The lease's length as last read (at the start, and by each step).
    let patience = record_patience(self.lease_ms.load(Ordering::Relaxed));
    let record = move |shared: &Shared| shared.try_record(&owned, &end);
    match patiently(self, RECORD_AGAIN, patience, record).await {
      Ok(recorded) => recorded,
      Err(_) => {
        let id = id.to_string();
        off_runtime(self, move |shared| shared.worker.lock().finish(&id)).await;
        Recorded::default()
      }
    }
  }

  fn try_record(&self, id: &str, end: &JobEnd) -> Result<Recorded, StorageError> {
    let Some((error, now)) = end.outcome() else {
      return Ok(Recorded::default());
    };
    // Still ours, like every job running here: a lease that ran out while
    // a thread was busy is not a lost job (the worker keeps its leases
    // first). One that was lost and handed on is left to its new holder.
    let (prepared, detached, lease_ms) = {
      let mut worker = self.worker.lock();
      let mut queue = self.queue.lock();
      let prepared = briefly(&mut **queue, |queue| {
        worker.to_record(queue, id, self.chains, now)
      });
      (prepared, queue.detached(), queue.config().lease_ms)
    };
    self.lease_ms.store(lease_ms, Ordering::Relaxed);
    let Some((lease, take_next)) = prepared else {
      return Ok(Recorded::default());
    };
    // On a server, the round trip holds neither lock: the other running
    // jobs' steps go out beside it.
    let finished = match detached {
      Some(mut store) => store.finish_and_take(id, &lease, error, take_next, now),
      None => briefly(&mut **self.queue.lock(), |queue| {
        queue.finish_and_take(id, &lease, error, take_next, now)
      }),
    }?;
    let mut worker = self.worker.lock();
    Ok(worker.recorded(id, finished, take_next, lease_ms, now))
  }
}

/// Runs `work` on tokio's blocking threads: a store call waits there (on a
/// file's lock, on a Redis round trip, on the store's own lock held by the
/// JavaScript thread), never on a runtime worker, which must stay free to
/// run the Redis connection that the wait may depend on.
pub(super) async fn off_runtime<T: Send + 'static>(
  shared: &Arc<Shared>,
  work: impl FnOnce(&Shared) -> T + Send + 'static,
) -> T {
  let shared = shared.clone();
  match tokio::task::spawn_blocking(move || work(&shared)).await {
    Ok(value) => value,
    Err(error) => std::panic::resume_unwind(error.into_panic()),
  }
}

/// Runs a store call off the runtime, asking again while it fails with one
/// of the errors `again` names, for up to `patience` (`Patience` says when).
pub(super) async fn patiently<T: Send + 'static>(
  shared: &Arc<Shared>,
  again: &'static [StorageErrorKind],
  patience: Duration,
  call: impl Fn(&Shared) -> Result<T, StorageError> + Send + Sync + 'static,
) -> Result<T, StorageError> {
  let call = Arc::new(call);
  let mut patience = Patience::new(again, patience, Instant::now());
  loop {
    let once = call.clone();
    let error = match off_runtime(shared, move |shared| once(shared)).await {
      Err(error) => error,
      done => return done,
    };
    match patience.retry_after(&error, Instant::now()) {
      Some(pause) => tokio::time::sleep(pause).await,
      None => return Err(error),
    }
  }
}

/// Counts a started job's task until it is done with (dropped at its end,
/// whichever way it ends).
pub(super) struct Task(pub(super) Arc<Shared>);

impl Task {
  pub(super) fn start(shared: &Arc<Shared>) -> Self {
    shared.tasks.fetch_add(1, Ordering::AcqRel);
    Self(shared.clone())
  }
}

impl Drop for Task {
  fn drop(&mut self) {
    self.0.tasks.fetch_sub(1, Ordering::AcqRel);
    self.0.finished.notify_one();
  }
}
