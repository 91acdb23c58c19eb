'use strict'

// executeService: native code checks the call and asks the operation's
// circuit breaker; the attempts run in a Rust loop (src/binding/attempts.rs)
// that decides retries and waits; then the caller's fallback, then its
// graceful degradation, then the failure.

const native = require('./native')
const { attemptsOf, codedError, invoke } = require('./invoke')
const { MESSAGES, asError } = require('./shapes')
const { runningCooldowns } = require('./cooldowns')
const { channels, publish, messageOf, carrying } = require('./events')
const { sharedBreakers } = require('./guards')

/**
 * operation → the state of its breaker when last seen here, for breakers
 * not closed (closed is the default: it is not kept). The breaker lives in
 * Rust; its transitions are read off what each call sees (let through or
 * kept out, and `circuitState` at the end), which costs a Map look-up per
 * call. It is kept whether or not anyone subscribes: a subscriber that
 * comes later then gets a true `previousState`, not a guess. Bounded like
 * the Rust side's table: past 10,000 the oldest goes (its next change may
 * then read as from 'closed').
 */
const lastSeen = new Map()

/** The breaker's consecutive failures, read only to publish a change. */
function failureCountOf(operation) {
  const entry = JSON.parse(native.circuitBreakerStatus()).find((breaker) => breaker.operation === operation)
  return entry === undefined ? 0 : entry.failureCount
}

/**
 * `context.operation`, which the native call has read and checked (a
 * non-empty string); read again here, so a getter that now throws or
 * answers otherwise leaves the bookkeeping out (`undefined`), not the call.
 */
function breakerName(context) {
  try {
    const name = context.operation
    return typeof name === 'string' && name !== '' ? name : undefined
  } catch {
    return undefined
  }
}

/** Notes `state` as `operation`'s breaker's, and publishes it when it changed. */
function sawBreaker(operation, state, error) {
  if (operation === undefined) return
  const previousState = lastSeen.get(operation) ?? 'closed'
  if (state === previousState) return
  if (state === 'closed') lastSeen.delete(operation)
  else {
    if (lastSeen.size >= 10_000) lastSeen.delete(lastSeen.keys().next().value)
    lastSeen.set(operation, state)
  }
  const thrown = state === 'open' ? error : undefined
  publish(channels.breaker, () =>
    carrying(
      { type: 'breaker', operationName: operation, state, previousState, failureCount: failureCountOf(operation), error: thrown === undefined ? undefined : messageOf(thrown) },
      thrown,
    ),
  )
}

/** After the call failed: `fallback`, then `gracefulDegradation`, then the failure itself. */
function degrade(options, ended) {
  const steps = []
  if (options !== undefined && options !== null) {
    if (typeof options.fallback === 'function') steps.push(['fallback', options.fallback])
    if (typeof options.gracefulDegradation === 'function') steps.push(['gracefulDegradation', options.gracefulDegradation])
  }
  const { attempts, circuitState, message } = ended
  const metadata = (more) => ({ attempts, ...more, circuitState, originalError: message })
  return steps.reduce(
    (previous, [fallbackType, produce]) =>
      previous.then(null, () =>
        invoke(produce).then((data) => ({
          success: true,
          data,
          message: MESSAGES.fallback,
          timestamp: new Date(),
          metadata: metadata({ usedFallback: true, fallbackType }),
        })),
      ),
    Promise.reject(ended),
  ).then(null, () => ({
    success: false,
    error: ended.asError,
    message,
    timestamp: new Date(),
    metadata: { attempts, circuitState, originalError: message },
  }))
}

function failedCall(error, attempts, circuitState) {
  const { message, isError } = native.describeThrown(error)
  return { asError: asError(error, isError, message), message, attempts, circuitState }
}

function executeService(operation, context, options) {
  let run
  try {
    run = native.startServiceCall(operation, context, options)
  } catch (thrown) {
    return Promise.reject(thrown)
  }
  const name = breakerName(context)
  if (run.openMessage !== null) {
    const error = codedError(run.openMessage, 'CIRCUIT_OPEN')
    const circuitState = name === undefined ? 'open' : native.circuitState(name)
    sawBreaker(name, circuitState, error)
    return degrade(options, failedCall(error, 0, circuitState))
  }
  // Let through while last seen open: this is the half-open breaker's trial.
  if (lastSeen.get(name) === 'open') sawBreaker(name, 'half-open', undefined)
  const attempts = attemptsOf(operation, { operationName: name })
  return run.runAttempts(attempts.attempt(1), attempts.attempt, attempts.abort).then(({ ok, attempts: count, circuitState }) => {
    const last = attempts.outcome(count)
    sawBreaker(name, circuitState, ok ? undefined : last.error)
    if (ok) {
      return { success: true, data: last.value, message: MESSAGES.success, timestamp: new Date(), metadata: { attempts: count, circuitState } }
    }
    return degrade(options, failedCall(last.error, count, circuitState))
  })
}

const define = (status, name, value) =>
  Object.defineProperty(status, name, { value, writable: true, enumerable: true, configurable: true })

/** Every benched model, or none when the store cannot say (the breakers are this process's and still answer). */
function cooldownsForStatus() {
  try {
    return runningCooldowns()
  } catch (error) {
    if (typeof error?.code === 'string' && error.code.startsWith('STORAGE_')) return []
    throw error
  }
}

/**
 * `shared`, `probeHeldBy` and `probeSince` on an entry that is not a
 * shared breaker's (a breaker of `executeService`, a benched model), not
 * enumerable: the entries keep the shape they had before shared breakers
 * came, for code that compares them whole.
 */
function notShared(entry, shared = false) {
  for (const [name, value] of [['shared', shared], ['probeHeldBy', null], ['probeSince', null]]) {
    Object.defineProperty(entry, name, { value, writable: true, enumerable: false, configurable: true })
  }
  return entry
}

/** The shared breakers, or none when the store cannot say. */
function sharedBreakersForStatus() {
  try {
    return sharedBreakers()
  } catch (error) {
    if (typeof error?.code === 'string' && error.code.startsWith('STORAGE_')) return []
    throw error
  }
}

/**
 * The breaker of every operation `executeService` has seen, and every
 * benched model as an open breaker (`cooldownUntil`; added to a breaker of
 * the same name).
 */
function getCircuitBreakerStatus() {
  const status = {}
  for (const { operation, state, failureCount, openedAt } of JSON.parse(native.circuitBreakerStatus())) {
    const breaker = { state, failureCount }
    if (openedAt !== undefined) breaker.openedAt = new Date(openedAt)
    define(status, operation, notShared(breaker))
  }
  // The shared breakers (lib/guards.js) of every instance on the store.
  for (const { name, state, failures, openedAt, probeHeldBy, probeSince } of sharedBreakersForStatus()) {
    const breaker = { state, failureCount: failures, shared: true, probeHeldBy: probeHeldBy ?? null, probeSince: probeSince == null ? null : new Date(probeSince) }
    if (openedAt != null) breaker.openedAt = new Date(openedAt)
    define(status, name, breaker)
  }
  for (const [name, { since, until }] of cooldownsForStatus()) {
    if (Object.hasOwn(status, name)) status[name].cooldownUntil = until
    else define(status, name, notShared({ state: 'open', failureCount: 0, openedAt: since, cooldownUntil: until }, true))
  }
  return status
}

module.exports = { executeService, getCircuitBreakerStatus }
