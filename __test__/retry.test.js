'use strict'

// executeWithFallback's additions from the retry issue: `retry` (timed on
// the Rust side), `skipThreshold`, and `metadata.attempts`.

const test = require('node:test')
const assert = require('node:assert/strict')

const { executeWithFallback, integrationFailureManager, aiResponseCache } = require('..')
const { MESSAGES, resetSingletons , flaky } = require('./helpers')

test.beforeEach(resetSingletons)


test('retry: attempts until success, with metadata.attempts', async () => {
  const op = flaky(2)
  const result = await executeWithFallback(op.operation, { operationName: 'op', retry: { maxRetries: 3, baseDelayMs: 15, maxDelayMs: 100 } })
  assert.equal(result.data, 'ok after 3')
  assert.deepEqual(result.metadata, { attempts: 3 })
  for (const gap of op.gaps()) assert.ok(gap >= 13, `${gap} ms`)
})

test('retry without jitter doubles the delay, capped', async () => {
  const op = flaky(3)
  await executeWithFallback(op.operation, { operationName: 'op', retry: { maxRetries: 3, baseDelayMs: 20, maxDelayMs: 50, jitter: false } })
  const [first, second, third] = op.gaps()
  assert.ok(first >= 18 && first < 40, `${first}`)
  assert.ok(second >= 38 && second < 70, `${second}`)
  assert.ok(third >= 48 && third < 80, `${third} (capped at 50)`)
})

test('retries exhausted: the fallback chain runs once, with the attempts counted', async () => {
  const op = flaky(10)
  aiResponseCache.set('p', 'cached', 'm')
  const result = await executeWithFallback(op.operation, {
    operationName: 'op',
    cacheKey: { prompt: 'p', modelId: 'm' },
    retry: { maxRetries: 2, baseDelayMs: 1 },
  })
  assert.equal(op.starts.length, 3)
  assert.equal(result.data, 'cached')
  assert.equal(result.message, MESSAGES.cache)
  assert.deepEqual(result.metadata, { usedFallback: true, fallbackType: 'cache', attempts: 3 })
  const failed = await executeWithFallback(flaky(10).operation, { operationName: 'op', retry: { maxRetries: 1, baseDelayMs: 1 } })
  assert.deepEqual(failed.metadata, { usedFallback: false, originalError: 'attempt 2 failed', attempts: 2 })
})

test('retryable: false and retryIf stop the retries', async () => {
  const fatal = flaky(5, () => Object.assign(new Error('400'), { retryable: false }))
  await executeWithFallback(fatal.operation, { operationName: 'op', retry: { maxRetries: 5, baseDelayMs: 1 } })
  assert.equal(fatal.starts.length, 1)
  const filtered = flaky(5, (n) => new Error(n === 1 ? 'transient' : 'permanent'))
  const result = await executeWithFallback(filtered.operation, {
    operationName: 'op',
    retry: { maxRetries: 5, baseDelayMs: 1, retryIf: (error) => error.message === 'transient' },
  })
  assert.equal(filtered.starts.length, 2)
  assert.equal(result.metadata.attempts, 2)
  const throwing = flaky(5)
  await executeWithFallback(throwing.operation, { operationName: 'op', retry: { maxRetries: 5, baseDelayMs: 1, retryIf: () => { throw new Error('bug') } } })
  assert.equal(throwing.starts.length, 1, 'a throwing retryIf means no')
})

test('retryAfterMs and Retry-After make the next attempt wait at least that long', async () => {
  const asked = flaky(1, () => Object.assign(new Error('slow down'), { retryAfterMs: 100 }))
  await executeWithFallback(asked.operation, { operationName: 'op', retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 } })
  assert.ok(asked.gaps()[0] >= 95, `${asked.gaps()[0]} ms`)
  const header = flaky(1, () => Object.assign(new Error('429'), { response: { headers: { 'retry-after': 0.1 } } }))
  await executeWithFallback(header.operation, { operationName: 'op', retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 } })
  assert.ok(header.gaps()[0] >= 95, `${header.gaps()[0]} ms`)
})

test('without a retry option results keep the contract\'s exact shapes', async () => {
  const ok = await executeWithFallback(async () => 1, { operationName: 'op' })
  assert.deepEqual(Object.keys(ok).sort(), ['data', 'message', 'success', 'timestamp'])
  const failed = await executeWithFallback(async () => { throw new Error('x') }, { operationName: 'op' })
  assert.deepEqual(failed.metadata, { usedFallback: false, originalError: 'x' })
})

test('skipThreshold: with allowSkip, skip without calling once the service keeps failing', async () => {
  let calls = 0
  const down = async () => { calls++; throw new Error('503') }
  const options = { operationName: 'post', service: 'facebook', allowSkip: true, skipThreshold: 3 }
  for (let i = 0; i < 3; i++) {
    const result = await executeWithFallback(down, options)
    assert.equal(result.metadata.skippedWithoutCalling, undefined)
  }
  assert.equal(calls, 3)
  const skipped = await executeWithFallback(down, options)
  assert.equal(calls, 3, 'not called')
  assert.deepEqual(skipped, {
    success: true,
    data: undefined,
    message: MESSAGES.skip,
    timestamp: skipped.timestamp,
    metadata: { usedFallback: true, fallbackType: 'skip', skippedWithoutCalling: true },
  })
  assert.equal(integrationFailureManager.getFailures('facebook').length, 3, 'a skip up front records no failure')
  await executeWithFallback(down, { ...options, allowSkip: false })
  assert.equal(calls, 4, 'skipThreshold needs allowSkip')
})

test('bad retry options reject with a TypeError or RangeError naming them', async () => {
  const cases = [
    [{ retry: 3 }, TypeError, /"options.retry" property must be of type object/],
    [{ retry: { maxRetries: -1 } }, RangeError, /"options.retry.maxRetries"/],
    [{ retry: { baseDelayMs: 'x' } }, TypeError, /"options.retry.baseDelayMs" property must be of type number/],
    [{ retry: { jitter: 'full' } }, TypeError, /"options.retry.jitter" property must be one of 'decorrelated', 'none'/],
    [{ retry: { retryIf: true } }, TypeError, /"options.retry.retryIf" property must be of type function/],
    [{ skipThreshold: -2 }, RangeError, /"options.skipThreshold"/],
  ]
  for (const [extra, type, message] of cases) {
    await assert.rejects(executeWithFallback(async () => 1, { operationName: 'op', ...extra }), (error) => {
      assert.ok(error instanceof type, String(error))
      assert.ok(error.code)
      assert.match(error.message, message)
      return true
    })
  }
})
