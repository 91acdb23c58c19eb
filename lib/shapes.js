'use strict'

// The objects the package hands out. Object literals get V8's fast fixed
// shapes and cost nothing to cross to; native code returns data (numbers,
// strings, JSON text) and these make the public shapes of the contract.

const native = require('./native')

const MESSAGES = {
  success: 'Operation completed successfully',
  fallback: native.getUserFriendlyMessage(undefined, 'default'),
  skip: native.getUserFriendlyMessage(undefined, 'skip'),
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

function job(record) {
  const result = {
    id: record.id,
    type: record.type,
    operation: record.operation,
    payload: record.payload,
    userId: record.userId,
    priority: record.priority,
    createdAt: new Date(record.createdAt),
    retryCount: record.retryCount,
    maxRetries: record.maxRetries,
  }
  if (record.nextRetryAt !== undefined) result.nextRetryAt = new Date(record.nextRetryAt)
  result.status = record.status
  if (record.lastError !== undefined) result.lastError = record.lastError
  result.updatedAt = new Date(record.updatedAt)
  return result
}

/** A cached entry as `get` returns it (`hit` is the native record). */
function cachedResponse(prompt, modelId, hit) {
  return {
    prompt,
    response: hit.response,
    timestamp: new Date(hit.timestamp),
    modelId,
    expiresAt: new Date(hit.expiresAt),
  }
}

function cacheStats(record) {
  const stats = { size: record.size }
  if (record.oldestEntry !== undefined) {
    stats.oldestEntry = new Date(record.oldestEntry)
    stats.newestEntry = new Date(record.newestEntry)
  }
  stats.hits = record.hits
  stats.misses = record.misses
  stats.evictions = record.evictions
  stats.bytes = record.bytes
  return stats
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
  failure,
  serviceStats,
  fallbackResult,
}
