'use strict'

// backgroundJobQueue.process and backgroundJobQueue.drain: the worker is a
// Rust task (src/binding/worker.rs) that leases jobs, renews leases, times
// jobs out and records outcomes. It calls the three functions made here
// through threadsafe functions: `run` starts a job's handler, `abort` aborts
// its signal, `notify` reports what was recorded to the event callbacks.

const { invoke, codedError } = require('./invoke')
const { job: toJob } = require('./shapes')
const { channels, publish, messageOf, carrying } = require('./events')

/** Publishes a recorded outcome of `job` on the job channel. */
function published(type, job, error) {
  publish(channels.job, () =>
    carrying({ type, operationName: job.operation, jobId: job.id, jobType: job.type, retryCount: job.retryCount, error: messageOf(error) }, error),
  )
}

/**
 * Calls an event callback. Its throw (or an async callback's rejection)
 * must not stop the worker, and must not vanish either: it is reported as a
 * warning with the code FALLBACK_WORKER_CALLBACK_FAILED.
 */
function report(name, callback, ...args) {
  if (typeof callback !== 'function') return
  const warn = (error) => {
    const message = error instanceof Error ? error.message : String(error)
    process.emitWarning(`fallback-mechanisms: the worker's ${name} callback failed: ${message}`, {
      code: 'FALLBACK_WORKER_CALLBACK_FAILED',
      detail: error instanceof Error ? error.stack : undefined,
    })
  }
  try {
    const returned = callback(...args)
    if (returned !== null && typeof returned === 'object' && typeof returned.then === 'function') {
      Promise.resolve(returned).then(undefined, warn)
    }
  } catch (error) {
    warn(error)
  }
}

/**
 * The three functions the native worker calls: `run` starts a job's
 * handler, `abort` aborts its signal, `notify` reports what was recorded to
 * the event callbacks of `options` (read by `listen`, once the native side
 * has checked them).
 */
function workerCalls(handlers) {
  const controllers = new Map()
  const errors = new Map()
  let onCompleted, onFailed, onDeadLetter

  function run(jobJson) {
    const job = toJob(JSON.parse(jobJson))
    const controller = new AbortController()
    controllers.set(job.id, controller)
    const handler = typeof handlers === 'function' ? handlers : handlers[job.type]
    const running =
      typeof handler === 'function'
        ? invoke(handler, job, controller.signal)
        : Promise.reject(new Error(`No handler for jobs of type ${job.type}`))
    return running.then(
      () => {
        controllers.delete(job.id)
      },
      (error) => {
        controllers.delete(job.id)
        if (!errors.has(job.id)) errors.set(job.id, error)
        return { error }
      },
    )
  }

  function abort(id, code, message) {
    const error = codedError(message, code)
    errors.set(id, error)
    const controller = controllers.get(id)
    controllers.delete(id)
    if (controller) controller.abort(error)
    if (code === 'WORKER_STOPPED') errors.delete(id)
  }

  function notify(event, jobJson) {
    if (event === 'started') return
    const job = toJob(JSON.parse(jobJson))
    let error = errors.get(job.id)
    errors.delete(job.id)
    if (event === 'completed') {
      published('completed', job, undefined)
      report('onCompleted', onCompleted, job)
      return
    }
    // A handler that failed its job itself and then returned: the error is what it recorded.
    if (error === undefined) error = new Error(job.lastError)
    published('failed', job, error)
    report('onFailed', onFailed, job, error)
    if (event === 'dead') {
      published('dead-lettered', job, error)
      report('onDeadLetter', onDeadLetter, job)
    }
  }

  function listen(options) {
    if (options !== undefined) ({ onCompleted, onFailed, onDeadLetter } = options)
  }

  return { run, abort, notify, listen }
}

function startWorker(nativeQueue, handlers, options) {
  const calls = workerCalls(handlers)
  const worker = nativeQueue.process(handlers, options, calls.run, calls.abort, calls.notify)
  calls.listen(options)
  let stopping = null
  return {
    get running() {
      return worker.running
    },
    // Every call gets the first call's promise (and its grace).
    stop(stopOptions) {
      if (stopping === null) stopping = worker.stop(graceOf(stopOptions))
      return stopping
    },
  }
}

/**
 * The grace a `stop()` asked for. A stop always stops (it is how an app
 * shuts down): a grace that is not a number of ms from 0 up, or options
 * that cannot even be read (a revoked Proxy, a getter that throws), is no
 * grace, instead of an error that would leave the worker running.
 */
function graceOf(stopOptions) {
  try {
    const graceMs = stopOptions?.graceMs
    return typeof graceMs === 'number' && graceMs >= 0 ? graceMs : 0
  } catch {
    return 0
  }
}

/**
 * backgroundJobQueue.drain: the native worker with a budget, which ends by
 * itself (src/binding/worker.rs, `drain`). Bad arguments throw from the
 * native call, before anything starts; the caller's `async` turns that into
 * a rejection.
 */
async function drainQueue(nativeQueue, handlers, options) {
  const calls = workerCalls(handlers)
  const draining = nativeQueue.drain(handlers, options, calls.run, calls.abort, calls.notify)
  calls.listen(options)
  const report = await draining
  return {
    processed: report.processed,
    completed: report.completed,
    failed: report.failed,
    deadLettered: report.deadLettered,
    remaining: report.remaining ?? null,
    stoppedBy: report.stoppedBy,
    elapsedMs: report.elapsedMs,
    error: report.errorCode == null ? null : { code: report.errorCode, message: report.errorMessage },
  }
}

module.exports = { startWorker, drainQueue }
