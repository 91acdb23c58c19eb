'use strict'

// The behaviour both implementations share: the native package and the
// benchmark's plain JavaScript reference (bench/reference) run the same
// checks, so the benchmark compares two implementations of one contract.
// What only the native package does (bounds, JSON copies, error codes) is
// tested in the other files.

const test = require('node:test')
const assert = require('node:assert/strict')

const { MESSAGES } = require('./helpers')

const implementations = {
  native: require('..'),
  reference: require('../bench/reference'),
}

const boom = async () => {
  throw new Error('boom')
}

for (const [name, lib] of Object.entries(implementations)) {
  test.describe(name, () => {
    test.beforeEach(() => {
      lib.aiResponseCache.clear()
      lib.integrationFailureManager.clearFailures()
    })

    test('success, and caching under cacheKey', async () => {
      const result = await lib.executeWithFallback(async () => ({ a: 1 }), { operationName: 'op', cacheKey: { prompt: 'p', modelId: 'm' } })
      assert.equal(result.success, true)
      assert.deepEqual(result.data, { a: 1 })
      assert.equal(result.message, 'Operation completed successfully')
      assert.deepEqual(lib.aiResponseCache.get('p', 'm').response, { a: 1 })
    })

    test('failure order: cache, default, queue, skip, default, fail', async () => {
      const options = {
        operationName: 'op',
        userId: 'u',
        cacheKey: { prompt: 'order', modelId: 'm' },
        defaultValue: 'd',
        queueOnFailure: { type: 'ai', payload: { x: 1 } },
        allowSkip: true,
      }
      lib.aiResponseCache.set('order', 'cached', 'm')
      let result = await lib.executeWithFallback(boom, options)
      assert.deepEqual([result.data, result.message, result.metadata.fallbackType], ['cached', MESSAGES.cache, 'cache'])
      lib.aiResponseCache.clear()
      result = await lib.executeWithFallback(boom, options)
      assert.deepEqual([result.data, result.message, result.metadata.fallbackType], ['d', MESSAGES.default, 'default'])
      delete options.defaultValue
      result = await lib.executeWithFallback(boom, options)
      assert.deepEqual([result.message, result.metadata.fallbackType], [MESSAGES.queue, 'queue'])
      assert.match(result.metadata.jobId, /^job_\d+_[0-9a-z]{9}$/)
      delete options.userId
      result = await lib.executeWithFallback(boom, options)
      assert.deepEqual([result.message, result.metadata.fallbackType], [MESSAGES.skip, 'skip'])
      delete options.cacheKey
      options.defaultValue = 'late default'
      delete options.allowSkip
      result = await lib.executeWithFallback(boom, options)
      assert.deepEqual([result.data, result.metadata.fallbackType], ['late default', 'default'])
      delete options.defaultValue
      result = await lib.executeWithFallback(boom, options)
      // The contract's fields; the native package adds errorClass (classify.test.js).
      const { errorClass, ...contract } = result.metadata
      assert.deepEqual([result.success, result.message, contract], [false, 'boom', { usedFallback: false, originalError: 'boom' }])
      assert.ok(errorClass === undefined || errorClass === 'other')
    })

    test('building blocks and messages', async () => {
      assert.equal(lib.getUserFriendlyMessage(new Error('x'), 'skip'), MESSAGES.skip)
      assert.equal(lib.getUserFriendlyMessage(new Error('x'), 'nope'), MESSAGES.generic)
      assert.deepEqual(await lib.fallbackToCachedAI('none', 'm'), { success: false, usedFallback: false, fallbackType: 'cache', message: 'No cached response available' })
      assert.equal((await lib.fallbackToCachedAI('none', 'm', 1)).fallbackType, 'default')
      const skipped = lib.skipFailedIntegration('svc', 'op', new Error('down'))
      assert.equal(skipped.message, 'Skipped svc integration - Service temporarily unavailable: down')
      const queued = lib.queueForLater('ai', 'op', {}, 'u')
      assert.equal(queued.message, `Job queued for later processing (ID: ${queued.data})`)
    })

    test('queue: priority then FIFO, backoff, stats', () => {
      const queue = new lib.BackgroundJobQueue()
      const base = { type: 'ai', operation: 'o', payload: {}, userId: 'u', retryCount: 0, maxRetries: 2 }
      const low = queue.enqueue({ ...base, priority: 'low' })
      const high = queue.enqueue({ ...base, priority: 'high' })
      const medium = queue.enqueue({ ...base, priority: 'medium' })
      assert.deepEqual([queue.dequeue().id, queue.dequeue().id, queue.dequeue().id], [high, medium, low])
      queue.complete(high)
      queue.fail(medium, 'e')
      const retried = queue.getAll().find((j) => j.id === medium)
      assert.equal(retried.status, 'pending')
      assert.ok(Math.abs(retried.nextRetryAt.getTime() - Date.now() - 60_000) < 1000)
      queue.fail(medium, 'e')
      assert.deepEqual(queue.getStats(), { total: 3, pending: 0, processing: 1, completed: 1, failed: 1 })
      queue.clearCompleted()
      assert.equal(queue.getStats().total, 2)
    })

    test('failures: window threshold and per-service stats', () => {
      const manager = new lib.IntegrationFailureManager()
      for (let i = 0; i < 3; i++) manager.recordFailure('a', 'op', 'e', 'r')
      manager.recordFailure('b', 'op', 'e', 'r')
      assert.equal(manager.shouldSkipService('a'), true)
      assert.equal(manager.shouldSkipService('b'), false)
      assert.equal(manager.getStats().a.count, 3)
      manager.clearFailures('a')
      assert.equal(manager.shouldSkipService('a'), false)
    })
  })
}
