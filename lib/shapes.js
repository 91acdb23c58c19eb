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

function fellBack(data, message, fallbackType, jobId, stale, attempts, skippedWithoutCalling) {
  const metadata = { usedFallback: true, fallbackType }
  if (jobId !== undefined) metadata.jobId = jobId
  if (stale) metadata.stale = true
  if (skippedWithoutCalling) metadata.skippedWithoutCalling = true
  if (attempts !== undefined) metadata.attempts = attempts
  return { success: true, data, message, timestamp: new Date(), metadata }
}

function failed(error, message, attempts) {
  const metadata = { usedFallback: false, originalError: message }
  if (attempts !== undefined) metadata.attempts = attempts
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

/** Makers native code calls for the class methods' results (`registerShapes`). */
const forNative = {
  fallbackResult(success, hasData, data, fallbackType, message, stale) {
    const result = hasData
      ? { success, data, usedFallback: success, fallbackType, message }
      : { success, usedFallback: success, fallbackType, message }
    if (stale) result.metadata = { stale: true }
    return result
  },

  cachedResponse(prompt, responseJson, timestamp, modelId, expiresAt) {
    return {
      prompt,
      response: JSON.parse(responseJson),
      timestamp: new Date(timestamp),
      modelId,
      expiresAt: new Date(expiresAt),
    }
  },

  cacheStats(size, oldest, newest, hits, misses, evictions, bytes) {
    const stats = { size }
    if (size > 0) {
      stats.oldestEntry = new Date(oldest)
      stats.newestEntry = new Date(newest)
    }
    stats.hits = hits
    stats.misses = misses
    stats.evictions = evictions
    stats.bytes = bytes
    return stats
  },

  job(id, type, operation, payloadJson, userId, priority, createdAt, retryCount, maxRetries, nextRetryAt, status, lastError, updatedAt) {
    return job({
      id,
      type,
      operation,
      payload: payloadJson === undefined ? undefined : JSON.parse(payloadJson),
      userId,
      priority,
      createdAt,
      retryCount,
      maxRetries,
      nextRetryAt,
      status,
      lastError,
      updatedAt,
    })
  },

  queueStats(total, pending, processing, completed, failed) {
    return { total, pending, processing, completed, failed }
  },

  failure(service, operation, error, timestamp, skipReason) {
    return { service, operation, error, timestamp: new Date(timestamp), skipReason }
  },

  serviceStats(count, lastFailure) {
    return { count, lastFailure: new Date(lastFailure) }
  },
}

module.exports = { MESSAGES, succeeded, fellBack, failed, skippedUpFront, asError, job, forNative }
