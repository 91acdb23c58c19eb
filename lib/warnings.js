'use strict'

// The package's coded warnings about one call's fallbacks, each said once
// per operation and kind of problem: a process that makes the same call a
// million times is told once, not a million times.

const native = require('./native')

// The native core's own coded warnings (a Redis write set aside, jobs found
// gone, a server's eviction policy), raised on its threads: shown with the
// environment's own `process.emitWarning`, held once per environment by
// native code (never a function of this context, which it would keep
// alive), and never keeping Node.js alive.
native.onNotice()

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

module.exports = { warnOnce, warnUnavailable }
