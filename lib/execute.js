'use strict'

// executeWithFallback, top to bottom. The options are read once, into one
// object (`readOptions`, lib/plain-call.js), and handed to native code
// once: at the start (`startFallbackCall` checks them and keeps the call's
// plan in a `FallbackCall`, whose `failed(error, now)` needs no options),
// or, for a call that started plain, when it fails
// (`fallbackAfterFailure`). A success is stored under the cache key
// (`cacheResult`). The core decides; this file calls and shapes.

const native = require('./native')
const { attemptsOf, invoke, codedIfUnreadable } = require('./invoke')
const { succeeded, fellBack, failed, skippedUpFront, asError, MESSAGES } = require('./shapes')
const { runChain, benchIfThrottled, whenStored } = require('./chain')
const { primeIfStream, PrimedStream, passThrough, broadcast, replayed, learn, learntShape, cancelQuietly } = require('./streams')
const { channels, publish, messageOf, carrying } = require('./events')
const { warnOnce, warnUnavailable } = require('./warnings')
const { chainSettings, readOnce, plainlyRight } = require('./chain-options')
const { readOptions, plainlyPlain } = require('./plain-call')
const { classOf } = require('./classify')
const spans = require('./spans')
const guards = require('./guards')
const { checkHedge } = require('./hedge')

/** Spans (lib/spans.js) where `@opentelemetry/api` resolves; read once here, so a call without pays nothing. */
const tracing = spans.tracing

/** dedupe: each shared (prompt, modelId) call in flight: its result promise, and how many joined it. */
const inflight = new Map()
/**
 * dedupe: a shared call's streamed answer → `{ copy(), expect?(readers) }`:
 * a stream of its own for a joiner, and (for one read from the source
 * once for all) how many readers it will have.
 */
const copies = new WeakMap()

/**
 * A joiner's result: the shared result itself, or for a streamed answer
 * (passed through, replayed from the cache or a default) a copy with a
 * stream of its own: a stream can be read once.
 */
function joined(result) {
  const shared = result === undefined ? undefined : copies.get(result.data)
  if (shared === undefined) return result
  return { ...result, data: shared.copy(), metadata: result.metadata === undefined ? undefined : { ...result.metadata } }
}

/** `value` replayed as a stream of `shape`; a call others join can replay it again for each. */
function replayFor(call, shape, value) {
  const data = replayed(shape, value)
  if (call.shared) copies.set(data, { copy: () => replayed(shape, value) })
  return data
}

function dedupeKey(call) {
  return `${call.modelId.length}:${call.modelId}${call.prompt}`
}

/**
 * A success: cached under the cache key, and shaped. `answered` is set when
 * an alternative answered (the chain's outcome: its index and the
 * primary's error).
 */
function onSuccess(call, value, attempts, answered) {
  if (value instanceof PrimedStream) return streamed(call, value, attempts, answered)
  // `stream: true`: a model that answered with text still gives a stream.
  const data = call.stream === true && (typeof value === 'string' || value instanceof Uint8Array) ? replayFor(call, streamShape(call), value) : value
  const result = () => (answered === undefined ? succeeded(data, attempts) : byAlternative(call, data, attempts, answered))
  if (call.prompt === undefined) return result()
  return whenStored(cacheAnswer(call, value), result)
}

/** Stores an answer under the call's cache key; says why when it cannot. */
function cacheAnswer(call, value) {
  return whenStored(native.cacheResult(call.prompt, call.modelId, value, Date.now()), (notCached) => {
    if (notCached !== null) notCachedWarning(call, notCached)
  })
}

function notCachedWarning(call, reason) {
  const message = `the result of "${call.operationName}" was returned but not cached: ${reason}`
  warnOnce(call.operationName, 'not cached', message, 'FALLBACK_NOT_CACHED')
}

/**
 * An alternative's answer: a success, marked as the fallback it is, with
 * the class of the error that moved the call on (none when the models
 * before it were only benched).
 */
function byAlternative(call, data, attempts, answered) {
  const name = call.models[answered.index].name
  const { errorClass } = answered
  const result = fellBack(data, MESSAGES.alternative, 'alternative', undefined, false, attempts, false, undefined)
  result.metadata.alternative = name
  if (answered.benched.length > 0) result.metadata.benched = answered.benched
  if (errorClass !== undefined) result.metadata.errorClass = errorClass
  if (call.hedged) result.metadata.hedged = true
  guardedMetadata(call, result)
  publish(channels.fallback, () => {
    const message = carrying({ type: 'alternative', operationName: call.operationName, error: messageOf(answered.error), alternative: name }, answered.error)
    if (errorClass !== undefined) message.errorClass = errorClass
    return message
  })
  return result
}

/**
 * A streamed answer whose first chunk came: the caller reads it through;
 * it is cached once it completes, and a failure mid-stream is recorded
 * against the model that gave it (and benches it when it was throttled).
 */
function streamed(call, primed, attempts, answered) {
  const shape = { kind: primed.kind, bytes: !primed.first.done && primed.first.value instanceof Uint8Array }
  call.shape = shape
  learn(call.operationName, shape)
  const model = answered === undefined ? modelOf(call) : call.models[answered.index].name
  // The span of the attempt that gave the stream: it ends with the stream.
  const attempt = spans.streamingAttempt(call.trace)
  const ended = {
    completed(text, problem) {
      if (attempt !== undefined) spans.attemptEnded(attempt, false)
      if (call.prompt === undefined) return undefined
      if (text === undefined) return notCachedWarning(call, problem)
      return cacheAnswer(call, text)
    },
    failed(error) {
      // A cooldown it starts is an event of the attempt's span, open until this returns.
      if (attempt === undefined) streamFailed(call, model, error)
      else {
        try {
          spans.within(attempt, streamFailed, call, model, error)
        } finally {
          spans.attemptEnded(attempt, true, error)
        }
      }
    },
    /** The consumer cancelled the stream, or the caller's signal aborted it (lib/streams.js). */
    cancelled() {
      if (attempt !== undefined) spans.attemptEnded(attempt, false, undefined, { 'fallback.stream.cancelled': true })
    },
  }
  let data
  if (call.shared) {
    // Callers that join this call (`dedupe`) each read the answer from its first chunk.
    const cast = broadcast(primed, ended)
    data = passThrough(cast.reader())
    copies.set(data, { copy: () => passThrough(cast.reader()), expect: cast.expect })
  } else {
    data = passThrough(primed, ended, call.signal)
  }
  return answered === undefined ? succeeded(data, attempts) : byAlternative(call, data, attempts, answered)
}

/** Records a failure of `model` mid-stream, and benches it when it was throttled. */
function streamFailed(call, model, error) {
  try {
    native.recordSkip(model, 'stream', error)
  } catch (thrown) {
    warnOnce(call.operationName, 'stream failure', `a failure of "${model}" mid-stream was not recorded: ${messageOf(thrown)}`, 'FALLBACK_STEP_UNAVAILABLE')
  }
  if (call.chain !== undefined) benchIfThrottled(call, model, error, call.chain)
}

/** The primary's model name: the call's `service`, else its `operationName`. */
function modelOf(call) {
  return call.service ?? call.operationName
}

/**
 * The shape a fallback answer of this call is replayed in: the stream its
 * operation returned, else what its operation returned before, else a
 * ReadableStream when the caller said `stream: true`.
 */
function streamShape(call) {
  if (call.stream === false) return undefined
  return call.shape ?? learntShape(call.operationName) ?? (call.stream ? { kind: 'web', bytes: false } : undefined)
}

/** `operation`, primed when it returns a stream: its first chunk is part of the attempt. */
function streamAware(operation, call) {
  return (...args) => invoke(operation, ...args).then((value) => primeIfStream(value, call.streamSeen, args[0]))
}

/** The call's operation returned a stream of `kind` (its chunks' type is learnt at the first). */
function knownStream(call, kind) {
  const before = learntShape(call.operationName)
  call.shape = { kind, bytes: before !== undefined && before.bytes }
}

/**
 * The fallbacks after a failure; `errorClass` is the error's class when
 * the chain has it already (lib/classify.js).
 */
function onFailure(call, error, attempts, benched, errorClass) {
  // A call native code kept (its FallbackCall) has its plan there; one that started plain hands its options over now.
  const decided = call.native === null ? native.fallbackAfterFailure(call.read, error, Date.now()) : call.native.failed(error, Date.now())
  return whenStored(decided, (json) => fallbackResult(call, error, attempts, JSON.parse(json), benched, errorClass ?? classOf(error)))
}

/** The result of a failed call, from the core's outcome; `errorClass` goes on its metadata. */
function fallbackResult(call, error, attempts, outcome, benched, errorClass) {
  const { unavailable } = outcome
  if (unavailable !== undefined) warnUnavailable(call.operationName, unavailable)
  if (outcome.fallbackType === undefined) {
    const result = failed(asError(error, outcome.isError, outcome.message), outcome.message, attempts, unavailable)
    if (benched !== undefined && benched.length > 0) result.metadata.benched = benched
    result.metadata.errorClass = errorClass
    return guardedMetadata(call, result)
  }
  const type = outcome.fallbackType
  let data = type === 'default' ? call.defaultValue : outcome.data
  if (type === 'cache' || type === 'default') {
    const shape = streamShape(call)
    if (shape !== undefined) data = replayFor(call, shape, data)
  }
  publish(channels.fallback, () =>
    carrying(
      { type, operationName: call.operationName, error: messageOf(error), jobId: outcome.jobId, stale: outcome.stale === true ? true : undefined, errorClass },
      error,
    ),
  )
  const result = fellBack(data, outcome.message, type, outcome.jobId, outcome.stale, attempts, false, unavailable)
  if (benched !== undefined && benched.length > 0) result.metadata.benched = benched
  result.metadata.errorClass = errorClass
  return guardedMetadata(call, result)
}

/**
 * One model's attempts in the Rust loop (retry, timeoutMs, signal):
 * resolves `{ ok, value, error, attempts, cancelled }`. `alternative` names
 * the alternative, `undefined` for the primary.
 */
function attemptModel(call, start, operation, alternative, retryIf) {
  // A stream whose first chunk came as the caller aborted is nobody's: it is
  // cancelled (and its span ended), whether it came just before or after.
  let abandoned = false
  let answer
  const aware = streamAware(operation, call)
  const primed = (...args) =>
    aware(...args).then((value) => {
      if (value instanceof PrimedStream) {
        if (abandoned) abandonStream(call, value)
        else answer = value
      }
      return value
    })
  const attempts = attemptsOf(call.trace === undefined ? primed : spans.attempting(call.trace, alternative ?? modelOf(call), primed), {
    retryIf,
    withSignal: call.withSignal,
    operationName: call.operationName,
    alternative,
  })
  call.abortAttempts = attempts.abortAll
  return start.runAttempts(attempts.attempt(1), attempts.attempt, attempts.abort).then(({ ok, attempts: count, cancelled }) => {
    // An abort the loop heard too late to act on (it came with the
    // attempt's end, or after the loop decided) still ends the call here:
    // the call has rejected, so nothing is recorded and no fallback runs.
    if (cancelled || (call.signal !== undefined && call.signal.aborted)) {
      abandoned = true
      if (answer !== undefined) abandonStream(call, answer)
      return { cancelled: true }
    }
    const last = attempts.outcome(count)
    return ok || 'value' in last ? { ok: true, value: last.value, attempts: count } : { ok: false, error: last.error, attempts: count }
  })
}

/** A primed stream of a call the caller abandoned: cancelled, and its attempt's span ended. */
function abandonStream(call, primed) {
  cancelQuietly(primed.cancel, call.signal === undefined ? undefined : call.signal.reason)
  const attempt = spans.streamingAttempt(call.trace)
  if (attempt !== undefined) spans.attemptEnded(attempt, false, undefined, { 'fallback.stream.cancelled': true })
}

/** The primary's attempts, then the fallbacks. */
function withAttempts(call, start, operation, retryIf, signal) {
  const outcome = attemptModel(call, start, operation, undefined, retryIf).then((ended) => {
    // Cancelled by the caller's signal: the call has rejected already, and
    // no fallback runs.
    if (ended.cancelled) return undefined
    return ended.ok ? onSuccess(call, ended.value, ended.attempts) : onFailure(call, ended.error, ended.attempts)
  })
  return cancellable(call, start, signal, outcome)
}

/** The chain of models (README, "Alternatives"), then the fallbacks. */
function chained(call, start, retryIf, signal) {
  const attempting = start !== null && start.attempting
  let runModel
  if (attempting) {
    runModel = (model, index) => {
      if (index > 0) start.rearm()
      return attemptModel(call, start, model.operation, index === 0 ? undefined : model.name, retryIf)
    }
  } else if (call.trace !== undefined) {
    // Each model called once, as runChain would, with its attempt's span.
    runModel = (model) =>
      spans.attempting(call.trace, model.name, streamAware(model.operation, call))().then(
        (value) => ({ ok: true, value }),
        (error) => ({ ok: false, error }),
      )
  }
  const outcome = runChain(call, call.models, call.chain, runModel, (value) => primeIfStream(value, call.streamSeen), (ended) => {
    if (ended.cancelled) return undefined
    const attempts = attempting ? ended.attempts : undefined
    const result = ended.ok
      ? onSuccess(call, ended.value, attempts, ended.index === 0 ? undefined : ended)
      : onFailure(call, ended.error, attempts, ended.benched, ended.errorClass)
    // The models benched by this call are stored before it resolves, so the next call sees them.
    return ended.stored === undefined ? result : Promise.all([result, ended.stored]).then(([value]) => value)
  })
  return cancellable(call, start, signal, outcome)
}

/**
 * `outcome`, or the signal's reason as soon as the caller aborts: the
 * attempt in progress is aborted and nothing further runs.
 */
function cancellable(call, start, signal, outcome) {
  if (signal === undefined) return outcome
  let onAbort
  const cancelled = new Promise((_, reject) => {
    onAbort = () => {
      start.cancel()
      if (call.abortAttempts !== undefined) call.abortAttempts(signal.reason)
      reject(signal.reason)
    }
  })
  signal.addEventListener('abort', onAbort, { once: true })
  const settled = Promise.race([outcome, cancelled])
  const removeListener = () => signal.removeEventListener('abort', onAbort)
  settled.then(removeListener, removeListener)
  return settled
}

/**
 * The call's checked values, made once; they travel with the promise.
 * `start` is its FallbackCall (native code keeps its plan), or `null` for
 * a call that started plain (`read`, the options read once, goes to
 * native code if it fails).
 */
function checkedCall(read, start) {
  const call = {
    read,
    native: start,
    operationName: read.operationName,
    prompt: read.prompt,
    modelId: read.modelId,
    defaultValue: read.defaultValue,
    service: read.service,
    // Streams (lib/streams.js): `stream` as given; `shape` once the operation returned one.
    stream: read.stream,
    shape: undefined,
    // The chain (lib/chain.js), when `alternatives` are given.
    chain: undefined,
    models: undefined,
    alternativesOn: read.alternativesOn,
    signal: read.signal,
    withSignal: read.timeoutMs !== undefined || read.signal !== undefined,
    abortAttempts: undefined,
    // Hosts a `dedupe` call that others join.
    shared: false,
    // Told the kind of a stream the operation returned.
    streamSeen: undefined,
    // Its spans (lib/spans.js), when it is traced.
    trace: undefined,
    // Shared guards (lib/guards.js): each model's, and what they did.
    guards: read.guards,
    usage: read.usage ?? undefined,
    limited: undefined,
    opened: undefined,
    overBudget: undefined,
    // `hedge` (lib/hedge.js), checked; whether a hedge answered.
    hedge: read.hedge,
    hedged: false,
  }
  call.streamSeen = (kind) => knownStream(call, kind)
  return call
}

function executeWithFallback(operation, options) {
  if (options === null || typeof options !== 'object') {
    return invoke(native.startFallbackCall, operation, options)
  }
  let call
  let read
  try {
    read = readOptions(options)
  } catch (thrown) {
    // A getter that throws: bad arguments, so the promise rejects.
    return Promise.reject(codedIfUnreadable(thrown))
  }
  let start = null
  try {
    // Native code checks the options read once, handed over as the one object they are.
    if (!plainlyPlain(operation, options, read)) start = native.startFallbackCall(operation, options, read)
  } catch (thrown) {
    return Promise.reject(codedIfUnreadable(thrown))
  }
  let chain
  let alternatives
  if (read.alternatives !== undefined || read.alternativesOn !== undefined || read.cooldownMs !== undefined || read.maxCooldownMs !== undefined || read.stream !== undefined) {
    try {
      const models = read.alternatives === undefined ? undefined : readOnce(read.alternatives)
      // Left as given by readOnce (not an array of at most 64): not plainly right.
      alternatives = models === undefined || (models !== read.alternatives && plainlyRight(models)) ? models : null
      chain = chainSettings(read)
      // Anything off: native code says what, in the words of every other check.
      if (chain === undefined || alternatives === null) {
        chain = native.checkChain(models, read.alternativesOn, read.cooldownMs, read.maxCooldownMs, read.stream)
        alternatives = models
      }
    } catch (thrown) {
      return Promise.reject(codedIfUnreadable(thrown))
    }
  }
  if (read.hedge !== undefined) {
    try {
      read.hedge = checkHedge(read.hedge)
    } catch (thrown) {
      return Promise.reject(thrown)
    }
  }
  // Shared breakers, limits and budgets run the call as a chain (of one model, without alternatives).
  if (read.breaker !== undefined || read.limits !== undefined || read.budget !== undefined || read.usage !== undefined || guards.anyNamed() || guards.anyOwn(alternatives)) {
    try {
      read.guards = guardedModels(read, alternatives)
      if (read.guards !== undefined && alternatives === undefined) {
        alternatives = []
        chain ??= chainSettings(read) ?? native.checkChain(undefined, read.alternativesOn, read.cooldownMs, read.maxCooldownMs, read.stream)
      }
    } catch (thrown) {
      return Promise.reject(codedIfUnreadable(thrown))
    }
  }
  // A plain call that carries a queue payload gets its JSON text back, taken now.
  if (typeof start === 'string') {
    read.payloadText = start
    start = null
  }
  call = checkedCall(read, start)
  if (start === null) {
    if (tracing) {
      const run = alternatives === undefined ? () => plain(plainOperation(call, operation), call) : () => chainedCall(call, alternatives, chain, null, operation, undefined, read.signal)
      return traced(call, run)
    }
    if (alternatives !== undefined) return chainedCall(call, alternatives, chain, null, operation, undefined, read.signal)
    return plain(operation, call)
  }
  return tracing ? traced(call, () => started(call, start, operation, read, alternatives, chain)) : started(call, start, operation, read, alternatives, chain)
}

/**
 * Each model's guards (its breaker and limits, the call's budget), the
 * primary first; `undefined` when none has any. Throws for options that
 * are off.
 */
function guardedModels(read, alternatives) {
  const breaker = guards.checkBreaker(read.breaker, 'options.breaker')
  const limits = guards.checkLimits(read.limits, 'options.limits')
  const budget = guards.checkBudget(read.budget, 'options.budget')
  guards.checkUsage(read.usage)
  if (typeof read.operationName !== 'string') return undefined
  const models = [guards.guardsOf(read.service ?? read.operationName, breaker, limits, budget, read.operationName)]
  if (Array.isArray(alternatives)) {
    alternatives.forEach((model, i) => {
      const own = model !== null && typeof model === 'object' ? model : {}
      const path = `options.alternatives[${i}]`
      models.push(guards.guardsOf(own.name, guards.checkBreaker(own.breaker, `${path}.breaker`), guards.checkLimits(own.limits, `${path}.limits`), budget, read.operationName))
    })
  }
  return models.some((model) => model !== undefined) ? models : undefined
}

/** What the shared guards did to the call, on its result's metadata. */
function guardedMetadata(call, result) {
  if (call.limited !== undefined) result.metadata.limited = call.limited
  if (call.overBudget !== undefined) result.metadata.overBudget = call.overBudget.key
  return result
}

/**
 * A call native code checked and did not find plain: skipped up front,
 * or run (its attempts, its chain), or joined to the same call in flight.
 */
function started(call, start, operation, read, alternatives, chain) {
  if (start.skipNow) {
    publish(channels.fallback, () => ({
      type: 'skip',
      operationName: call.operationName,
      error: undefined,
      skippedWithoutCalling: true,
    }))
    return Promise.resolve(skippedUpFront())
  }
  if (read.signal !== undefined && read.signal.aborted) return Promise.reject(read.signal.reason)
  // Native code checked this copy (lib/plain-call.js, readRetry).
  const retryIf = read.retry === undefined ? undefined : read.retry.retryIf
  let run
  if (alternatives !== undefined) run = () => chainedCall(call, alternatives, chain, start, operation, retryIf, read.signal)
  else if (start.attempting) run = () => withAttempts(call, start, operation, retryIf, read.signal)
  else run = () => plain(plainOperation(call, operation), call)
  if (!start.shared) return run()
  const key = dedupeKey(call)
  const running = inflight.get(key)
  if (running !== undefined) {
    if (call.trace !== undefined) call.trace.joined = true
    running.joiners++
    return running.promise.then(joined)
  }
  call.shared = true
  const promise = run()
  const entry = { promise, joiners: 0 }
  inflight.set(key, entry)
  // The first reaction to the promise: no one joins after it, and every
  // joiner's copy is made in the reactions that follow.
  const done = (result) => {
    if (inflight.get(key) === entry) inflight.delete(key)
    const shared = result === undefined ? undefined : copies.get(result.data)
    if (shared !== undefined && shared.expect !== undefined) shared.expect(1 + entry.joiners)
  }
  promise.then(done, () => done(undefined))
  return promise
}

/** A call with `alternatives`: its models, the primary first, then the chain. */
function chainedCall(call, alternatives, chain, start, operation, retryIf, signal) {
  call.chain = chain
  call.models = [{ name: call.service ?? call.operationName, operation }, ...alternatives]
  return chained(call, start, retryIf, signal)
}

/**
 * `run()` (the call, which returns its promise) under the call's span,
 * which ends when the promise settles (lib/spans.js).
 */
function traced(call, run) {
  const trace = spans.callStarted(call.operationName)
  if (trace === undefined) return run()
  call.trace = trace
  let promise
  try {
    promise = spans.within(trace, run)
  } catch (thrown) {
    spans.callRejected(trace, thrown)
    throw thrown
  }
  promise.then(
    (result) => spans.callEnded(trace, result),
    (error) => spans.callRejected(trace, error),
  )
  return promise
}

/** The operation `plain` calls: with its attempt's span when the call is traced. */
function plainOperation(call, operation) {
  return call.trace === undefined ? operation : spans.attempting(call.trace, modelOf(call), streamAware(operation, call))
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
    (result) => afterResult(call, result),
    (error) => onFailure(call, error),
  )
}

/** A plain call's result: a success, or a stream to prime first. */
function afterResult(call, result) {
  const primed = primeIfStream(result, call.streamSeen)
  if (primed === result) return onSuccess(call, result)
  return primed.then(
    (stream) => onSuccess(call, stream),
    (error) => onFailure(call, error),
  )
}

module.exports = { executeWithFallback }
