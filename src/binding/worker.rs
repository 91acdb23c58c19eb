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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{FnArgs, Function, PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch, Notify};

use crate::core::clock;
use crate::core::queue::{Job, JobStatus, JobType};
use crate::core::singletons::SharedQueue;
use crate::core::storage::{Heard as Signal, QueueStore, StorageError, StorageErrorKind};
use crate::core::worker::{Recorded, Worker, WorkerConfig};

use super::args;
use super::boundary::boundary;
use super::errors::{Fault, JsResult};
use super::js_fn::{ended, AsyncJsFn, Ended, Gone, Heard};
use super::raw::{Js, Kind, Raw, Settled};
use super::records;

/// `process()`, which polls until it is stopped, or `drain()`, which takes
/// what is due now within a budget and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
  Worker,
  Drain,
}

/// What a worker was asked to do, checked.
struct Settings {
  config: WorkerConfig,
  /// `pollIntervalMs`; `None`: the default, `POLL_MS`, or on a store with
  /// a work signal `LOOK_ANYWAY_MS`.
  poll_ms: Option<u64>,
  job_timeout_ms: Option<u64>,
  keep_alive: bool,
  /// A drain's `maxMs`: no job is started once it has passed.
  max_ms: Option<u64>,
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

fn settings(js: Js, options: Raw, mode: Mode) -> JsResult<Settings> {
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

/// The JavaScript side of a worker: `run(jobJson)` starts a job's handler,
/// `abort(id, code, message)` aborts its signal, `notify(event, jobJson)`
/// reports what was recorded (`completed`, `failed`, `dead`).
struct Calls<const WEAK: bool> {
  run: AsyncJsFn<String, WEAK>,
  abort: AsyncJsFn<FnArgs<(String, String, String)>, WEAK>,
  notify: AsyncJsFn<FnArgs<(String, String)>, WEAK>,
}

type RunFn<'env> = Function<'env, String, Unknown<'static>>;
type AbortFn<'env> = Function<'env, FnArgs<(String, String, String)>, Unknown<'static>>;
type NotifyFn<'env> = Function<'env, FnArgs<(String, String)>, Unknown<'static>>;

/// The three functions `lib/worker.js` makes for a worker or a drain.
pub struct WorkerFns<'env> {
  pub run: RunFn<'env>,
  pub abort: AbortFn<'env>,
  pub notify: NotifyFn<'env>,
}

impl<const WEAK: bool> Calls<WEAK> {
  fn new(fns: &WorkerFns) -> napi::Result<Arc<Self>> {
    Ok(Arc::new(Self {
      run: AsyncJsFn::new(&fns.run)?,
      abort: AsyncJsFn::new(&fns.abort)?,
      notify: AsyncJsFn::new(&fns.notify)?,
    }))
  }
}

/// A job's end, read on the JavaScript thread.
#[derive(Clone)]
enum JobEnd {
  /// The environment went away under the handler.
  Gone,
  Completed {
    now: u64,
  },
  Failed {
    message: String,
    now: u64,
  },
}

fn read_job_end(js: Js, settled: Settled) -> JobEnd {
  if matches!(settled, Settled::Rejected(_)) && !js.can_run_js() {
    // The handler was cut off by its thread ending (`process.exit` in it,
    // `terminate()` while it ran): not a failed attempt.
    return JobEnd::Gone;
  }
  let now = js.now_ms();
  let Ended::Failed { error, .. } = ended(js, settled) else {
    return JobEnd::Completed { now };
  };
  JobEnd::Failed {
    message: args::error_message(js, error),
    now,
  }
}

/// What the worker's task and its `Worker` handle share.
struct Shared {
  queue: SharedQueue,
  worker: Mutex<Worker>,
  /// A slot was freed, or a stop was asked: look again now.
  wake: Notify,
  /// A slot was freed by a job whose end found nothing ready to take in
  /// its place: wait for work (a full worker waits for a slot).
  freed: Notify,
  /// Whether a job's end takes the next one in the same step: a worker
  /// does; a drain takes only from its loop, which keeps its budget.
  chains: bool,
  /// A running job finished (or went back to pending).
  finished: Notify,
  /// Set at the end of a stop's grace: running jobs are aborted and handed
  /// back.
  abandon: watch::Sender<bool>,
  /// The environment went away.
  gone: AtomicBool,
  /// Jobs started and not yet done with (their outcome recorded and
  /// reported): a drain resolves once it is 0.
  tasks: AtomicUsize,
  /// What the recorded outcomes were.
  tally: Mutex<Tally>,
  /// For each job handed to the JavaScript thread, in the order they were
  /// handed: whether its handler's call has come back (see `release_all`).
  calls: Mutex<HashMap<Arc<str>, HandedCall>>,
  /// Jobs handed so far (their order).
  handed: AtomicU64,
  /// The queue's `leaseMs`, as last read.
  lease_ms: AtomicU64,
}

/// A job's handler call: its place in the order calls were handed to the
/// JavaScript thread, and what hears that the call returned.
struct HandedCall {
  order: u64,
  returned: oneshot::Receiver<()>,
}

/// What was heard of a job's handler call when its environment ended.
#[derive(Clone, Copy)]
struct CallHeard {
  order: u64,
  returned: bool,
}

/// Outcomes recorded by a worker, as its events report them.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
  completed: u32,
  /// Failed attempts, the dead letters among them.
  failed: u32,
  dead: u32,
}

impl Shared {
  fn new(queue: &SharedQueue, config: WorkerConfig, mode: Mode) -> Arc<Self> {
    Arc::new(Self {
      queue: queue.clone(),
      worker: Mutex::new(Worker::new(config)),
      wake: Notify::new(),
      freed: Notify::new(),
      chains: mode == Mode::Worker,
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

  fn running(&self) -> usize {
    self.worker.lock().running()
  }

  /// Hands a running job back to pending: untried when the worker stopped
  /// (`stop()` past its grace), as a stall when its environment ended
  /// under it (`stalled`: counted, so a job that ends its worker every
  /// time fails after `maxStalls`).
  fn release(&self, id: &str, stalled: bool) {
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
  /// pending now, not when its lease runs out: with a stall counted when
  /// its handler was running, untried when it never was. Calls reach the
  /// JavaScript thread in the order they were handed to it: the jobs whose
  /// handler returned were running (a promise in flight), the first whose
  /// call did not return is the one the thread ended in (its handler
  /// exited, or was cut off), and the calls after it never ran.
  fn release_all(&self) {
    // Once: every job's task hears that the environment went, and what
    // was heard of the calls must be read in one place to tell the one
    // the thread ended in from those it never got to.
    if self.gone.swap(true, Ordering::AcqRel) {
      return;
    }
    let running = self.worker.lock().running_ids();
    let heard: Vec<(Arc<str>, Option<CallHeard>)> = running
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
    let cut_off = heard
      .iter()
      .filter_map(|(_, call)| call.filter(|call| !call.returned))
      .map(|call| call.order)
      .min();
    for (id, call) in heard {
      let ran = call.is_some_and(|call| call.returned || Some(call.order) == cut_off);
      self.release(&id, ran);
    }
  }

  /// Forgets what was heard of job `id`'s call (it is done with).
  fn forget_call(&self, id: &str) {
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
  /// JavaScript thread, each try within the store's (short) busy timeout
  /// and with the queue's lock let go in between, for as long as the lease
  /// could still be this worker's (`leaseMs`, at least `RECORD_PATIENCE`):
  /// past that, another worker may hold the job.
  async fn record(self: &Arc<Self>, id: &str, end: &JobEnd) -> Recorded {
    let (owned, end) = (id.to_string(), end.clone());
    // A file held by another process, a server away for a while: asked
    // again, so a job that ran is not run again for want of its outcome (a
    // retry finds it recorded if the first try landed).
    let again = [StorageErrorKind::Busy, StorageErrorKind::Unavailable];
    // The lease's length as last read (at the start, and by each step).
    let lease_ms = self.lease_ms.load(Ordering::Relaxed);
    let patience = Duration::from_millis(lease_ms).max(RECORD_PATIENCE);
    let record = move |shared: &Shared| shared.try_record(&owned, &end);
    match patiently(self, &again, patience, record).await {
      Ok(recorded) => recorded,
      Err(_) => {
        let id = id.to_string();
        off_runtime(self, move |shared| shared.worker.lock().finish(&id)).await;
        Recorded::default()
      }
    }
  }

  fn try_record(&self, id: &str, end: &JobEnd) -> Result<Recorded, StorageError> {
    let (error, now) = match end {
      JobEnd::Completed { now } => (None, *now),
      JobEnd::Failed { message, now } => (Some(message.as_str()), *now),
      JobEnd::Gone => return Ok(Recorded::default()),
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
async fn off_runtime<T: Send + 'static>(
  shared: &Arc<Shared>,
  work: impl FnOnce(&Shared) -> T + Send + 'static,
) -> T {
  let shared = shared.clone();
  match tokio::task::spawn_blocking(move || work(&shared)).await {
    Ok(value) => value,
    Err(error) => std::panic::resume_unwind(error.into_panic()),
  }
}

/// How long one of the worker's calls waits for another process's lock
/// while it holds the queue (which the JavaScript thread may be waiting
/// for); it waits longer by trying again with the queue let go.
const WORKER_TRY_MS: u64 = 10;

/// Runs `call` on the queue with the worker's short busy timeout.
fn briefly<T>(queue: &mut dyn QueueStore, call: impl FnOnce(&mut dyn QueueStore) -> T) -> T {
  let usual = queue.busy_timeout_ms();
  let _ = queue.set_busy_timeout(WORKER_TRY_MS.min(usual));
  let result = call(&mut *queue);
  let _ = queue.set_busy_timeout(usual);
  result
}

/// How long a worker keeps trying a store call while another process holds
/// the file (off the JavaScript thread); recording an outcome tries for the
/// lease's length if that is longer.
const RECORD_PATIENCE: Duration = Duration::from_secs(10);

/// Runs a store call off the runtime, asking again while it fails with one
/// of the errors `again` names (each try within the store's short busy
/// timeout, the queue's lock let go in between), for up to `patience`.
async fn patiently<T: Send + 'static>(
  shared: &Arc<Shared>,
  again: &[StorageErrorKind],
  patience: Duration,
  call: impl Fn(&Shared) -> Result<T, StorageError> + Send + Sync + 'static,
) -> Result<T, StorageError> {
  let call = Arc::new(call);
  let started = Instant::now();
  let mut pause = Duration::from_millis(5);
  loop {
    let once = call.clone();
    match off_runtime(shared, move |shared| once(shared)).await {
      Err(error) if again.contains(&error.kind) && started.elapsed() < patience => {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
      }
      done => return done,
    }
  }
}

/// Resolves when a stop's grace has run out.
async fn abandoned(abandon: &mut watch::Receiver<bool>) {
  // The sender lives as long as the worker's shared state, which this
  // task holds.
  let _ = abandon.wait_for(|abandoned| *abandoned).await;
}

/// Counts a started job's task until it is done with (dropped at its end,
/// whichever way it ends).
struct Task(Arc<Shared>);

impl Task {
  fn start(shared: &Arc<Shared>) -> Self {
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
        let ms = timeout_ms.unwrap_or(0);
        let message = format!("The job timed out after {ms} ms");
        let aborted = calls.abort.call(FnArgs::from((id.clone(), "TIMEOUT".to_string(), message.clone())), |_, _| ()).await;
        aborted.map(|_| JobEnd::Failed { message, now: clock::now_ms() })
      }
      _ = abandoned(&mut abandon) => {
        let message = "The worker stopped".to_string();
        let _ = calls.abort.call(FnArgs::from((id.clone(), "WORKER_STOPPED".to_string(), message)), |_, _| ()).await;
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
    let Recorded {
      job: recorded,
      next,
      asked,
    } = shared.record(&id, &end).await;
    shared.finished.notify_one();
    // The events (and a drain's counts) follow what was recorded, whoever
    // recorded it. Queued before the next job's handler, so they reach
    // JavaScript in that order.
    let told = recorded.and_then(|job| tell(&shared, &calls, &job));
    match next {
      Some(next) => {
        started = hand(&shared, &calls, &next);
        job = next;
      }
      None => {
        // Nothing was ready in the step, or none was asked for (a drain,
        // a per-user limit, a stopping worker): the loop decides.
        if asked {
          shared.freed.notify_one();
        } else {
          shared.wake.notify_one();
        }
        if let Some(told) = told {
          let _ = told.await;
        }
        return;
      }
    }
    if let Some(told) = told {
      let _ = told.await;
    }
  }
}

/// Counts a recorded outcome and queues its event (`completed`, `failed`,
/// `dead`); `None` for a job still processing.
fn tell<const WEAK: bool>(
  shared: &Shared,
  calls: &Calls<WEAK>,
  job: &Job,
) -> Option<oneshot::Receiver<()>> {
  let event = {
    let mut tally = shared.tally.lock();
    match job.status {
      JobStatus::Completed => {
        tally.completed += 1;
        "completed"
      }
      JobStatus::Failed => {
        tally.failed += 1;
        tally.dead += 1;
        "dead"
      }
      JobStatus::Pending => {
        tally.failed += 1;
        "failed"
      }
      JobStatus::Processing => return None,
    }
  };
  let args = FnArgs::from((event.to_string(), records::job(job)));
  calls.notify.send(args, |_, _| (), None).ok()
}

/// The first look waits for a turn of the JavaScript thread: `process()`
/// (or `drain()`) has returned before any job is taken. False when the
/// environment has gone.
async fn first_turn<const WEAK: bool>(calls: &Calls<WEAK>) -> bool {
  let turn = calls
    .notify
    .call(
      FnArgs::from(("started".to_string(), String::new())),
      |_, _| (),
    )
    .await;
  turn != Err(Gone)
}

/// The environment went away: the worker's jobs go back to pending. True
/// when it has (the worker ends).
async fn gone<const WEAK: bool>(shared: &Arc<Shared>, calls: &Calls<WEAK>) -> bool {
  if calls.run.is_gone() {
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

/// Hands a job to its handler on the JavaScript thread; what it returns
/// is heard through the receiver.
fn hand<const WEAK: bool>(
  shared: &Shared,
  calls: &Calls<WEAK>,
  job: &Job,
) -> Result<oneshot::Receiver<JobEnd>, Gone> {
  let (came_back, returned) = oneshot::channel();
  let order = shared.handed.fetch_add(1, Ordering::Relaxed);
  let call = HandedCall { order, returned };
  shared.calls.lock().insert(job.id.clone(), call);
  calls.run.send(
    records::job(job),
    read_job_end,
    Some(Heard::Returned(came_back)),
  )
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
    let started = hand(shared, calls, &job);
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
  tokio::time::interval(Duration::from_millis((lease_ms / 2).max(1)))
}

/// `pollIntervalMs` by default, on a store without a work signal.
const POLL_MS: u64 = 1_000;
/// How often an idle worker on a store with a work signal (Redis) looks
/// at the queue by default even when no signal came: a lost signal costs
/// this much latency at most.
const LOOK_ANYWAY_MS: u64 = 30_000;
/// The longest one wait on a work signal blocks, and the pause after a
/// look the signal did not ask for or a wait that failed: an idle worker
/// sends one command a second at most.
const SIGNAL_TURN: Duration = Duration::from_secs(1);

/// Why an idle worker's wait ended.
enum Woke {
  /// Look at the queue now.
  Look,
  /// Decide again how to wait (a slot was freed with nothing to take, a
  /// lease renewed, a wait that heard nothing).
  Again,
  /// The time waited for came: look if a look is due.
  Deadline,
}

async fn poll<const WEAK: bool>(shared: Arc<Shared>, calls: Arc<Calls<WEAK>>, settings: Settings) {
  let mut renew_timer = renewals(&shared).await;
  if !first_turn(&calls).await {
    return;
  }
  let mut signal = off_runtime(&shared, |shared| shared.queue.lock().work_signal()).await;
  let default_ms = if signal.is_some() {
    LOOK_ANYWAY_MS
  } else {
    POLL_MS
  };
  let look_every = Duration::from_millis(settings.poll_ms.unwrap_or(default_ms));
  let mut look = true;
  let mut looked_at = Instant::now();
  // No wait on the signal before then (after a look it did not ask for,
  // or a wait that failed).
  let mut quiet_until = Instant::now();
  loop {
    if gone(&shared, &calls).await {
      return;
    }
    if look {
      // A store that cannot be reached now is asked again at the next look.
      let jobs = take(&shared).await.1.unwrap_or_default();
      looked_at = Instant::now();
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
    // When to look without being asked: every `look_every`, and when the
    // store said a job may come due (a retry time, a lease's end).
    let mut look_at = looked_at + look_every;
    if let Some(due) = due {
      let in_ms = due.saturating_sub(clock::now_ms());
      look_at = look_at.min(Instant::now() + Duration::from_millis(in_ms));
    }
    let woke = match signal.as_mut() {
      // A full worker waits for a slot: a signal popped now would be
      // one another worker could have used.
      _ if full => idle(&shared, &mut renew_timer, None).await,
      Some(signal) => {
        let now = Instant::now();
        if now >= look_at {
          quiet_until = now + SIGNAL_TURN;
          Woke::Look
        } else if now < quiet_until {
          idle(&shared, &mut renew_timer, Some(quiet_until.min(look_at))).await
        } else {
          let at_most = (look_at - now).min(SIGNAL_TURN);
          let heard = tokio::select! {
            heard = signal.wait(at_most) => Ok(heard),
            woke = idle(&shared, &mut renew_timer, None) => Err(woke),
          };
          match heard {
            Ok(Signal::Work) => Woke::Look,
            Ok(Signal::Nothing) => Woke::Again,
            // The server did not answer or refused the pop: look as often
            // as without a signal.
            Ok(Signal::Failed) => {
              quiet_until = Instant::now() + SIGNAL_TURN;
              idle(&shared, &mut renew_timer, Some(quiet_until.min(look_at))).await;
              Woke::Look
            }
            Err(woke) => woke,
          }
        }
      }
      None => idle(&shared, &mut renew_timer, Some(look_at)).await,
    };
    look = match woke {
      Woke::Look => true,
      Woke::Again => false,
      Woke::Deadline => Instant::now() >= look_at,
    };
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

/// Why a drain stopped taking jobs.
enum StoppedBy {
  NothingDue,
  MaxJobs,
  MaxMs,
  Storage(StorageError),
  /// The environment went away (nobody is left to hear of it).
  Gone,
}

impl StoppedBy {
  fn as_str(&self) -> &'static str {
    match self {
      StoppedBy::NothingDue | StoppedBy::Gone => "nothingDue",
      StoppedBy::MaxJobs => "maxJobs",
      StoppedBy::MaxMs => "maxMs",
      StoppedBy::Storage(_) => "storageError",
    }
  }
}

/// A drain's loop: takes what is due (as many at once as its concurrency
/// allows), never waits for jobs that are not due yet, and stops taking when
/// nothing is due, `maxJobs` jobs were taken, `maxMs` has passed, or the
/// store fails (another process holding the file is waited out, within the
/// budget). Then it waits for the jobs it started, renewing their leases.
async fn drain_loop<const WEAK: bool>(
  shared: &Arc<Shared>,
  calls: Arc<Calls<WEAK>>,
  settings: &Settings,
  began: Instant,
) -> StoppedBy {
  let deadline = settings.max_ms.map(|ms| began + Duration::from_millis(ms));
  let mut renew_timer = renewals(shared).await;
  if !first_turn(&calls).await {
    return StoppedBy::Gone;
  }
  let mut busy_since: Option<Instant> = None;
  let stopped_by = loop {
    if gone(shared, &calls).await {
      return StoppedBy::Gone;
    }
    if shared.worker.lock().spent() {
      break StoppedBy::MaxJobs;
    }
    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
      break StoppedBy::MaxMs;
    }
    match take(shared).await {
      (idle, Ok(jobs)) => {
        busy_since = None;
        let none = jobs.is_empty();
        start_jobs(shared, &calls, jobs, settings.job_timeout_ms);
        if idle && none {
          break StoppedBy::NothingDue;
        }
      }
      (_, Err(error)) if error.kind == StorageErrorKind::Busy => {
        if busy_since.get_or_insert_with(Instant::now).elapsed() >= RECORD_PATIENCE {
          break StoppedBy::Storage(error);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        continue;
      }
      (_, Err(error)) => break StoppedBy::Storage(error),
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
  stopped_by
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

/// Runs a drain to its end and reports.
async fn drain_to_end<const WEAK: bool>(
  shared: Arc<Shared>,
  calls: Arc<Calls<WEAK>>,
  settings: Settings,
  began: Instant,
) -> DrainReport {
  let stopped_by = drain_loop(&shared, calls, &settings, began).await;
  // Only a busy file is waited out: a server that is away says so at once.
  let remaining = patiently(
    &shared,
    &[StorageErrorKind::Busy],
    RECORD_PATIENCE,
    |shared| {
      briefly(&mut **shared.queue.lock(), |queue| {
        queue.ready_count(clock::now_ms())
      })
    },
  )
  .await;
  let error = match (&stopped_by, &remaining) {
    (StoppedBy::Storage(error), _) | (_, Err(error)) => Some(error.clone()),
    _ => None,
  };
  let tally = *shared.tally.lock();
  DrainReport {
    processed: shared.worker.lock().taken() as f64,
    completed: tally.completed.into(),
    failed: tally.failed.into(),
    dead_lettered: tally.dead.into(),
    remaining: remaining.ok().map(|n| n as f64),
    stopped_by: stopped_by.as_str().to_string(),
    elapsed_ms: began.elapsed().as_millis() as f64,
    error_code: error.as_ref().map(|e| e.kind.code().to_string()),
    error_message: error.map(|e| e.message),
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
    let shared = self.shared.clone();
    shared.worker.lock().stop();
    shared.wake.notify_one();
    let grace = Duration::from_millis(grace_ms.max(0.0) as u64);
    env.spawn_future(async move {
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
      Ok(())
    })
  }
}

/// Checks `handlers` and `options` and makes the worker's shared state.
fn prepare(
  js: Js,
  queue: &SharedQueue,
  handlers: Raw,
  options: Raw,
  mode: Mode,
) -> JsResult<(Arc<Shared>, Settings)> {
  check_handlers(js, handlers)?;
  let settings = settings(js, options, mode)?;
  Ok((Shared::new(queue, settings.config, mode), settings))
}

/// Starts a worker over `queue`; `handlers` and `options` are checked here,
/// the three functions come from `lib/worker.js`.
pub fn start(
  env: Env,
  queue: &SharedQueue,
  handlers: Raw,
  options: Raw,
  fns: WorkerFns,
) -> napi::Result<JobWorker> {
  boundary(env, |js| {
    let (shared, settings) = prepare(js, queue, handlers, options, Mode::Worker)?;
    if settings.keep_alive {
      let calls = Calls::<false>::new(&fns)?;
      napi::bindgen_prelude::spawn(poll(shared.clone(), calls, settings));
    } else {
      let calls = Calls::<true>::new(&fns)?;
      napi::bindgen_prelude::spawn(poll(shared.clone(), calls, settings));
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
  handlers: Raw,
  options: Raw,
  fns: WorkerFns,
) -> napi::Result<PromiseRaw<'env, DrainReport>> {
  let began = Instant::now();
  let (shared, settings) = boundary(*env, |js| {
    prepare(js, queue, handlers, options, Mode::Drain)
  })?;
  // Strong: the drain's promise keeps Node.js alive until it settles.
  let calls = Calls::<false>::new(&fns)?;
  env.spawn_future(async move { Ok(drain_to_end(shared, calls, settings, began).await) })
}
