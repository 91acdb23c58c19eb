'use strict'

// Circuit breakers, rate limits and budgets shared by every instance on the
// same store (README, "Resilience across instances"). The options are
// checked here; each model's entry and exit is one atomic update decided
// natively (src/core/shared) on the singletons' failure store: in memory
// for one process, in the SQLite file or on the Redis server for all.

const native = require('./native')
const { warnOnce } = require('./warnings')
const { messageOf } = require('./events')

/** Set by `configure({ breakers, limits })`, on the thread's global (a module evaluated again sees the same). */
const NAMED = Symbol.for('fallback-mechanisms.guards')
const named = (globalThis[NAMED] ??= { breakers: new Map(), limits: new Map() })

const BREAKER_DEFAULTS = { window: 'count', size: 20, failureRatio: 0.5, minimumCalls: 10, slowCallMs: undefined, slowCallRatio: 1, halfOpenAfterMs: 30_000 }
const PERIODS = ['minute', 'hour', 'day', 'month']
/** A concurrency slot's lease is renewed this often while its call runs (the lease is 30 s: src/core/shared/admission.rs). */
const RENEW_MS = 10_000

function received(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an instance of Array'
  return typeof value === 'object' ? 'an instance of Object' : `type ${typeof value} (${String(value)})`
}

function typeError(path, expected, value) {
  const error = new TypeError(`The "${path}" property must be ${expected}. Received ${received(value)}`)
  error.code = 'ERR_INVALID_ARG_TYPE'
  return error
}

function rangeError(path, expected, value) {
  const error = new RangeError(`The value of "${path}" is out of range. It must be ${expected}. Received ${String(value)}`)
  error.code = 'ERR_OUT_OF_RANGE'
  return error
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** A whole number ≥ `min` (`undefined` allowed when `optional`). */
function whole(value, path, min, optional) {
  if (value === undefined && optional) return undefined
  if (typeof value !== 'number') throw typeError(path, 'of type number', value)
  if (!Number.isSafeInteger(value) || value < min) throw rangeError(path, `an integer >= ${min}`, value)
  return value
}

function ratio(value, path) {
  if (value === undefined) return undefined
  if (typeof value !== 'number') throw typeError(path, 'of type number', value)
  if (!(value > 0 && value <= 1)) throw rangeError(path, '> 0 and <= 1', value)
  return value
}

/** `BreakerOptions`, checked and completed with the defaults. */
function checkBreaker(value, path) {
  if (value === undefined || value === null) return undefined
  if (!isObject(value)) throw typeError(path, 'of type object', value)
  const window = value.window ?? BREAKER_DEFAULTS.window
  if (window !== 'count' && window !== 'time') throw typeError(`${path}.window`, "one of 'count' or 'time'", window)
  const breaker = {
    window,
    size: whole(value.size, `${path}.size`, 1, true) ?? (window === 'time' ? 60_000 : BREAKER_DEFAULTS.size),
    failureRatio: ratio(value.failureRatio, `${path}.failureRatio`) ?? BREAKER_DEFAULTS.failureRatio,
    minimumCalls: whole(value.minimumCalls, `${path}.minimumCalls`, 1, true) ?? BREAKER_DEFAULTS.minimumCalls,
    slowCallMs: whole(value.slowCallMs, `${path}.slowCallMs`, 1, true),
    slowCallRatio: ratio(value.slowCallRatio, `${path}.slowCallRatio`) ?? BREAKER_DEFAULTS.slowCallRatio,
    halfOpenAfterMs: whole(value.halfOpenAfterMs, `${path}.halfOpenAfterMs`, 1, true) ?? BREAKER_DEFAULTS.halfOpenAfterMs,
  }
  if (window === 'count' && breaker.minimumCalls > breaker.size) breaker.minimumCalls = breaker.size
  return breaker
}

/** `LimitOptions`, checked. */
function checkLimits(value, path) {
  if (value === undefined || value === null) return undefined
  if (!isObject(value)) throw typeError(path, 'of type object', value)
  const limits = {
    requestsPerMinute: whole(value.requestsPerMinute, `${path}.requestsPerMinute`, 1, true),
    tokensPerMinute: whole(value.tokensPerMinute, `${path}.tokensPerMinute`, 1, true),
    concurrency: whole(value.concurrency, `${path}.concurrency`, 1, true),
  }
  return limits.requestsPerMinute === undefined && limits.tokensPerMinute === undefined && limits.concurrency === undefined ? undefined : limits
}

/** `budget`: `[key, { tokens, cost, per }]` as the core reads it. */
function checkBudget(value, path) {
  if (value === undefined || value === null) return undefined
  if (!isObject(value)) throw typeError(path, 'of type object', value)
  const { key, per } = value
  // A lone surrogate would not survive the trip to the store as JSON.
  if (typeof key !== 'string' || key === '' || !key.isWellFormed()) throw typeError(`${path}.key`, 'a non-empty well-formed string', key)
  if (!PERIODS.includes(per)) throw typeError(`${path}.per`, "one of 'minute', 'hour', 'day' or 'month'", per)
  const tokens = whole(value.tokens, `${path}.tokens`, 0, true)
  let cost = value.cost
  if (cost !== undefined) {
    if (typeof cost !== 'number') throw typeError(`${path}.cost`, 'of type number', cost)
    if (!(cost >= 0 && Number.isFinite(cost))) throw rangeError(`${path}.cost`, 'a finite number >= 0', cost)
  }
  if (tokens === undefined && cost === undefined) throw typeError(path, 'an object with tokens or cost', value)
  return [key, { tokens, cost, per }]
}

function checkUsage(value) {
  if (value !== undefined && value !== null && typeof value !== 'function') throw typeError('options.usage', 'of type function', value)
  return value ?? undefined
}

/** `configure({ breakers, limits })`: checked whole before anything changes. */
function checkNamed(options) {
  const checked = {}
  for (const [kind, check] of [['breakers', checkBreaker], ['limits', checkLimits]]) {
    const value = options[kind]
    if (value === undefined) continue
    if (value === null) {
      checked[kind] = new Map()
      continue
    }
    if (!isObject(value)) throw typeError(`options.${kind}`, 'of type object', value)
    const map = new Map()
    for (const name of Object.keys(value)) {
      const one = check(value[name], `options.${kind}.${name}`)
      if (one !== undefined) map.set(name, one)
    }
    checked[kind] = map
  }
  return () => {
    if (checked.breakers !== undefined) named.breakers = checked.breakers
    if (checked.limits !== undefined) named.limits = checked.limits
  }
}

/** Whether anything guards the call: its own options, or a breaker or limit configured by name. */
function anyNamed() {
  return named.breakers.size > 0 || named.limits.size > 0
}

/** Whether an alternative has a breaker or limits of its own. */
function anyOwn(alternatives) {
  return Array.isArray(alternatives) && alternatives.some((model) => model !== null && typeof model === 'object' && (model.breaker !== undefined || model.limits !== undefined))
}

/**
 * One model's guards: its breaker and limits (its own, else configured by
 * name), and for the first model the call's budget; `undefined` when none.
 */
function guardsOf(name, breaker, limits, budget, operationName) {
  const b = breaker ?? named.breakers.get(name)
  const l = limits ?? named.limits.get(name)
  if (b === undefined && l === undefined && budget === undefined) return undefined
  if (typeof name === 'string' && !name.isWellFormed()) {
    // Not as JSON to the store (nor replaced: names would share guards), as a lone surrogate is not benched (lib/chain.js).
    warnShared(operationName, 'a model name holds a lone surrogate (its breaker, limits and budget are not applied)')
    return undefined
  }
  return { name, breaker: b, limits: l, budget, json: JSON.stringify({ name, breaker: b, limits: l, budget }) }
}

function warnShared(operationName, problem) {
  warnOnce(operationName, 'shared guards', `the shared breakers, limits and budgets of "${operationName}" could not reach the store (each instance decides alone meanwhile): ${problem}`, 'FALLBACK_GUARDS_UNAVAILABLE')
}

/**
 * Outcomes of successful calls not stored yet (JSON texts): they go with
 * this process's next store update of the guards (a model's entry, another
 * outcome, a status read), or within 10 ms, so that a success costs no
 * round trip of its own. A failure, a probe and a released slot are stored
 * before their call answers.
 */
let pending = []
let flushing

function takePending() {
  if (pending.length === 0) return null
  const text = `[${pending.join(',')}]`
  pending = []
  if (flushing !== undefined) {
    clearTimeout(flushing)
    flushing = undefined
  }
  return text
}

function flushSoon() {
  if (flushing !== undefined) return
  flushing = setTimeout(() => {
    flushing = undefined
    storeNow(undefined)
  }, 10)
  // Not unref'd: a process that is done still stores its last outcomes,
  // 10 ms later. (No process listener: one would keep a vm context that
  // loaded the package alive.)
}

/** `answer` (JSON text, or a promise of it on Redis) read, its problem warned about. */
function stored(call, answer) {
  const read = (text) => {
    const parsed = JSON.parse(text)
    if (parsed.problem !== undefined) warnShared(call === undefined ? 'a call' : call.operationName, parsed.problem)
    return parsed
  }
  if (typeof answer === 'string') return read(answer)
  return answer.then(read, (thrown) => {
    warnShared(call === undefined ? 'a call' : call.operationName, messageOf(thrown))
    return { allowed: true, probe: false }
  })
}

/**
 * Stores what waits in `pending` now; resolves (on Redis) once stored. A
 * store that cannot take it is warned about, never thrown.
 */
function storeNow(call) {
  let answer
  try {
    answer = stored(call, native.guardUpdate(takePending(), null, Date.now()))
  } catch (thrown) {
    return warnShared(call === undefined ? 'a call' : call.operationName, messageOf(thrown))
  }
  return typeof answer.then === 'function' ? answer.then(() => undefined) : undefined
}

/** The store's answer for a model's entry (a promise of it on Redis). */
function admit(call, guards) {
  try {
    return stored(call, native.guardUpdate(takePending(), guards.json, Date.now()))
  } catch (thrown) {
    warnShared(call.operationName, messageOf(thrown))
    return { allowed: true, probe: false }
  }
}

/** The leases held by this process's calls in flight, renewed while they run. */
const held = new Map()
let renewing

function hold(name, lease) {
  let leases = held.get(name)
  if (leases === undefined) held.set(name, (leases = new Set()))
  leases.add(lease)
  if (renewing === undefined) {
    renewing = setInterval(() => {
      for (const [model, ids] of held) {
        try {
          const done = native.guardRenew(model, [...ids], Date.now())
          if (done !== null && typeof done.then === 'function') done.then(null, () => {})
        } catch {
          // Renewed at the next tick, or lost with its lease's end.
        }
      }
    }, RENEW_MS)
    renewing.unref()
  }
}

function release(name, lease) {
  const leases = held.get(name)
  if (leases === undefined) return
  leases.delete(lease)
  if (leases.size === 0) held.delete(name)
  if (held.size === 0 && renewing !== undefined) {
    clearInterval(renewing)
    renewing = undefined
  }
}

/** `{ tokens, cost }` from what `usage` answered or a result's `usage` holds. */
function spentOf(used, fromCallback) {
  if (typeof used === 'number' && fromCallback) return { tokens: used, cost: 0 }
  if (!isObject(used)) return { tokens: 0, cost: 0 }
  if (fromCallback) return { tokens: Number(used.tokens) || 0, cost: Number(used.cost) || 0 }
  const total = used.totalTokens ?? (used.inputTokens ?? used.promptTokens ?? 0) + (used.outputTokens ?? used.completionTokens ?? 0)
  return { tokens: Number(total) || 0, cost: 0 }
}

const isThenable = (value) => value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function'

/**
 * What a result spent: `usage(result)` (a number is tokens), else an AI
 * SDK result's `usage`; a promise of it when it is known only once a
 * stream ends (`streamText`'s `totalUsage` or `usage`, or a `usage`
 * callback that returns a promise).
 */
function usageOf(call, value) {
  try {
    if (call.usage !== undefined) {
      const used = call.usage(value)
      return isThenable(used) ? Promise.resolve(used).then((u) => spentOf(u, true)) : spentOf(used, true)
    }
    if (!isObject(value)) return spentOf(undefined, false)
    const later = isThenable(value.totalUsage) ? value.totalUsage : value.usage
    return isThenable(later) ? Promise.resolve(later).then((u) => spentOf(u, false)) : spentOf(value.usage, false)
  } catch {
    return { tokens: 0, cost: 0 }
  }
}

/** A count the store reads (a whole number of at most 2^53 - 1; Infinity is the most): never text that is not JSON, which would lose every outcome sent with it. */
const count = (n) => (n > 0 ? Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER) : 0)

function outcomeOf(json, lease, failed, durationMs, probe, tokens, cost) {
  return `{"guards":${json},"lease":${JSON.stringify(lease ?? null)},"failed":${failed},"durationMs":${count(durationMs)},"probe":${probe},"tokens":${count(tokens)},"cost":${Number.isFinite(cost) && cost > 0 ? cost : 0}}`
}

/** What a streamed answer spent, known at its end: charged to the limits and the budget (not the breaker's window). */
function chargeLater(call, guards, promised) {
  promised.then(({ tokens, cost }) => {
    if (!(tokens > 0 || cost > 0)) return
    const json = JSON.stringify({ name: guards.name, limits: guards.limits, budget: guards.budget })
    pending.push(outcomeOf(json, null, false, 0, false, tokens, cost))
    flushSoon()
  }, () => {})
}

/**
 * Records how a model's call ended: a plain success with the process's
 * next update (`pending`); a failure, a probe or a released slot at once,
 * resolving once stored (a failure may open the breaker for every
 * instance before the call answers).
 */
function settle(call, guards, admission, started, failed, value) {
  if (admission.lease != null) release(guards.name, admission.lease)
  let spent = failed ? { tokens: 0, cost: 0 } : usageOf(call, value)
  if (isThenable(spent)) {
    chargeLater(call, guards, spent)
    spent = { tokens: 0, cost: 0 }
  }
  pending.push(outcomeOf(guards.json, admission.lease, failed, Date.now() - started, admission.probe === true, spent.tokens, spent.cost))
  if (!failed && admission.probe !== true && admission.lease == null) return flushSoon()
  return storeNow(call)
}

/**
 * A call the caller abandoned (its signal): its slot released at once,
 * without an outcome for the breaker (a probe it held runs out as a hung
 * one does) nor anything spent.
 */
function abandon(call, guards, admission) {
  if (admission.lease == null) return undefined
  release(guards.name, admission.lease)
  pending.push(outcomeOf(JSON.stringify({ name: guards.name, limits: guards.limits }), admission.lease, false, 0, false, 0, 0))
  return storeNow(call)
}

function admitted(guards, admission) {
  if (admission.lease != null) hold(guards.name, admission.lease)
}

const define = (target, name, value) => Object.defineProperty(target, name, { value, writable: true, enumerable: true, configurable: true })

/** `getLimits()`: `{ [name]: { limits, requests, tokens, concurrent, resetsAt } }`. */
function getLimits() {
  const now = Date.now()
  const all = {}
  for (const { name, limits, requests, tokens, concurrent } of JSON.parse(native.guardStatus('limits', takePending(), now))) {
    define(all, name, { limits: withoutNulls(limits), requests, tokens, concurrent, windowMs: 60_000 })
  }
  return all
}

/** `getBudgets()`: `{ [key]: { tokens, cost, limits, resetsAt } }`. */
function getBudgets() {
  const now = Date.now()
  const all = {}
  for (const { key, tokens, cost, limits, resetsAt } of JSON.parse(native.guardStatus('budgets', takePending(), now))) {
    define(all, key, { tokens, cost, limits: withoutNulls(limits), resetsAt: new Date(resetsAt) })
  }
  return all
}

/** The shared breakers, for `getCircuitBreakerStatus()`. */
function sharedBreakers() {
  return JSON.parse(native.guardStatus('breakers', takePending(), Date.now()))
}

function withoutNulls(object) {
  const kept = {}
  for (const [name, value] of Object.entries(object)) if (value !== null) kept[name] = value
  return kept
}

module.exports = { checkBreaker, checkLimits, checkBudget, checkUsage, checkNamed, anyNamed, anyOwn, guardsOf, admit, admitted, settle, abandon, getLimits, getBudgets, sharedBreakers }
