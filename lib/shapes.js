'use strict'

// The objects the package hands out. Object literals get V8's fast fixed
// shapes and cost nothing to cross to; native code returns data (numbers,
// strings, JSON text) and these make the public shapes of the contract.

const native = require('./native')

const MESSAGES = {
  success: native.successMessage(),
  fallback: native.getUserFriendlyMessage(undefined, 'default'),
  skip: native.getUserFriendlyMessage(undefined, 'skip'),
  alternative: native.getUserFriendlyMessage(undefined, 'alternative'),
}

function succeeded(data, attempts) {
  const result = { success: true, data, message: MESSAGES.success, timestamp: new Date() }
  if (attempts !== undefined) result.metadata = { attempts }
  return result
}

function fellBack(data, message, fallbackType, jobId, stale, attempts, skippedWithoutCalling, unavailable) {
  const metadata = { usedFallback: true, fallbackType }
  if (jobId !== undefined) metadata.jobId = jobId
  if (stale) metadata.stale = true
  if (skippedWithoutCalling) metadata.skippedWithoutCalling = true
  if (attempts !== undefined) metadata.attempts = attempts
  if (unavailable !== undefined) metadata.unavailable = unavailable
  return { success: true, data, message, timestamp: new Date(), metadata }
}

function failed(error, message, attempts, unavailable) {
  const metadata = { usedFallback: false, originalError: message }
  if (attempts !== undefined) metadata.attempts = attempts
  if (unavailable !== undefined) metadata.unavailable = unavailable
  return { success: false, error, message, timestamp: new Date(), metadata }
}

/** A skip decided before calling (`skipThreshold`). */
function skippedUpFront() {
  return fellBack(undefined, MESSAGES.skip, 'skip', undefined, false, undefined, true)
}

/** The thrown value as an `Error`: itself when it is one, else `new Error(message)`. */
function asError(thrown, isError, message) {
  return isError ? thrown : new Error(message)
}

/**
 * A `QueuedJob` from its record, a JSON array (src/binding/records.rs):
 * `[id, type, operation, userId, priority, createdAt, retryCount,
 * maxRetries, nextRetryAt, status, lastError, updatedAt, payload?]`.
 */
function job(r) {
  const result = {
    id: r[0],
    type: r[1],
    operation: r[2],
    payload: r.length > 12 ? r[12] : undefined,
    userId: r[3],
    priority: r[4],
    createdAt: new Date(r[5]),
    retryCount: r[6],
    maxRetries: r[7],
  }
  if (r[8] !== null) result.nextRetryAt = new Date(r[8])
  result.status = r[9]
  if (r[10] !== null) result.lastError = r[10]
  result.updatedAt = new Date(r[11])
  return result
}

/** A cached entry as `get` returns it; `numbers` holds its two instants. */
function cachedResponse(prompt, response, modelId, numbers) {
  return {
    prompt,
    response,
    timestamp: new Date(numbers[0]),
    modelId,
    expiresAt: new Date(numbers[1]),
  }
}

/** `numbers`: size, oldest, newest, hits, misses, evictions, bytes. */
function cacheStats(numbers) {
  const size = numbers[0]
  const stats = { size }
  if (size > 0) {
    stats.oldestEntry = new Date(numbers[1])
    stats.newestEntry = new Date(numbers[2])
  }
  stats.hits = numbers[3]
  stats.misses = numbers[4]
  stats.evictions = numbers[5]
  stats.bytes = numbers[6]
  return stats
}

/** `numbers`: total, pending, processing, completed, failed. */
function queueStats(numbers) {
  return { total: numbers[0], pending: numbers[1], processing: numbers[2], completed: numbers[3], failed: numbers[4] }
}

function failure(record) {
  return {
    service: record.service,
    operation: record.operation,
    error: record.error,
    timestamp: new Date(record.timestamp),
    skipReason: record.skipReason,
  }
}

/** `{ [service]: { count, lastFailure } }`, in the history's order. */
function serviceStats(entries) {
  const stats = {}
  for (const { service, count, lastFailure } of entries) {
    // Defined, not assigned: a service named `__proto__` is an ordinary key.
    Object.defineProperty(stats, service, {
      value: { count, lastFailure: new Date(lastFailure) },
      writable: true,
      enumerable: true,
      configurable: true,
    })
  }
  return stats
}

/** `FallbackResult`; `data` is left out when absent. */
function fallbackResult(success, hasData, data, fallbackType, message, stale) {
  const result = hasData
    ? { success, data, usedFallback: success, fallbackType, message }
    : { success, usedFallback: success, fallbackType, message }
  if (stale) result.metadata = { stale: true }
  return result
}

module.exports = {
  MESSAGES,
  succeeded,
  fellBack,
  failed,
  skippedUpFront,
  asError,
  job,
  cachedResponse,
  cacheStats,
  queueStats,
  failure,
  serviceStats,
  fallbackResult,
}
