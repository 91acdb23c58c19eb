//! `backgroundJobQueue.process(handlers, options)`: a worker over a queue.
//! The core's `Worker` decides which jobs run (concurrency, per user); the
//! queue leases them; Rust timers drive polling, lease renewal and job
//! timeouts; `glue.js`'s `startWorker` calls the handlers and reports back.

use std::collections::HashMap;
use std::sync::LazyLock;

use parking_lot::Mutex;

use crate::core::queue::{JobStatus, JobType};
use crate::core::singletons::SharedQueue;
use crate::core::worker::{Worker, WorkerConfig};

use super::args;
use super::env::Glue;
use super::errors::{callback, Fault, JsResult, NativeCallback};
use super::js::{Js, Kind, Raw};
use super::queue::job_object;

struct Running {
  queue: SharedQueue,
  worker: Worker,
}

static WORKERS: LazyLock<Mutex<(u64, HashMap<u64, Running>)>> =
  LazyLock::new(|| Mutex::new((0, HashMap::new())));

fn with_worker<T>(id: Raw, js: Js, f: impl FnOnce(&mut Running) -> T) -> Option<T> {
  let id = js.read_number(id) as u64;
  WORKERS.lock().1.get_mut(&id).map(f)
}

/// `handlers`: one function for every job, or an object of functions by
/// job type.
fn check_handlers(js: Js, handlers: Raw) -> JsResult<()> {
  if js.kind(handlers) == Kind::Function {
    return Ok(());
  }
  args::object(js, handlers, "handlers")?;
  let names: Vec<&str> = JobType::ALL.iter().map(|t| t.as_str()).collect();
  args::options(js, handlers, "handlers", &names, |_, value, path| {
    args::function(js, value, path).map(|_| ())
  })
}

/// Starts a worker; returns its handle (`stop({ graceMs })`, `running`).
pub fn start(js: Js, queue: &SharedQueue, handlers: Raw, options: Raw) -> JsResult<Raw> {
  check_handlers(js, handlers)?;
  let mut config = WorkerConfig {
    concurrency: 1,
    per_user_concurrency: None,
  };
  let (mut poll_ms, mut job_timeout_ms) = (1_000u64, None);
  let mut events = [js.undefined(); 3];
  let known = [
    "concurrency",
    "perUserConcurrency",
    "pollIntervalMs",
    "jobTimeoutMs",
    "onCompleted",
    "onFailed",
    "onDeadLetter",
  ];
  let max = args::MAX_SAFE_INTEGER;
  args::options(js, options, "options", &known, |key, value, path| {
    let whole =
      |min| Ok::<u64, Fault>(args::optional_integer(js, value, path, min, max)?.unwrap_or(min));
    match key {
      "concurrency" => config.concurrency = whole(1)? as usize,
      "perUserConcurrency" => config.per_user_concurrency = Some(whole(1)? as usize),
      "pollIntervalMs" => poll_ms = whole(1)?,
      "jobTimeoutMs" => job_timeout_ms = Some(whole(1)?),
      "onCompleted" => events[0] = args::function(js, value, path)?,
      "onFailed" => events[1] = args::function(js, value, path)?,
      _ => events[2] = args::function(js, value, path)?,
    }
    Ok(())
  })?;
  let renew_ms = (queue.lock().config().lease_ms / 2).max(1);
  let id = {
    let mut workers = WORKERS.lock();
    workers.0 += 1;
    let id = workers.0;
    let running = Running {
      queue: queue.clone(),
      worker: Worker::new(config),
    };
    workers.1.insert(id, running);
    id
  };
  js.glue(
    Glue::StartWorker,
    &[
      js.number(id as f64)?,
      handlers,
      js.number(poll_ms as f64)?,
      js.number(job_timeout_ms.map_or(-1.0, |ms| ms as f64))?,
      js.number(renew_ms as f64)?,
      events[0],
      events[1],
      events[2],
    ],
  )
}

callback!(
  /// `worker.take(id)`: the jobs to start now, as `QueuedJob` snapshots.
  fn take(js, [id]) {
    let now = js.now_ms();
    let jobs = with_worker(id, js, |r| r.worker.take(&mut **r.queue.lock(), now)).unwrap_or_default();
    js.array(&jobs, |job| job_object(js, job))
  }
);

callback!(
  /// `worker.done(id, jobId, ok, error)`: completes or fails the job;
  /// returns `[job, deadLetter]`, or undefined when the job no longer ran
  /// here (released by a stop).
  fn done(js, [id, job_id, ok, error]) {
    let job_id = js.read_string(job_id)?;
    let now = js.now_ms();
    let message = (!js.read_bool(ok)).then(|| args::error_message(js, error));
    let after = with_worker(id, js, |r| {
      let mut queue = r.queue.lock();
      // Still ours, like every job running here: a lease that ran out while
      // the thread was busy is not a lost job.
      r.worker.keep_leased(&mut **queue, now);
      if !r.worker.finish(&job_id) {
        return None;
      }
      // A storage that cannot take the outcome now leaves the job leased:
      // it comes back when the lease runs out, so it is run again rather
      // than lost.
      let recorded = match &message {
        None => queue.complete(&job_id, now),
        Some(message) => queue.fail(&job_id, message, now),
      };
      recorded.and_then(|_| queue.get(&job_id, now)).ok().flatten()
    });
    match after.flatten() {
      Some(job) => {
        let dead = js.boolean(job.status == JobStatus::Failed)?;
        let snapshot = job_object(js, &job)?;
        js.array(&[snapshot, dead], |value| Ok(*value))
      }
      None => Ok(js.undefined()),
    }
  }
);

callback!(
  /// `worker.renew(id, jobId)`: the handler is still on it.
  fn renew(js, [id, job_id]) {
    let job_id = js.read_string(job_id)?;
    let now = js.now_ms();
    let renewed = with_worker(id, js, |r| {
      let mut queue = r.queue.lock();
      r.worker.keep_leased(&mut **queue, now);
      queue.keep_leased(&job_id, now).unwrap_or(false)
    })
    .unwrap_or(false);
    js.boolean(renewed)
  }
);

callback!(
  /// `worker.stop(id)`: no new jobs.
  fn stop(js, [id]) {
    with_worker(id, js, |r| r.worker.stop());
    Ok(js.undefined())
  }
);

callback!(
  /// `worker.close(id)`: hands the jobs still running back to pending and
  /// forgets the worker; returns how many went back.
  fn close(js, [id]) {
    let now = js.now_ms();
    let key = js.read_number(id) as u64;
    let released = match WORKERS.lock().1.remove(&key) {
      Some(running) => {
        let mut queue = running.queue.lock();
        running
          .worker
          .running_ids()
          .iter()
          .filter(|job_id| queue.release(job_id, now).unwrap_or(false))
          .count()
      }
      None => 0,
    };
    js.number(released as f64)
  }
);

/// The native functions `startWorker` calls, by name.
pub fn worker_callbacks() -> [(&'static str, NativeCallback); 5] {
  [
    ("take", take),
    ("done", done),
    ("renew", renew),
    ("stop", stop),
    ("close", close),
  ]
}
