'use strict'

const { AsyncResource } = require('node:async_hooks')
const { channels, publish, messageOf, carrying } = require('./events')

/** An `Error` with a `code`, as this package's own errors have. */
function codedError(message, code) {
  const error = new Error(message)
  error.code = code
  return error
}

/**
 * Calls `fn(...args)` and always returns a promise: a synchronous throw
 * becomes a rejection, a plain value a fulfilled promise.
 */
function invoke(fn, ...args) {
  try {
    return Promise.resolve(fn(...args))
  } catch (thrown) {
    return Promise.reject(thrown)
  }
}

/**
 * The attempt functions the Rust loops call (src/binding/attempts.rs):
 * `attempt(n)` runs the operation once and always resolves, `undefined` on
 * success and `{ error, again }` on failure; `abort(n, timeoutMs)` fails
 * attempt `n` with a TIMEOUT error and aborts its signal. The values stay
 * here: `outcome(n)` is what attempt `n` ended with. An attempt after the
 * first is published on the retry channel, with `operationName` and
 * `alternative` (`undefined` for the primary).
 *
 * Both run in the caller's async context, made explicit here: an operation
 * retried from the Rust loop must see the caller's AsyncLocalStorage store
 * (Next.js headers() and cookies() read it) and OpenTelemetry's active span.
 * Node runs a threadsafe function in the context it was made in, and the
 * loop makes its own in `runAttempts`, called in the caller's context, so
 * this holds without the binding today; bound, it no longer depends on when
 * or where the Rust side makes them.
 */
function attemptsOf(operation, { retryIf, withSignal, operationName, alternative } = {}) {
  const caller = new AsyncResource('fallback-mechanisms:attempts')
  const outcomes = new Map()
  const controllers = new Map()
  // The caller aborted: an attempt the Rust loop had already sent this way
  // (its backoff ended just before) is not made, and never settles, so the
  // loop ends on the cancel it was given rather than on a made-up failure.
  let cancelled = false
  function again(error) {
    if (typeof retryIf !== 'function') return true
    try {
      return Boolean(retryIf(error))
    } catch {
      return false
    }
  }
  function settle(n, outcome) {
    controllers.delete(n)
    if (!outcomes.has(n)) outcomes.set(n, outcome)
    return outcomes.get(n)
  }
  function retried(n) {
    publish(channels.retry, () => {
      const previous = outcomes.get(n - 1)
      const error = previous === undefined ? undefined : previous.error
      return carrying({ type: 'retry', operationName, attempt: n, error: previous === undefined ? undefined : messageOf(error), alternative }, error)
    })
  }
  return {
    attempt: caller.bind((n) => {
      if (cancelled) return new Promise(() => {})
      if (n >= 2) retried(n)
      const controller = withSignal ? new AbortController() : undefined
      if (controller) controllers.set(n, controller)
      const running = controller ? invoke(operation, controller.signal) : invoke(operation)
      return running.then(
        (value) => {
          const outcome = settle(n, { value })
          return 'error' in outcome ? { error: outcome.error, again: again(outcome.error) } : undefined
        },
        (error) => {
          const outcome = settle(n, { error })
          return { error: outcome.error, again: again(outcome.error) }
        },
      )
    }),
    abort: caller.bind((n, timeoutMs) => {
      // An attempt that settled before this ran (the thread was busy) wins.
      const settled = outcomes.get(n)
      if (settled !== undefined) return 'error' in settled ? { error: settled.error, again: again(settled.error) } : undefined
      const error = codedError(`The operation timed out after ${timeoutMs} ms`, 'TIMEOUT')
      const controller = controllers.get(n)
      settle(n, { error })
      if (controller) controller.abort(error)
      return { error, again: again(error) }
    }),
    /** Aborts the attempt in progress (the caller's signal). */
    abortAll(reason) {
      cancelled = true
      for (const controller of controllers.values()) controller.abort(reason)
      controllers.clear()
    },
    outcome(n) {
      return outcomes.get(n)
    },
  }
}

/**
 * What reading the arguments threw: an argument that cannot even be read
 * (a revoked `Proxy`, a getter or trap that throws) makes the engine throw
 * a `TypeError` with no `code`, which gets `ERR_INVALID_ARG_VALUE` like
 * every other bad argument (the native side does the same). Told by its
 * type and where it came from, never by the engine's message text.
 */
function codedIfUnreadable(thrown) {
  if (thrown instanceof TypeError && thrown.code === undefined) thrown.code = 'ERR_INVALID_ARG_VALUE'
  return thrown
}

module.exports = { invoke, attemptsOf, codedError, codedIfUnreadable }
