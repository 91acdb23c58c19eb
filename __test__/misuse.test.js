'use strict'

// Mistakes a caller can make that JavaScript itself would report without a
// `code`: calling a class without `new`, calling a method on the wrong
// `this`; and hostile values that must not crash or corrupt anything.

const test = require('node:test')
const assert = require('node:assert/strict')

const lib = require('..')
const { AIResponseCache, BackgroundJobQueue, IntegrationFailureManager, aiResponseCache, executeWithFallback } = lib
const { assertThrowsCoded } = require('./helpers')

test('calling a class without new is a TypeError with a code, and wraps nothing', () => {
  for (const Class of [AIResponseCache, BackgroundJobQueue, IntegrationFailureManager]) {
    const target = {}
    assertThrowsCoded(assert, () => Class(), TypeError, 'ERR_CONSTRUCT_CALL_REQUIRED', new RegExp(`${Class.name} cannot be invoked without 'new'`))
    assertThrowsCoded(assert, () => Class.call(target), TypeError, 'ERR_CONSTRUCT_CALL_REQUIRED')
    assert.deepEqual(Object.keys(target), [])
  }
})

test('a method on the wrong this is a TypeError with ERR_INVALID_THIS', () => {
  const { get } = aiResponseCache
  assertThrowsCoded(assert, () => get('a', 'b'), TypeError, 'ERR_INVALID_THIS', /must be of type AIResponseCache/)
  assertThrowsCoded(assert, () => AIResponseCache.prototype.get.call({}, 'a', 'b'), TypeError, 'ERR_INVALID_THIS')
  assertThrowsCoded(assert, () => BackgroundJobQueue.prototype.dequeue.call(aiResponseCache), TypeError, 'ERR_INVALID_THIS', /BackgroundJobQueue/)
})

test('classes can be subclassed and instances keep working', () => {
  class TenantCache extends AIResponseCache {}
  const cache = new TenantCache({ maxEntries: 5 })
  cache.set('p', 1, 'm')
  assert.equal(cache.get('p', 'm').response, 1)
  assert.ok(cache instanceof AIResponseCache)
  assert.ok(aiResponseCache instanceof AIResponseCache)
})

test('an object that is instanceof Error counts as an Error', async () => {
  const fake = Object.create(Error.prototype)
  fake.message = 'from the prototype chain'
  const result = await executeWithFallback(async () => { throw fake }, { operationName: 'op' })
  assert.equal(result.message, 'from the prototype chain')
  assert.equal(result.error, fake)
})

test('hostile values: throwing getters, toJSON and Symbol.hasInstance do not crash', async () => {
  const cache = new AIResponseCache()
  const hostile = { toJSON() { throw new Error('no JSON for you') } }
  assertThrowsCoded(assert, () => cache.set('p', hostile, 'm'), TypeError, 'ERR_INVALID_ARG_VALUE', /no JSON for you/)
  const options = { get operationName() { throw new Error('getter') } }
  await assert.rejects(executeWithFallback(async () => 1, options), /getter/)
  const weird = { [Symbol.hasInstance]: 1, get message() { throw new Error('message getter') } }
  const result = await executeWithFallback(async () => { throw weird }, { operationName: 'op' })
  assert.equal(result.success, false)
  assert.equal(typeof result.message, 'string')
  const reentrant = { toJSON() { cache.clear(); aiResponseCache.set('inner', 1, 'm'); return 'outer' } }
  cache.set('re', reentrant, 'm')
  assert.equal(cache.get('re', 'm').response, 'outer')
})

test('a clock far in the future still gives real Dates', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 0 })
  Date.now = () => 1e20
  const queue = new BackgroundJobQueue()
  queue.enqueue({ type: 'ai', operation: 'o', payload: 1, userId: 'u', priority: 'low', retryCount: 0, maxRetries: 3 })
  const [job] = queue.getAll()
  assert.ok(job.createdAt instanceof Date && !Number.isNaN(job.createdAt.getTime()))
  assert.ok(job.updatedAt instanceof Date && !Number.isNaN(job.updatedAt.getTime()))
})
