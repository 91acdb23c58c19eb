//! `backgroundJobQueue.process(handlers, options)`: a worker that runs as a
//! tokio task. It leases jobs from the store off the JavaScript thread (the
//! core's `Worker` decides how many, per user too), renews the leases of
//! all its running jobs with one timer, races each job against
//! `jobTimeoutMs`, and calls the handlers through threadsafe functions
//! (`lib/worker.js` wraps them: a job's promise always resolves, `undefined`
//! on success, `{ error }` on failure), awaiting what they return.
//!
//! Its threadsafe functions are strong: a worker keeps Node.js alive until
//! it is stopped, as BullMQ's does (`keepAlive: false` makes them weak, so
//! an idle worker lets the process exit). When its environment goes
//! away (a worker thread terminated) the calls come back `Gone`: the jobs it
//! was running go back to pending at once and the task ends.
//!
//! `backgroundJobQueue.drain(handlers, options)` is the same worker with a
//! budget (`maxJobs`, `maxMs`): it takes what is due now, never polls for
//! more, stops taking when nothing is due or the budget is spent, waits for
//! the jobs it started and resolves with what it did. Its calls are strong:
//! the promise it returns keeps Node.js alive until it settles.
//!
//! Here: the exports and their argument checks. `calls` holds the
//! threadsafe functions, `shared` the state the tasks share and their store
//! calls, `run` the tokio tasks; `core::worker` makes the decisions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

use crate::core::queue::JobType;
use crate::core::singletons::SharedQueue;
use crate::core::worker::drain::DrainSummary;
use crate::core::worker::WorkerConfig;

use self::calls::Calls;
pub use self::calls::WorkerFns;
use self::run::Settings;
use self::shared::Shared;
use super::args;
use super::boundary::boundary;
use super::errors::{Fault, JsResult};
use super::raw::{Js, Kind, Raw};

mod calls;
mod run;
mod shared;

/// `process()`, which polls until it is stopped, or `drain()`, which takes
/// what is due now within a budget and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
  Worker,
  Drain,
}

/// `handlers`: one function for every job, or an object of functions by
/// job type.
fn check_handlers(js: Js<'_>, handlers: Raw<'_>) -> JsResult<()> {
  if js.kind(handlers) == Kind::Function {
    return Ok(());
  }
  args::object(js, handlers, "handlers")?;
  let names: Vec<&str> = JobType::ALL.iter().map(|t| t.as_str()).collect();
  args::options(js, handlers, "handlers", &names, |_, value, path| {
    args::function(js, value, path).map(|_| ())
  })
}

fn settings(js: Js<'_>, options: Raw<'_>, mode: Mode) -> JsResult<Settings> {
  let mut settings = Settings {
    config: WorkerConfig {
      concurrency: 1,
      per_user_concurrency: None,
      max_jobs: None,
    },
    poll_ms: None,
    job_timeout_ms: None,
    // A worker keeps its process alive until stop(), as BullMQ's does:
    // `node worker.js` whose only line is process() must not exit.
    keep_alive: true,
    max_ms: None,
  };
  let common = [
    "concurrency",
    "perUserConcurrency",
    "jobTimeoutMs",
    "onCompleted",
    "onFailed",
    "onDeadLetter",
  ];
  let own: &[&str] = match mode {
    Mode::Worker => &["pollIntervalMs", "keepAlive"],
    Mode::Drain => &["maxJobs", "maxMs"],
  };
  let known: Vec<&str> = common.iter().chain(own).copied().collect();
  let max = args::MAX_SAFE_INTEGER;
  args::options(js, options, "options", &known, |key, value, path| {
    let whole =
      |min| Ok::<u64, Fault>(args::optional_integer(js, value, path, min, max)?.unwrap_or(min));
    match key {
      "concurrency" => settings.config.concurrency = whole(1)? as usize,
      "perUserConcurrency" => settings.config.per_user_concurrency = Some(whole(1)? as usize),
      "pollIntervalMs" => settings.poll_ms = Some(whole(1)?),
      "jobTimeoutMs" => settings.job_timeout_ms = Some(whole(1)?),
      "keepAlive" => settings.keep_alive = args::optional_bool(js, value, path)?.unwrap_or(true),
      // A budget of 0 starts nothing: the drain only says what is due.
      "maxJobs" => settings.config.max_jobs = Some(whole(0)?),
      "maxMs" => settings.max_ms = Some(whole(0)?),
      _ => {
        args::function(js, value, path)?;
      }
    }
    Ok(())
  })?;
  Ok(settings)
}

/// What a drain did (`lib/worker.js` shapes it).
#[napi(object)]
pub struct DrainReport {
  /// Jobs handed to a handler.
  pub processed: f64,
  pub completed: f64,
  /// Failed attempts, dead letters included.
  pub failed: f64,
  pub dead_lettered: f64,
  /// Pending jobs due now when the drain ended; `None` when the store could
  /// not say.
  pub remaining: Option<f64>,
  pub stopped_by: String,
  pub elapsed_ms: f64,
  /// The store's error that ended the drain, or kept it from counting what
  /// remains: its code and message.
  pub error_code: Option<String>,
  pub error_message: Option<String>,
}

impl DrainReport {
  fn new(summary: DrainSummary, elapsed: Duration) -> Self {
    let DrainSummary {
      processed,
      tally,
      remaining,
      stopped_by,
      error,
    } = summary;
    Self {
      processed: processed as f64,
      completed: tally.completed.into(),
      failed: tally.failed.into(),
      dead_lettered: tally.dead.into(),
      remaining: remaining.map(|n| n as f64),
      stopped_by: stopped_by.to_string(),
      elapsed_ms: elapsed.as_millis() as f64,
      error_code: error.as_ref().map(|e| e.kind.code().to_string()),
      error_message: error.map(|e| e.message),
    }
  }
}

/// A running worker: `stop({ graceMs })` and `running`.
#[napi]
pub struct JobWorker {
  shared: Arc<Shared>,
}

#[napi]
impl JobWorker {
  /// Jobs running now.
  #[napi(getter)]
  pub fn running(&self) -> u32 {
    self.shared.running() as u32
  }

  /// Takes no new jobs, waits for the running ones up to `graceMs`, then
  /// aborts the rest and hands them back to pending.
  #[napi]
  pub fn stop<'env>(&self, env: &'env Env, grace_ms: f64) -> napi::Result<PromiseRaw<'env, ()>> {
    let grace = Duration::from_millis(grace_ms.max(0.0) as u64);
    let stopped = run::stop(self.shared.clone(), grace);
    env.spawn_future(async move {
      stopped.await;
      Ok(())
    })
  }
}

/// Checks `handlers` and `options` and makes the worker's shared state.
fn prepare(
  js: Js<'_>,
  queue: &SharedQueue,
  handlers: Raw<'_>,
  options: Raw<'_>,
  mode: Mode,
) -> JsResult<(Arc<Shared>, Settings)> {
  check_handlers(js, handlers)?;
  let settings = settings(js, options, mode)?;
  let chains = mode == Mode::Worker;
  Ok((Shared::new(queue, settings.config, chains), settings))
}

/// Starts a worker over `queue`; `handlers` and `options` are checked here,
/// the three functions come from `lib/worker.js`.
pub fn start(
  env: &Env,
  queue: &SharedQueue,
  handlers: Raw<'_>,
  options: Raw<'_>,
  fns: WorkerFns,
) -> napi::Result<JobWorker> {
  boundary(env, |js| {
    let (shared, settings) = prepare(js, queue, handlers, options, Mode::Worker)?;
    if settings.keep_alive {
      let calls = Calls::<false>::new(&fns)?;
      napi::bindgen_prelude::spawn(run::poll(shared.clone(), calls, settings));
    } else {
      let calls = Calls::<true>::new(&fns)?;
      napi::bindgen_prelude::spawn(run::poll(shared.clone(), calls, settings));
    }
    Ok(JobWorker { shared })
  })
}

/// Starts a drain of `queue`: what is due now goes to `handlers` within the
/// budget in `options`; the promise resolves with a `DrainReport` once the
/// jobs it started are done. Bad arguments throw before anything starts.
pub fn drain<'env>(
  env: &'env Env,
  queue: &SharedQueue,
  handlers: Raw<'_>,
  options: Raw<'_>,
  fns: WorkerFns,
) -> napi::Result<PromiseRaw<'env, DrainReport>> {
  let began = Instant::now();
  let (shared, settings) = boundary(env, |js| prepare(js, queue, handlers, options, Mode::Drain))?;
  // Strong: the drain's promise keeps Node.js alive until it settles.
  let calls = Calls::<false>::new(&fns)?;
  env.spawn_future(async move {
    let summary = run::drain_to_end(shared, calls, settings, began).await;
    Ok(DrainReport::new(summary, began.elapsed()))
  })
}
