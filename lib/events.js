'use strict'

// What the package publishes on Node's diagnostics_channel (README,
// "Observability"). Each publisher checks `hasSubscribers` before it builds
// its message, so a process with no subscriber pays one property read per
// event and allocates nothing (the way undici and fastify publish).

const diagnostics = require('node:diagnostics_channel')

const channels = {
  /** A fallback answered a call: cache, default, queue, skip, alternative. */
  fallback: diagnostics.channel('fallback-mechanisms:fallback'),
  /** An alternative was tried (or passed over while cooling down). */
  alternative: diagnostics.channel('fallback-mechanisms:alternative'),
  /** An attempt failed and another one is about to start. */
  retry: diagnostics.channel('fallback-mechanisms:retry'),
  /** A circuit breaker changed state, or a model was benched (a cooldown). */
  breaker: diagnostics.channel('fallback-mechanisms:breaker'),
  /** The worker recorded a job's outcome: completed, failed, dead-lettered. */
  job: diagnostics.channel('fallback-mechanisms:job'),
}

/** The thrown value's message as the contract reads it (§8), or `undefined`. */
function messageOf(error) {
  if (error === undefined) return undefined
  if (typeof error === 'string') return error
  if (error !== null && typeof error === 'object') {
    let isError = false
    try {
      // In the try: `instanceof` throws for a revoked Proxy.
      isError = error instanceof Error
      const message = error.message
      if (typeof message === 'string') return message
      if (isError) return message === undefined ? '' : String(message)
    } catch {
      // A message getter that throws: said as the native side says it.
      if (isError) return 'an error whose message could not be read'
    }
    return 'non-error value thrown (object)'
  }
  return String(error)
}

/**
 * The thrown value a message's `error` was read from, on the message as a
 * symbol-keyed property that is not enumerable: subscribers see the same
 * fields as ever, and the OpenTelemetry bridge can say what it was without
 * its message (lib/redact.js). On the registry, so a bridge subscribed by
 * an earlier evaluation of this module finds it.
 */
const THROWN = Symbol.for('fallback-mechanisms.thrown')

/** `message` with `error`, the value its `error` field was read from (`THROWN`). */
function carrying(message, error) {
  if (error !== undefined) Object.defineProperty(message, THROWN, { value: error })
  return message
}

/**
 * Publishes `make()` on `channel` when someone listens. A subscriber that
 * throws is the subscriber's problem: diagnostics_channel reports it on
 * the next tick and the call goes on. A message that cannot be made (a
 * hostile value in it) is not published: the call goes on too.
 */
function publish(channel, make) {
  if (!channel.hasSubscribers) return
  let message
  try {
    message = make()
  } catch {
    return
  }
  channel.publish(message)
}

module.exports = { channels, publish, messageOf, carrying, THROWN }
