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

/**
 * `options` read once, each property one time (a getter may answer
 * otherwise the second time): what is checked is what runs. Throws what a
 * getter throws.
 */
function readOptions(options) {
  const cacheKey = options.cacheKey
  const queueOnFailure = options.queueOnFailure
  return {
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
    retry: readRetry(options.retry),
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    dedupe: options.dedupe,
    alternatives: options.alternatives,
    alternativesOn: options.alternativesOn,
    cooldownMs: options.cooldownMs,
    maxCooldownMs: options.maxCooldownMs,
    stream: options.stream,
    breaker: options.breaker,
    limits: options.limits,
    budget: options.budget,
    usage: options.usage,
    hedge: options.hedge,
    guards: undefined,
    // The queue payload's JSON text, when startFallbackCall took it and kept no FallbackCall.
    payloadText: undefined,
  }
}

/**
 * `retry` read once: an object's fields copied (native code checks the
 * copy and the attempts call its `retryIf`, so a getter answers once);
 * anything else as given, for native code to refuse.
 */
function readRetry(retry) {
  if (retry === null || typeof retry !== 'object' || Array.isArray(retry)) return retry
  return {
    maxRetries: retry.maxRetries,
    baseDelayMs: retry.baseDelayMs,
    maxDelayMs: retry.maxDelayMs,
    jitter: retry.jitter,
    maxRetryAfterMs: retry.maxRetryAfterMs,
    retryIf: retry.retryIf,
  }
}

module.exports = { readOptions, plainlyPlain }
