'use strict'

// executeService: native code checks the call and asks the operation's
// circuit breaker; the attempts run in a Rust loop (src/binding/attempts.rs)
// that decides retries and waits; then the caller's fallback, then its
// graceful degradation, then the failure.

const native = require('./native')
const { attemptsOf, codedError, invoke } = require('./invoke')
const { MESSAGES, asError } = require('./shapes')
const { runningCooldowns } = require('./cooldowns')

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
  const attempts = attemptsOf(operation)
  let run
  try {
    run = native.startServiceCall(operation, context, options)
  } catch (thrown) {
    return Promise.reject(thrown)
  }
  if (run.openMessage !== null) {
    const error = codedError(run.openMessage, 'CIRCUIT_OPEN')
    const circuitState = native.circuitState(context.operation)
    return degrade(options, failedCall(error, 0, circuitState))
  }
  return run.runAttempts(attempts.attempt(1), attempts.attempt, attempts.abort).then(({ ok, attempts: count, circuitState }) => {
    const last = attempts.outcome(count)
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
 * The breaker of every operation `executeService` has seen, and every
 * benched model as an open breaker (`cooldownUntil`; added to a breaker of
 * the same name).
 */
function getCircuitBreakerStatus() {
  const status = {}
  for (const { operation, state, failureCount, openedAt } of JSON.parse(native.circuitBreakerStatus())) {
    const breaker = { state, failureCount }
    if (openedAt !== undefined) breaker.openedAt = new Date(openedAt)
    define(status, operation, breaker)
  }
  for (const [name, { since, until }] of cooldownsForStatus()) {
    if (Object.hasOwn(status, name)) status[name].cooldownUntil = until
    else define(status, name, { state: 'open', failureCount: 0, openedAt: since, cooldownUntil: until })
  }
  return status
}

module.exports = { executeService, getCircuitBreakerStatus }
