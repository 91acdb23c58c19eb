'use strict'

// The building blocks and the message table (API.md §6, §7).

const test = require('node:test')
const assert = require('node:assert/strict')

const {
  getUserFriendlyMessage,
  fallbackToCachedAI,
  skipFailedIntegration,
  queueForLater,
  aiResponseCache,
  backgroundJobQueue,
  integrationFailureManager,
  configure,
} = require('..')
const { MESSAGES, resetSingletons, sleep, assertThrowsCoded } = require('./helpers')

test.beforeEach(resetSingletons)

test('getUserFriendlyMessage returns the exact message for each fallback type', () => {
  const rows = [
    ['cache', MESSAGES.cache],
    ['skip', MESSAGES.skip],
    ['queue', MESSAGES.queue],
    ['default', MESSAGES.default],
    ['other', MESSAGES.generic],
    ['', MESSAGES.generic],
    ['CACHE', MESSAGES.generic],
    [undefined, MESSAGES.generic],
    [null, MESSAGES.generic],
    [42, MESSAGES.generic],
  ]
  for (const [type, message] of rows) {
    assert.equal(getUserFriendlyMessage(new Error('secret detail'), type), message, String(type))
  }
  assert.equal(getUserFriendlyMessage(), MESSAGES.generic)
  assert.equal(getUserFriendlyMessage('any error'), MESSAGES.generic)
  assert.ok(!getUserFriendlyMessage(new Error('secret detail'), 'cache').includes('secret'))
})

test('fallbackToCachedAI: cached response', async () => {
  aiResponseCache.set('prompt', { answer: 42 }, 'model')
  const result = await fallbackToCachedAI('prompt', 'model', { answer: 0 })
  assert.deepEqual(result, {
    success: true,
    data: { answer: 42 },
    usedFallback: true,
    fallbackType: 'cache',
    message: 'Using cached AI response from previous request',
  })
  assert.equal(aiResponseCache.getStats().hits, 1)
})

test('fallbackToCachedAI: default when nothing is cached', async () => {
  const fallback = { answer: 0 }
  const result = await fallbackToCachedAI('missing', 'model', fallback)
  assert.deepEqual(result, {
    success: true,
    data: fallback,
    usedFallback: true,
    fallbackType: 'default',
    message: 'Using default value as no cache available',
  })
  assert.equal(result.data, fallback)
})

test('fallbackToCachedAI: nothing at all', async () => {
  const result = await fallbackToCachedAI('missing', 'model')
  assert.deepEqual(result, {
    success: false,
    usedFallback: false,
    fallbackType: 'cache',
    message: 'No cached response available',
  })
  assert.equal(aiResponseCache.getStats().misses, 1)
})

test('fallbackToCachedAI serves a stale answer under stale-if-error, marked stale', async () => {
  configure({ cache: { staleIfErrorMs: 60_000 } })
  try {
    aiResponseCache.set('old', 'answer', 'm', 1)
    await sleep(10)
    const result = await fallbackToCachedAI('old', 'm')
    assert.equal(result.data, 'answer')
    assert.equal(result.fallbackType, 'cache')
    assert.deepEqual(result.metadata, { stale: true })
  } finally {
    configure({ cache: { staleIfErrorMs: 0 } })
  }
})

test('fallbackToCachedAI rejects bad arguments with a TypeError', async () => {
  await assert.rejects(fallbackToCachedAI(1, 'm'), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE' && /"prompt"/.test(e.message))
  await assert.rejects(fallbackToCachedAI('p'), (e) => e instanceof TypeError && /"modelId"/.test(e.message))
})

test('skipFailedIntegration records the failure and reports the skip', () => {
  const result = skipFailedIntegration('facebook', 'post', new Error('HTTP 503'))
  assert.deepEqual(result, {
    success: true,
    data: null,
    usedFallback: true,
    fallbackType: 'skip',
    message: 'Skipped facebook integration - Service temporarily unavailable: HTTP 503',
  })
  const [failure] = integrationFailureManager.getFailures('facebook')
  assert.equal(failure.operation, 'post')
  assert.equal(failure.error, 'HTTP 503')
  assert.equal(failure.skipReason, 'Service temporarily unavailable: HTTP 503')
})

test('skipFailedIntegration accepts a non-Error error', () => {
  const result = skipFailedIntegration('svc', 'op', 'plain string')
  assert.equal(result.message, 'Skipped svc integration - Service temporarily unavailable: plain string')
  assertThrowsCoded(assert, () => skipFailedIntegration(undefined, 'op', new Error('x')), TypeError, 'ERR_INVALID_ARG_TYPE', /"service"/)
})

test('queueForLater enqueues on the shared queue with priority medium and maxRetries 3 by default', () => {
  const result = queueForLater('notification', 'send_email', { to: 'a@b.c' }, 'user-9')
  assert.equal(result.success, true)
  assert.equal(result.usedFallback, true)
  assert.equal(result.fallbackType, 'queue')
  assert.match(result.data, /^job_\d+_[0-9a-z]{9}$/)
  assert.equal(result.message, `Job queued for later processing (ID: ${result.data})`)
  const job = backgroundJobQueue.getByUser('user-9')[0]
  assert.equal(job.id, result.data)
  assert.equal(job.priority, 'medium')
  assert.equal(job.maxRetries, 3)
  assert.equal(job.retryCount, 0)
  assert.equal(job.type, 'notification')
  assert.equal(job.operation, 'send_email')
  assert.deepEqual(job.payload, { to: 'a@b.c' })
  const custom = queueForLater('ai', 'op', null, 'user-9', 'high', 5)
  const customJob = backgroundJobQueue.getAll().find((j) => j.id === custom.data)
  assert.equal(customJob.priority, 'high')
  assert.equal(customJob.maxRetries, 5)
})

test('queueForLater checks its arguments and queues nothing on bad input', () => {
  const before = backgroundJobQueue.getStats().total
  assertThrowsCoded(assert, () => queueForLater('email', 'op', {}, 'u'), TypeError, 'ERR_INVALID_ARG_VALUE', /"type" argument must be one of/)
  assertThrowsCoded(assert, () => queueForLater('ai', 'op', {}, 'u', 'urgent'), TypeError, 'ERR_INVALID_ARG_VALUE', /"priority"/)
  assertThrowsCoded(assert, () => queueForLater('ai', 'op', {}, 'u', 'low', -1), RangeError, 'ERR_OUT_OF_RANGE', /"maxRetries"/)
  assertThrowsCoded(assert, () => queueForLater('ai', 'op', {}, undefined), TypeError, 'ERR_INVALID_ARG_TYPE', /"userId"/)
  assert.equal(backgroundJobQueue.getStats().total, before)
})

test('queueForLater on a full queue throws QUEUE_FULL', () => {
  configure({ queue: { maxSize: backgroundJobQueue.getStats().total + 1 } })
  try {
    queueForLater('ai', 'op', {}, 'u')
    assertThrowsCoded(assert, () => queueForLater('ai', 'op', {}, 'u'), Error, 'QUEUE_FULL')
  } finally {
    configure({ queue: { maxSize: 10_000 } })
  }
})
