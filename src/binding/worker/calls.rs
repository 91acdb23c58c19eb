//! The JavaScript side of a worker, through threadsafe functions:
//! `run(jobJson)` starts a job's handler, `abort(id, code, message)` aborts
//! its signal, `notify(event, jobJson)` reports what was recorded
//! (`completed`, `failed`, `dead`) and, once, that the worker `started`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use napi::bindgen_prelude::{FnArgs, Function, Unknown};
use tokio::sync::oneshot;

use super::shared::{HandedCall, Shared};
use crate::binding::args;
use crate::binding::js_fn::{ended, AsyncJsFn, Ended, Gone, Heard};
use crate::binding::raw::{Js, Settled};
use crate::binding::records;
use crate::core::queue::Job;
use crate::core::worker::ends::{Abort, JobEnd};

pub(super) struct Calls<const WEAK: bool> {
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
  pub(super) fn new(fns: &WorkerFns) -> napi::Result<Arc<Self>> {
    Ok(Arc::new(Self {
      run: AsyncJsFn::new(&fns.run)?,
      abort: AsyncJsFn::new(&fns.abort)?,
      notify: AsyncJsFn::new(&fns.notify)?,
    }))
  }

  /// Whether the environment has gone away.
  pub(super) fn is_gone(&self) -> bool {
    self.run.is_gone()
  }

  /// Aborts job `id`'s signal, and waits until JavaScript has.
  pub(super) async fn abort_job(&self, id: &str, abort: Abort) -> Result<(), Gone> {
    let args = (id.to_string(), abort.code().to_string(), abort.message());
    self.abort.call(FnArgs::from(args), |_, _| ()).await
  }

  /// The first look waits for a turn of the JavaScript thread: `process()`
  /// (or `drain()`) has returned before any job is taken. False when the
  /// environment has gone.
  pub(super) async fn first_turn(&self) -> bool {
    let started = FnArgs::from(("started".to_string(), String::new()));
    self.notify.call(started, |_, _| ()).await != Err(Gone)
  }

  /// Hands a job to its handler on the JavaScript thread; what it returns
  /// is heard through the receiver.
  pub(super) fn hand(&self, shared: &Shared, job: &Job) -> Result<oneshot::Receiver<JobEnd>, Gone> {
    let (came_back, returned) = oneshot::channel();
    let order = shared.handed.fetch_add(1, Ordering::Relaxed);
    let call = HandedCall { order, returned };
    shared.calls.lock().insert(job.id.clone(), call);
    self.run.send(
      records::job(job),
      read_job_end,
      Some(Heard::Returned(came_back)),
    )
  }

  /// Counts a recorded outcome and queues its event; `None` for a job
  /// still processing.
  pub(super) fn tell(&self, shared: &Shared, job: &Job) -> Option<oneshot::Receiver<()>> {
    let event = shared.tally.lock().count(job.status)?;
    let args = FnArgs::from((event.as_str().to_string(), records::job(job)));
    self.notify.send(args, |_, _| (), None).ok()
  }
}

/// A job's end, read on the JavaScript thread.
fn read_job_end(js: Js<'_>, settled: Settled<'_>) -> JobEnd {
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
