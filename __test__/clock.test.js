'use strict'

// Time follows the JavaScript clock (Date.now), so the contract's real
// defaults (24 h TTL, 5 min window, 5 min lease, 1 min backoff) can be
// checked with node:test's fake timers instead of waiting.

const test = require('node:test')
const assert = require('node:assert/strict')

const { AIResponseCache, BackgroundJobQueue, IntegrationFailureManager, executeWithFallback } = require('..')

const MIN = 60_000
const START = Date.UTC(2030, 0, 1)

test.beforeEach((t) => t.mock.timers.enable({ apis: ['Date'], now: START }))

test('cache entries live exactly 24 hours by default', (t) => {
  const cache = new AIResponseCache()
  cache.set('p', 1, 'm')
  const entry = cache.get('p', 'm')
  assert.equal(entry.timestamp.getTime(), START)
  assert.equal(entry.expiresAt.getTime(), START + 24 * 60 * MIN)
  t.mock.timers.tick(24 * 60 * MIN)
  assert.equal(cache.get('p', 'm').response, 1, 'still live at expiresAt')
  t.mock.timers.tick(1)
  assert.equal(cache.get('p', 'm'), null)
  assert.equal(cache.getStats().size, 0)
})

test('the skip window is 5 minutes by default', (t) => {
  const manager = new IntegrationFailureManager()
  manager.recordFailure('svc', 'op', 'e', 'r')
  t.mock.timers.tick(MIN)
  manager.recordFailure('svc', 'op', 'e', 'r')
  manager.recordFailure('svc', 'op', 'e', 'r')
  assert.equal(manager.shouldSkipService('svc'), true)
  t.mock.timers.tick(4 * MIN)
  assert.equal(manager.shouldSkipService('svc'), true, 'the first failure is exactly 5 min old')
  t.mock.timers.tick(1)
  assert.equal(manager.shouldSkipService('svc'), false)
  assert.equal(manager.shouldSkipService('svc', 2), true)
  assert.equal(manager.getStats().svc.lastFailure.getTime(), START + MIN)
})

test('a failed job is ready again after exactly 1 minute', (t) => {
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue({ type: 'ai', operation: 'o', payload: {}, userId: 'u', priority: 'high', retryCount: 0, maxRetries: 3 })
  queue.dequeue()
  queue.fail(id, 'boom')
  assert.equal(queue.getAll()[0].nextRetryAt.getTime(), START + MIN)
  t.mock.timers.tick(MIN - 1)
  assert.equal(queue.dequeue(), null)
  t.mock.timers.tick(1)
  assert.equal(queue.dequeue().id, id)
  queue.fail(id, 'again')
  assert.equal(queue.getAll()[0].nextRetryAt.getTime(), START + MIN + 5 * MIN)
})

test('the default lease is 5 minutes', (t) => {
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue({ type: 'ai', operation: 'o', payload: {}, userId: 'u', priority: 'high', retryCount: 0, maxRetries: 3 })
  queue.dequeue()
  t.mock.timers.tick(5 * MIN)
  assert.equal(queue.getStats().processing, 1)
  t.mock.timers.tick(1)
  const [job] = queue.getAll()
  assert.equal(job.id, id)
  assert.equal(job.status, 'pending')
  assert.equal(job.lastError, 'lease expired')
  assert.equal(job.nextRetryAt.getTime(), START + 5 * MIN + MIN, 'the retry is counted from the lease deadline')
})

test('result timestamps come from the same clock', async () => {
  const result = await executeWithFallback(() => 1, { operationName: 'op' })
  assert.equal(result.timestamp.getTime(), START)
})
