//! The tokio tasks of a worker: `process()`'s loop (`poll`), a drain's
//! (`drain_to_end`), one task per running job (`run_job`), and a stop's
//! grace. They wait and call; `core::worker` decides.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::calls::Calls;
use super::shared::{off_runtime, patiently, Shared, Task};
use crate::binding::js_fn::Gone;
use crate::core::clock;
use crate::core::queue::Job;
use crate::core::storage::StorageError;
use crate::core::worker::drain::{Drain, DrainStep, DrainSummary, StopReason};
use crate::core::worker::ends::{Abort, JobEnd, Then};
use crate::core::worker::patience::{briefly, COUNT_AGAIN, RECORD_PATIENCE};
use crate::core::worker::schedule::{renew_every, AfterSignal, Schedule, Wait, Woke};
use crate::core::worker::WorkerConfig;

/// What a worker was asked to do, checked.
pub(super) struct Settings {
  pub(super) config: WorkerConfig,
  /// `pollIntervalMs`; `None`: `Schedule`'s default.
  pub(super) poll_ms: Option<u64>,
  pub(super) job_timeout_ms: Option<u64>,
  pub(super) keep_alive: bool,
  /// A drain's `maxMs`: no job is started once it has passed.
  pub(super) max_ms: Option<u64>,
}

/// Resolves when a stop's grace has run out.
async fn abandoned(abandon: &mut watch::Receiver<bool>) {
  // The sender lives as long as the worker's shared state, which this
  // task holds.
  let _ = abandon.wait_for(|abandoned| *abandoned).await;
}

async fn run_job<const WEAK: bool>(
  task: Task,
  calls: Arc<Calls<WEAK>>,
  mut job: Job,
  mut started: Result<oneshot::Receiver<JobEnd>, Gone>,
  timeout_ms: Option<u64>,
) {
  let shared = task.0.clone();
  let mut abandon = shared.abandon.subscribe();
  // One job after another: a job's end takes the next one in the same
  // step when the queue has one ready (`Worker::record`).
  loop {
    let id = job.id.to_string();
    let limit = async {
      match timeout_ms {
        Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => std::future::pending().await,
      }
    };
    let ended = tokio::select! {
      end = async { started?.await.map_err(|_| Gone) } => end,
      _ = limit => {
        let abort = Abort::TimedOut { ms: timeout_ms.unwrap_or(0) };
        let aborted = calls.abort_job(&id, abort).await;
        aborted.map(|_| JobEnd::Failed { message: abort.message(), now: clock::now_ms() })
      }
      _ = abandoned(&mut abandon) => {
        let _ = calls.abort_job(&id, Abort::Stopped).await;
        off_runtime(&shared, move |shared| {
          shared.forget_call(&id);
          shared.release(&id, false)
        })
        .await;
        return;
      }
    };
    let end = match ended {
      Ok(JobEnd::Gone) | Err(Gone) => {
        off_runtime(&shared, Shared::release_all).await;
        return;
      }
      Ok(end) => end,
    };
    shared.forget_call(&id);
    let recorded = shared.record(&id, &end).await;
    shared.finished.notify_one();
    let then = recorded.then();
    // The events (and a drain's counts) follow what was recorded, whoever
    // recorded it. Queued before the next job's handler, so they reach
    // JavaScript in that order.
    let told = recorded.job.and_then(|job| calls.tell(&shared, &job));
    let Some(next) = recorded.next else {
      match then {
        Then::WaitForWork => shared.freed.notify_one(),
        Then::LookAgain | Then::RunNext => shared.wake.notify_one(),
      }
      if let Some(told) = told {
        let _ = told.await;
      }
      return;
    };
    started = calls.hand(&shared, &next);
    job = next;
    if let Some(told) = told {
      let _ = told.await;
    }
  }
}

/// The environment went away: the worker's jobs go back to pending. True
/// when it has (the worker ends).
async fn gone<const WEAK: bool>(shared: &Arc<Shared>, calls: &Calls<WEAK>) -> bool {
  if calls.is_gone() {
    off_runtime(shared, Shared::release_all).await;
  }
  shared.gone.load(Ordering::Acquire)
}

/// Takes what the worker's limits allow. `idle`: nothing was running when
/// it looked, so an empty list means no job is due.
async fn take(shared: &Arc<Shared>) -> (bool, Result<Vec<Job>, StorageError>) {
  off_runtime(shared, |shared| {
    let mut worker = shared.worker.lock();
    let mut queue = shared.queue.lock();
    let idle = worker.running() == 0;
    (
      idle,
      briefly(&mut **queue, |queue| worker.take(queue, clock::now_ms())),
    )
  })
  .await
}

/// Starts the handlers of the jobs taken, in the order they were taken.
fn start_jobs<const WEAK: bool>(
  shared: &Arc<Shared>,
  calls: &Arc<Calls<WEAK>>,
  jobs: Vec<Job>,
  timeout_ms: Option<u64>,
) {
  for job in jobs {
    let task = Task::start(shared);
    let started = calls.hand(shared, &job);
    let run = run_job(task, calls.clone(), job, started, timeout_ms);
    napi::bindgen_prelude::spawn(run);
  }
}

/// Renews the leases of every job running here.
async fn renew(shared: &Arc<Shared>) {
  off_runtime(shared, |shared| {
    let mut worker = shared.worker.lock();
    briefly(&mut **shared.queue.lock(), |queue| {
      worker.keep_leased(queue, clock::now_ms())
    });
  })
  .await;
}

async fn renewals(shared: &Arc<Shared>) -> tokio::time::Interval {
  let lease_ms = off_runtime(shared, |shared| shared.queue.lock().config().lease_ms).await;
  shared.lease_ms.store(lease_ms, Ordering::Relaxed);
  tokio::time::interval(renew_every(lease_ms))
}

/// `process()`'s loop: looks when its `Schedule` says, until it is stopped
/// or its environment goes away.
pub(super) async fn poll<const WEAK: bool>(
  shared: Arc<Shared>,
  calls: Arc<Calls<WEAK>>,
  settings: Settings,
) {
  let mut renew_timer = renewals(&shared).await;
  if !calls.first_turn().await {
    return;
  }
  let mut signal = off_runtime(&shared, |shared| shared.queue.lock().work_signal()).await;
  let mut schedule = Schedule::new(settings.poll_ms, signal.is_some(), Instant::now());
  let mut look = true;
  loop {
    if gone(&shared, &calls).await {
      return;
    }
    if look {
      // A store that cannot be reached now is asked again at the next look.
      let jobs = take(&shared).await.1.unwrap_or_default();
      schedule.looked(Instant::now());
      start_jobs(&shared, &calls, jobs, settings.job_timeout_ms);
    }
    // Read off the runtime: the worker's lock is held across round trips
    // by the jobs' steps, which need the runtime to finish.
    let (stopping, full, due) = off_runtime(&shared, |shared| {
      let worker = shared.worker.lock();
      (worker.is_stopping(), worker.is_full(), worker.due())
    })
    .await;
    if stopping {
      return;
    }
    let wait = schedule.wait(full, due, Instant::now(), clock::now_ms());
    let woke = match (wait, signal.as_mut()) {
      (Wait::LookNow, _) => Woke::Look,
      (Wait::Until(until), _) => idle(&shared, &mut renew_timer, Some(until)).await,
      (Wait::Signal(at_most), Some(signal)) => {
        let heard = tokio::select! {
          heard = signal.wait(at_most) => Ok(heard),
          woke = idle(&shared, &mut renew_timer, None) => Err(woke),
        };
        match heard.map(|heard| schedule.heard(heard, Instant::now())) {
          Ok(AfterSignal::Woke(woke)) | Err(woke) => woke,
          Ok(AfterSignal::PauseThenLook(until)) => {
            idle(&shared, &mut renew_timer, Some(until)).await;
            Woke::Look
          }
        }
      }
      // A wait on the signal is only asked for on a store that has one.
      (Wait::ForSlot | Wait::Signal(_), _) => idle(&shared, &mut renew_timer, None).await,
    };
    look = schedule.looks_after(woke, Instant::now());
  }
}

/// Waits until `until` (a look is due), a stop or a slot freed (`wake`:
/// look), or a slot freed with nothing to take (`freed`); renews the
/// leases when their timer ticks.
async fn idle(
  shared: &Arc<Shared>,
  renew_timer: &mut tokio::time::Interval,
  until: Option<Instant>,
) -> Woke {
  let deadline = async {
    match until {
      Some(until) => tokio::time::sleep_until(until.into()).await,
      None => std::future::pending().await,
    }
  };
  tokio::select! {
    _ = deadline => Woke::Deadline,
    _ = shared.wake.notified() => Woke::Look,
    _ = shared.freed.notified() => Woke::Again,
    _ = renew_timer.tick() => {
      renew(shared).await;
      Woke::Again
    }
  }
}

/// A drain's loop: takes what is due until its `Drain` says stop, then
/// waits for the jobs it started, renewing their leases.
async fn drain_loop<const WEAK: bool>(
  shared: &Arc<Shared>,
  calls: Arc<Calls<WEAK>>,
  settings: &Settings,
  began: Instant,
) -> StopReason {
  let mut drain = Drain::new(began, settings.max_ms);
  let mut renew_timer = renewals(shared).await;
  if !calls.first_turn().await {
    return StopReason::Gone;
  }
  let stopped = loop {
    if gone(shared, &calls).await {
      return StopReason::Gone;
    }
    let spent = shared.worker.lock().spent();
    if let Some(reason) = drain.spent(spent, Instant::now()) {
      break reason;
    }
    let step = match take(shared).await {
      (idle, Ok(jobs)) => {
        let step = drain.took(idle, jobs.is_empty());
        start_jobs(shared, &calls, jobs, settings.job_timeout_ms);
        step
      }
      (_, Err(error)) => drain.failed(error, Instant::now()),
    };
    match step {
      DrainStep::Stop(reason) => break reason,
      DrainStep::TryAgain(pause) => {
        tokio::time::sleep(pause).await;
        continue;
      }
      DrainStep::Wait => {}
    }
    tokio::select! {
      _ = shared.wake.notified() => {}
      _ = renew_timer.tick() => renew(shared).await,
    }
  };
  shared.worker.lock().stop();
  drop(calls);
  while shared.tasks.load(Ordering::Acquire) > 0 && !shared.gone.load(Ordering::Acquire) {
    tokio::select! {
      _ = shared.finished.notified() => {}
      _ = renew_timer.tick() => renew(shared).await,
    }
  }
  stopped
}

/// Runs a drain to its end and sums up what it did.
pub(super) async fn drain_to_end<const WEAK: bool>(
  shared: Arc<Shared>,
  calls: Arc<Calls<WEAK>>,
  settings: Settings,
  began: Instant,
) -> DrainSummary {
  let stopped = drain_loop(&shared, calls, &settings, began).await;
  let remaining = patiently(&shared, COUNT_AGAIN, RECORD_PATIENCE, |shared| {
    briefly(&mut **shared.queue.lock(), |queue| {
      queue.ready_count(clock::now_ms())
    })
  })
  .await;
  let tally = *shared.tally.lock();
  let processed = shared.worker.lock().taken();
  DrainSummary::new(stopped, remaining, tally, processed)
}

/// `stop({ graceMs })`: takes no new jobs from now on (before the promise
/// is made), waits for the running ones up to `grace`, then aborts the rest
/// and hands them back to pending.
pub(super) fn stop(shared: Arc<Shared>, grace: Duration) -> impl Future<Output = ()> {
  shared.worker.lock().stop();
  shared.wake.notify_one();
  async move {
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    while shared.running() > 0 {
      tokio::select! {
        _ = shared.finished.notified() => {}
        _ = &mut deadline => break,
      }
    }
    let _ = shared.abandon.send(true);
    while shared.running() > 0 && !shared.gone.load(Ordering::Acquire) {
      shared.finished.notified().await;
    }
  }
}
