//! `BackgroundJobQueue`: the JavaScript class over the core job queue.

use napi::bindgen_prelude::{FnArgs, Function, PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::core::clock::MAX_DATE_MS;
use crate::core::queue::{
  JobPriority, JobStatus, JobType, NewJob, QueueConfig, DEFAULT_MAX_RETRIES,
};
use crate::core::singletons::{global, shared, SharedQueue};
use crate::core::storage::{open_queue, JobFilter};

use super::args;
use super::boundary::boundary;
use super::config::{queue_config, StorageChoice};
use super::errors::{Fault, JsResult};
use super::json;
use super::names::Prop;
use super::numbers;
use super::raw::{Js, Kind, Raw};
use super::records;
use super::worker::{DrainReport, JobWorker, WorkerFns};

/// A priority queue of background jobs with retries (by default 1, 5, 15,
/// then 30 minutes apart: `backoffMs`), leases for jobs in processing, and a size bound that
/// never drops a pending or processing job.
#[napi(js_name = "NativeJobQueue")]
pub struct JsBackgroundJobQueue {
  inner: SharedQueue,
}

pub fn job_type(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<JobType> {
  args::one_of(js, value, name, JobType::ALL, |t| t.as_str())
}

/// A priority, `'medium'` when undefined.
pub fn priority(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<JobPriority> {
  match js.kind(value) {
    Kind::Undefined => Ok(JobPriority::Medium),
    _ => args::one_of(js, value, name, JobPriority::ALL, |p| p.as_str()),
  }
}

pub fn max_retries(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<u32> {
  Ok(
    args::optional_integer(js, value, name, 0, u32::MAX as u64)?
      .map_or(DEFAULT_MAX_RETRIES, |n| n as u32),
  )
}

fn optional_date(js: Js<'_>, value: Raw<'_>, name: &str) -> JsResult<Option<u64>> {
  match js.kind(value) {
    Kind::Undefined => Ok(None),
    Kind::Object if js.is_date(value) => {
      let ms = js.read_date(value);
      if !ms.is_finite() {
        return Err(args::range_error(js, name, "a valid Date", value));
      }
      Ok(Some(ms.clamp(0.0, MAX_DATE_MS as f64) as u64))
    }
    _ => Err(args::type_error(js, name, "an instance of Date", value)),
  }
}

/// Reads the job given to `enqueue`. Keys a `QueuedJob` carries beyond
/// these (`id`, `status`, ...) are ignored, so a dequeued job can be
/// enqueued again as it is.
fn new_job(js: Js<'_>, job: Raw<'_>) -> JsResult<NewJob> {
  let job = args::object(js, job, "job")?;
  let field = |name| js.get_name(job, name);
  Ok(NewJob {
    job_type: job_type(js, field(Prop::Type)?, "job.type")?,
    operation: args::string(js, field(Prop::Operation)?, "job.operation")?,
    payload: json::stringify_payload(js, field(Prop::Payload)?, "job.payload")?,
    user_id: args::string(js, field(Prop::UserId)?, "job.userId")?,
    priority: priority(js, field(Prop::Priority)?, "job.priority")?,
    retry_count: args::optional_integer(
      js,
      field(Prop::RetryCount)?,
      "job.retryCount",
      0,
      u32::MAX as u64,
    )?
    .unwrap_or(0) as u32,
    max_retries: max_retries(js, field(Prop::MaxRetries)?, "job.maxRetries")?,
    next_retry_at: optional_date(js, field(Prop::NextRetryAt)?, "job.nextRetryAt")?,
  })
}

/// What `fail` records: a string as it is, an `Error`'s message, anything
/// else as `String(value)`, so a `catch (e) { fail(id, e.message) }` with a
/// non-Error throw still fails the job instead of leaving it stuck.
fn failure_text(js: Js<'_>, value: Raw<'_>) -> String {
  match js.kind(value) {
    Kind::Undefined | Kind::Null => "Unknown error".to_string(),
    _ => args::error_message(js, value),
  }
}

#[napi]
impl JsBackgroundJobQueue {
  /// An isolated queue with its own bounds (defaults: 10,000 jobs, 256 MiB
  /// held, 5 min lease, 1 MiB payloads).
  #[napi(constructor)]
  pub fn new(env: &Env, options: Raw<'_>) -> napi::Result<Self> {
    boundary(env, |js| {
      let mut storage = StorageChoice::default();
      let config = queue_config(
        js,
        options,
        "options",
        QueueConfig::default(),
        Some(&mut storage),
      )?;
      let mut store = open_queue(storage.backend(), config.clone())?;
      // Bounds given with a file become the file's; without any, the file
      // keeps the ones it has (opening evicts nothing).
      if storage.bounds_given && storage.is_shared() {
        store.set_config(config, js.now_ms())?;
      }
      Ok(Self {
        inner: shared(store),
      })
    })
  }

  /// Adds a job; returns its id (`job_<ms>_<9 base-36 chars>`). Throws
  /// `QUEUE_FULL` when only live jobs fill the queue (in jobs or bytes).
  #[napi]
  pub fn enqueue(&self, env: &Env, job: Raw<'_>) -> napi::Result<String> {
    boundary(env, |js| {
      let job = new_job(js, job)?;
      let id = self
        .inner
        .lock()
        .enqueue(job, js.now_ms())
        .map_err(Fault::from)?;
      Ok(id.to_string())
    })
  }

  /// The ready pending job of highest priority, oldest first, now
  /// `processing` under a lease; `null` when none is ready.
  #[napi]
  pub fn dequeue(&self, env: &Env) -> napi::Result<Option<String>> {
    boundary(env, |js| {
      let job = self.inner.lock().dequeue(js.now_ms())?;
      Ok(job.as_ref().map(records::job))
    })
  }

  /// Marks the job completed; returns false for an unknown or finished job.
  #[napi]
  pub fn complete(&self, env: &Env, job_id: Raw<'_>) -> napi::Result<bool> {
    boundary(env, |js| {
      let id = args::string(js, job_id, "jobId")?;
      Ok(self.inner.lock().complete(&id, js.now_ms())?)
    })
  }

  /// Records a failed attempt: back to pending after a backoff, or failed
  /// for good at `maxRetries`. Returns false for an unknown or finished job.
  #[napi]
  pub fn fail(&self, env: &Env, job_id: Raw<'_>, error: Raw<'_>) -> napi::Result<bool> {
    boundary(env, |js| {
      let id = args::string(js, job_id, "jobId")?;
      let error = failure_text(js, error);
      Ok(self.inner.lock().fail(&id, &error, js.now_ms())?)
    })
  }

  /// Every job, in enqueue order; `options` (`{ limit, offset }`) takes
  /// one page.
  #[napi]
  pub fn get_all(&self, env: &Env, options: Raw<'_>) -> napi::Result<String> {
    boundary(env, |js| {
      let page = args::page(js, options, "options")?;
      let jobs = self.inner.lock().list(js.now_ms(), JobFilter::All, page)?;
      Ok(records::jobs(&jobs))
    })
  }

  /// The jobs in one status, in enqueue order; `options` takes one page.
  #[napi]
  pub fn get_by_status(
    &self,
    env: &Env,
    status: Raw<'_>,
    options: Raw<'_>,
  ) -> napi::Result<String> {
    boundary(env, |js| {
      let status = args::one_of(js, status, "status", JobStatus::ALL, |s| s.as_str())?;
      let page = args::page(js, options, "options")?;
      let jobs = self
        .inner
        .lock()
        .list(js.now_ms(), JobFilter::Status(status), page)?;
      Ok(records::jobs(&jobs))
    })
  }

  /// One user's jobs, in enqueue order; `options` takes one page.
  #[napi]
  pub fn get_by_user(&self, env: &Env, user_id: Raw<'_>, options: Raw<'_>) -> napi::Result<String> {
    boundary(env, |js| {
      let user_id = args::string(js, user_id, "userId")?;
      let page = args::page(js, options, "options")?;
      let jobs = self
        .inner
        .lock()
        .list(js.now_ms(), JobFilter::User(&user_id), page)?;
      Ok(records::jobs(&jobs))
    })
  }

  /// Dead letters back to work: the failed job `jobId`, or every failed job,
  /// goes back to `pending` with a fresh retry count. Returns how many.
  #[napi]
  pub fn retry_failed(&self, env: &Env, job_id: Raw<'_>) -> napi::Result<u32> {
    boundary(env, |js| {
      let id = args::optional_string(js, job_id, "jobId")?;
      Ok(self.inner.lock().retry_failed(id.as_deref(), js.now_ms())? as u32)
    })
  }

  /// Removes completed jobs (failed ones stay); returns how many went.
  #[napi]
  pub fn clear_completed(&self, env: &Env) -> napi::Result<u32> {
    boundary(env, |js| {
      Ok(self.inner.lock().clear_completed(js.now_ms())? as u32)
    })
  }

  /// Starts a worker over this queue: ready jobs go to `handlers` (one
  /// function, or one per job type) with an AbortSignal, within
  /// `concurrency` (and `perUserConcurrency`), polled every
  /// `pollIntervalMs`; a handler's success completes its job, a throw fails
  /// it (retried with backoff); leases are renewed while handlers run; a
  /// handler past `jobTimeoutMs` is aborted and its job failed. Returns a
  /// handle whose `stop({ graceMs })` takes no new jobs, waits for running
  /// ones up to `graceMs`, then returns the rest to pending.
  #[napi]
  pub fn process(
    &self,
    env: &Env,
    handlers: Raw<'_>,
    options: Raw<'_>,
    run: Function<String, Unknown<'static>>,
    abort: Function<FnArgs<(String, String, String)>, Unknown<'static>>,
    notify: Function<FnArgs<(String, String)>, Unknown<'static>>,
  ) -> napi::Result<JobWorker> {
    let fns = WorkerFns { run, abort, notify };
    super::worker::start(env, &self.inner, handlers, options, fns)
  }

  /// Processes the jobs due now, within `options.maxJobs` and
  /// `options.maxMs`, through `handlers` as `process` does, and resolves
  /// with what it did once the jobs it started are done.
  #[napi(ts_return_type = "Promise<DrainReport>")]
  pub fn drain<'env>(
    &self,
    env: &'env Env,
    handlers: Raw<'_>,
    options: Raw<'_>,
    run: Function<String, Unknown<'static>>,
    abort: Function<FnArgs<(String, String, String)>, Unknown<'static>>,
    notify: Function<FnArgs<(String, String)>, Unknown<'static>>,
  ) -> napi::Result<PromiseRaw<'env, DrainReport>> {
    let fns = WorkerFns { run, abort, notify };
    super::worker::drain(env, &self.inner, handlers, options, fns)
  }

  /// Job counts by status, into `numbers` (`numbers::queue_stats`).
  #[napi]
  pub fn get_stats(&self, env: &Env, numbers: Raw<'_>) -> napi::Result<()> {
    boundary(env, |js| {
      let stats = self.inner.lock().stats(js.now_ms())?;
      numbers::queue_stats(js, numbers, &stats)
    })
  }
}

/// The process-wide queue behind the exported `backgroundJobQueue`.
#[napi(js_name = "sharedBackgroundJobQueue")]
pub fn shared_background_job_queue() -> JsBackgroundJobQueue {
  JsBackgroundJobQueue {
    inner: global().queue.clone(),
  }
}
