'use strict'

// executeWithFallback, top to bottom. Native code checks the options once
// (`startFallbackCall`), stores a success under the cache key
// (`cacheResult`) and picks the fallback after a failure
// (`fallbackAfterFailure`); the core decides, this file calls and shapes.

const native = require('./native')
const { attemptsOf, invoke, codedIfUnreadable } = require('./invoke')
const { succeeded, fellBack, failed, skippedUpFront, asError } = require('./shapes')

/** dedupe: the result promise of each shared (prompt, modelId) call in flight. */
const inflight = new Map()

function dedupeKey(call) {
  return `${call.modelId.length}:${call.modelId}${call.prompt}`
}

/**
 * `then(value)` now, or once `pending` resolves: native code answers a
 * store call at once, or with a promise when the stores are on a Redis
 * server (the network wait happens on tokio, not on this thread).
 */
function whenStored(pending, then) {
  return pending instanceof Promise ? pending.then(then) : then(pending)
}

function onSuccess(call, value, attempts) {
  if (call.prompt === undefined) return succeeded(value, attempts)
  return whenStored(native.cacheResult(call.prompt, call.modelId, value, Date.now()), (notCached) => {
    if (notCached !== null) {
      const message = `the result of "${call.operationName}" was returned but not cached: ${notCached}`
      warnOnce(call.operationName, 'not cached', message, 'FALLBACK_NOT_CACHED')
    }
    return succeeded(value, attempts)
  })
}

/** operationName → the kinds of problem already warned about. */
const warned = new Map()

/** A coded warning, once per operation and kind of problem. */
function warnOnce(operationName, kind, message, code) {
  let kinds = warned.get(operationName)
  if (kinds === undefined) {
    // Bounded: a process with endless operation names warns afresh rather than growing.
    if (warned.size >= 10_000) warned.clear()
    kinds = new Set()
    warned.set(operationName, kinds)
  }
  if (kinds.has(kind)) return
  kinds.add(kind)
  process.emitWarning(`fallback-mechanisms: ${message}`, { code })
}

/**
 * A step passed over because of this call's data or a store's state: said
 * once per operation and step with a coded warning, and in the result's
 * `metadata.unavailable`.
 */
function warnUnavailable(operationName, unavailable) {
  for (const { step, reason } of unavailable) {
    warnOnce(operationName, step, `the ${step} step of "${operationName}" was unavailable: ${reason}`, 'FALLBACK_STEP_UNAVAILABLE')
  }
}

function onFailure(call, error, attempts) {
  const { queue } = call
  return whenStored(
    native.fallbackAfterFailure(
      error,
      call.operationName,
      call.userId,
      call.prompt,
      call.modelId,
      call.allowSkip,
      queue && queue.type,
      queue && queue.priority,
      queue && queue.payload,
      queue && queue.problem,
      call.hasDefault,
      call.service,
      Date.now(),
    ),
    (json) => fallbackResult(call, error, attempts, JSON.parse(json)),
  )
}

/** The result of a failed call, from the core's outcome. */
function fallbackResult(call, error, attempts, outcome) {
  const { unavailable } = outcome
  if (unavailable !== undefined) warnUnavailable(call.operationName, unavailable)
  if (outcome.fallbackType === undefined) {
    return failed(asError(error, outcome.isError, outcome.message), outcome.message, attempts, unavailable)
  }
  const data = outcome.fallbackType === 'default' ? call.defaultValue : outcome.data
  return fellBack(data, outcome.message, outcome.fallbackType, outcome.jobId, outcome.stale, attempts, false, unavailable)
}

/** Attempts driven by the Rust loop: retry, timeoutMs, signal. */
function withAttempts(call, start, attempts, signal) {
  if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason)
  const outcome = start.runAttempts(attempts.attempt(1), attempts.attempt, attempts.abort).then(({ ok, attempts: count, cancelled }) => {
    // Cancelled by the caller's signal: the call has rejected already, and
    // no fallback runs.
    if (cancelled) return undefined
    const last = attempts.outcome(count)
    return ok || 'value' in last ? onSuccess(call, last.value, count) : onFailure(call, last.error, count)
  })
  if (signal === undefined) return outcome
  let onAbort
  const cancelled = new Promise((_, reject) => {
    onAbort = () => {
      start.cancel()
      attempts.abortAll(signal.reason)
      reject(signal.reason)
    }
  })
  signal.addEventListener('abort', onAbort, { once: true })
  const settled = Promise.race([outcome, cancelled])
  const removeListener = () => signal.removeEventListener('abort', onAbort)
  settled.then(removeListener, removeListener)
  return settled
}

/** The call's checked values, made once; they travel with the promise. */
function checkedCall(read, payload, problem) {
  return {
    operationName: read.operationName,
    userId: read.userId,
    prompt: read.prompt,
    modelId: read.modelId,
    allowSkip: read.allowSkip === true,
    queue: read.queueOnFailure === undefined ? undefined : { type: read.queueType, priority: read.priority, payload, problem },
    defaultValue: read.defaultValue,
    hasDefault: read.defaultValue !== undefined,
    service: read.service,
  }
}

function executeWithFallback(operation, options) {
  if (options === null || typeof options !== 'object') {
    return invoke(native.startFallbackCall, operation, options)
  }
  let call
  let read
  try {
    const cacheKey = options.cacheKey
    const queueOnFailure = options.queueOnFailure
    read = {
      operationName: options.operationName,
      userId: options.userId,
      cacheKey,
      prompt: cacheKey == null ? undefined : cacheKey.prompt,
      modelId: cacheKey == null ? undefined : cacheKey.modelId,
      allowSkip: options.allowSkip,
      queueOnFailure,
      queueType: queueOnFailure == null ? undefined : queueOnFailure.type,
      payload: queueOnFailure == null ? undefined : queueOnFailure.payload,
      priority: queueOnFailure == null ? undefined : queueOnFailure.priority,
      defaultValue: options.defaultValue,
      service: options.service,
      skipThreshold: options.skipThreshold,
      retry: options.retry,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      dedupe: options.dedupe,
    }
  } catch (thrown) {
    // A getter that throws: bad arguments, so the promise rejects.
    return Promise.reject(codedIfUnreadable(thrown))
  }
  let start
  try {
    start = native.startFallbackCall(
      operation, options, read.operationName, read.userId, read.cacheKey, read.prompt, read.modelId,
      read.allowSkip, read.queueOnFailure, read.queueType, read.payload, read.priority, read.service,
      read.skipThreshold, read.retry, read.timeoutMs, read.signal, read.dedupe,
    )
  } catch (thrown) {
    return Promise.reject(codedIfUnreadable(thrown))
  }
  // A plain call gets null, or its queue payload's JSON text.
  const payloadOnly = typeof start === 'string'
  if (payloadOnly || start === null) {
    call = checkedCall(read, payloadOnly ? start : undefined, undefined)
    return plain(operation, call)
  }
  call = checkedCall(read, start.payload === null ? undefined : start.payload, start.payloadProblem === null ? undefined : start.payloadProblem)
  if (start.skipNow) return Promise.resolve(skippedUpFront())
  let attempts
  if (start.attempting) {
    try {
      const retryIf = read.retry == null ? undefined : read.retry.retryIf
      attempts = attemptsOf(operation, { retryIf, withSignal: read.timeoutMs !== undefined || read.signal !== undefined })
    } catch (thrown) {
      return Promise.reject(codedIfUnreadable(thrown))
    }
  }
  const run = () => (attempts === undefined ? plain(operation, call) : withAttempts(call, start, attempts, read.signal))
  if (!start.shared) return run()
  const key = dedupeKey(call)
  const running = inflight.get(key)
  if (running !== undefined) return running
  const promise = run()
  inflight.set(key, promise)
  const done = () => {
    if (inflight.get(key) === promise) inflight.delete(key)
  }
  promise.then(done, done)
  return promise
}

/** One attempt on this thread: no retry, no timeout, no signal. */
function plain(operation, call) {
  let value
  try {
    value = operation()
  } catch (thrown) {
    return invoke(onFailure, call, thrown)
  }
  return Promise.resolve(value).then(
    (result) => onSuccess(call, result),
    (error) => onFailure(call, error),
  )
}

module.exports = { executeWithFallback }
