'use strict'

// The building blocks applications also call directly. Native code does
// the work and returns data; the FallbackResult is made here.

const native = require('./native')
const { fallbackResult } = require('./shapes')

/** A cached AI response (stale allowed), else the default, else `success: false`. */
async function fallbackToCachedAI(prompt, modelId, defaultValue) {
  const found = JSON.parse(native.cachedAnswer(prompt, modelId, defaultValue !== undefined))
  if (found.response !== undefined) return fallbackResult(true, true, found.response, 'cache', found.message, found.stale)
  if (found.fallbackType === 'default') return fallbackResult(true, true, defaultValue, 'default', found.message, false)
  return fallbackResult(false, false, undefined, 'cache', found.message, false)
}

/** Records the failure and reports the step as skipped. */
function skipFailedIntegration(service, operation, error) {
  return fallbackResult(true, true, null, 'skip', native.recordSkip(service, operation, error), false)
}

/** Enqueues on the shared queue and reports the job as queued. */
function queueForLater(type, operation, payload, userId, priority, maxRetries) {
  const [jobId, message] = native.queueJob(type, operation, payload, userId, priority, maxRetries)
  return fallbackResult(true, true, jobId, 'queue', message, false)
}

module.exports = { fallbackToCachedAI, skipFailedIntegration, queueForLater }
