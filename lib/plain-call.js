'use strict'

// Whether a call's options plainly make a plain call (one attempt on this
// thread: no queue, no skip threshold, no retry, timeout, signal nor shared
// call), checked here because the call into native code that checks them
// (`startFallbackCall`) costs more than the check, and answers nothing else
// for such a call. Anything this does not accept goes to native code, which
// accepts it or words the refusal, as every other check is worded.

const isText = (value) => typeof value === 'string'
const isOptionalText = (value) => value === undefined || typeof value === 'string'
const isOptionalBoolean = (value) => value === undefined || typeof value === 'boolean'
const isPlainObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value)

/**
 * `true` when `startFallbackCall` would answer `null` (a plain call) for
 * these options, read once by `executeWithFallback` (`read`); `false`
 * when it might answer otherwise or refuse them.
 */
function plainlyPlain(operation, options, read) {
  if (typeof operation !== 'function' || Array.isArray(options)) return false
  if (!isText(read.operationName) || read.operationName.length === 0 || !isOptionalText(read.userId)) return false
  const keyed = read.cacheKey !== undefined
  if (keyed && !(isPlainObject(read.cacheKey) && isText(read.prompt) && isText(read.modelId))) return false
  return (
    isOptionalBoolean(read.allowSkip) &&
    read.queueOnFailure === undefined &&
    isOptionalText(read.service) &&
    read.skipThreshold === undefined &&
    read.retry === undefined &&
    read.timeoutMs === undefined &&
    read.signal === undefined &&
    // dedupe shares a keyed call.
    (read.dedupe === undefined || read.dedupe === false || (read.dedupe === true && !keyed))
  )
}

module.exports = { plainlyPlain }
