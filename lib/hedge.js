'use strict'

// Hedging (README, "Hedging"): when a model has not answered (or streamed
// its first chunk) within `hedge.afterMs`, the next alternative starts too;
// the first to answer wins and the other is cancelled through its signal.
// `afterMs: 'p95'` waits for the model's 95th percentile of its recent
// answer times, as this process saw them; at most `maxPerMinute` extra
// calls start in any minute (per process).

const { PrimedStream, cancelQuietly } = require('./streams')

/** Answer times kept per model, the newest last. */
const SAMPLES = 100
/** Fewer samples than this: no p95 yet, so no hedge. */
const MIN_SAMPLES = 20
/** Models whose answer times are kept, at most (the oldest seen goes first). */
const MAX_MODELS = 1_000
const DEFAULT_MAX_PER_MINUTE = 60

const times = new Map()
/** When each extra call of the last minute started. */
let hedgesStarted = []

function received(value) {
  if (value === null) return 'null'
  return typeof value === 'object' ? 'an instance of Object' : `type ${typeof value} (${String(value)})`
}

function invalid(Kind, code, path, expected, value) {
  const error = new Kind(
    Kind === RangeError
      ? `The value of "${path}" is out of range. It must be ${expected}. Received ${String(value)}`
      : `The "${path}" property must be ${expected}. Received ${received(value)}`,
  )
  error.code = code
  return error
}

/** `hedge: { afterMs: number | 'p95', maxPerMinute? }`, checked; `undefined` when not given. */
function checkHedge(value) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(TypeError, 'ERR_INVALID_ARG_TYPE', 'options.hedge', 'of type object', value)
  const { afterMs, maxPerMinute } = value
  if (afterMs !== 'p95') {
    if (typeof afterMs !== 'number') throw invalid(TypeError, 'ERR_INVALID_ARG_TYPE', 'options.hedge.afterMs', "a number or 'p95'", afterMs)
    if (!Number.isSafeInteger(afterMs) || afterMs < 0) throw invalid(RangeError, 'ERR_OUT_OF_RANGE', 'options.hedge.afterMs', 'an integer >= 0', afterMs)
  }
  if (maxPerMinute !== undefined) {
    if (typeof maxPerMinute !== 'number') throw invalid(TypeError, 'ERR_INVALID_ARG_TYPE', 'options.hedge.maxPerMinute', 'of type number', maxPerMinute)
    if (!Number.isSafeInteger(maxPerMinute) || maxPerMinute < 0) throw invalid(RangeError, 'ERR_OUT_OF_RANGE', 'options.hedge.maxPerMinute', 'an integer >= 0', maxPerMinute)
  }
  return { afterMs, maxPerMinute: maxPerMinute ?? DEFAULT_MAX_PER_MINUTE }
}

/** Notes how long `name` took to answer. */
function observe(name, ms) {
  let kept = times.get(name)
  if (kept === undefined) {
    if (times.size >= MAX_MODELS) times.delete(times.keys().next().value)
    times.set(name, (kept = []))
  }
  kept.push(ms)
  if (kept.length > SAMPLES) kept.shift()
}

/** How long to wait for `name` before hedging; `undefined`: do not hedge. */
function waitFor(hedge, name) {
  if (hedge.afterMs !== 'p95') return hedge.afterMs
  const kept = times.get(name)
  if (kept === undefined || kept.length < MIN_SAMPLES) return undefined
  const sorted = [...kept].sort((a, b) => a - b)
  return sorted[Math.ceil(sorted.length * 0.95) - 1]
}

/** Takes one of the minute's extra calls, if one is left. */
function mayHedge(hedge, now = Date.now()) {
  hedgesStarted = hedgesStarted.filter((at) => at > now - 60_000)
  if (hedgesStarted.length >= hedge.maxPerMinute) return false
  hedgesStarted.push(now)
  return true
}

/**
 * Calls `operation` with a signal of its own: `{ promise, abort(reason) }`,
 * `promise` resolving `{ ok, value | error }` (a stream primed to its first
 * chunk). A stream that comes after its call was abandoned is cancelled.
 */
function launch(operation, prime) {
  const controller = new AbortController()
  const promise = (async () => {
    try {
      let value = await operation(controller.signal)
      const primed = prime(value)
      if (primed !== value) value = await primed
      if (controller.signal.aborted && value instanceof PrimedStream) cancelQuietly(value.cancel, controller.signal.reason)
      return { ok: true, value }
    } catch (error) {
      return { ok: false, error }
    }
  })()
  return { promise, abort: (reason) => controller.abort(reason) }
}

const HEDGE_NOW = Symbol('hedge now')

function abandoned() {
  const reason = new Error('Another model answered first (hedge)')
  reason.name = 'AbortError'
  reason.code = 'HEDGE_LOST'
  return reason
}

/**
 * Model `first` (`{ operation, name }`), hedged with `second` once it has
 * not answered within `afterMs`: resolves `{ first: outcome | undefined
 * (abandoned), second: outcome | undefined (not started or abandoned),
 * winner: 'first' | 'second' | undefined }`. `started()` is told when the
 * hedge starts.
 */
async function race(first, second, afterMs, hedge, prime, started) {
  const begun = Date.now()
  const one = launch(first.operation, prime)
  let timer
  const due = new Promise((resolve) => (timer = setTimeout(resolve, afterMs, HEDGE_NOW)))
  const early = await Promise.race([one.promise, due])
  if (early !== HEDGE_NOW) {
    clearTimeout(timer)
    if (early.ok) observe(first.name, Date.now() - begun)
    return { first: early, second: undefined, winner: early.ok ? 'first' : undefined }
  }
  if (!mayHedge(hedge)) {
    const outcome = await one.promise
    if (outcome.ok) observe(first.name, Date.now() - begun)
    return { first: outcome, second: undefined, winner: outcome.ok ? 'first' : undefined }
  }
  started()
  const hedgeBegun = Date.now()
  const two = launch(second.operation, prime)
  const tagged = [one.promise.then((outcome) => ['first', outcome]), two.promise.then((outcome) => ['second', outcome])]
  const [which, outcome] = await Promise.race(tagged)
  const other = which === 'first' ? two : one
  if (outcome.ok) {
    other.abort(abandoned())
    observe(which === 'first' ? first.name : second.name, Date.now() - (which === 'first' ? begun : hedgeBegun))
    return { first: which === 'first' ? outcome : undefined, second: which === 'second' ? outcome : undefined, winner: which }
  }
  const [, otherOutcome] = await (which === 'first' ? tagged[1] : tagged[0])
  const outcomes = which === 'first' ? { first: outcome, second: otherOutcome } : { first: otherOutcome, second: outcome }
  const winner = otherOutcome.ok ? (which === 'first' ? 'second' : 'first') : undefined
  return { ...outcomes, winner }
}

module.exports = { checkHedge, waitFor, race, observe }
