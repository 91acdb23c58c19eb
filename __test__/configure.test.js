'use strict'

// configure (API.md §10): the singletons' bounds, applied at once, checked
// whole before anything changes.

const test = require('node:test')
const assert = require('node:assert/strict')

const { configure, aiResponseCache, backgroundJobQueue, integrationFailureManager } = require('..')
const { resetSingletons, sleep, assertThrowsCoded } = require('./helpers')

const DEFAULTS = {
  cache: { maxEntries: 10_000, maxBytes: 256 * 1024 * 1024, defaultTtlMs: 24 * 60 * 60 * 1000, staleIfErrorMs: 0 },
  queue: { maxSize: 10_000, leaseMs: 5 * 60 * 1000, maxPayloadBytes: 1024 * 1024 },
  failures: { windowMs: 5 * 60 * 1000, maxPerService: 100 },
}

test.beforeEach(() => {
  configure(DEFAULTS)
  resetSingletons()
})

test('a lower cache bound applies at once, evicting least recently used', () => {
  for (let i = 0; i < 10; i++) aiResponseCache.set(`p${i}`, i, 'm')
  aiResponseCache.get('p0', 'm')
  configure({ cache: { maxEntries: 3 } })
  const stats = aiResponseCache.getStats()
  assert.equal(stats.size, 3)
  assert.equal(stats.evictions, 7)
  assert.equal(aiResponseCache.get('p0', 'm').response, 0)
  assert.equal(aiResponseCache.get('p1', 'm'), null)
})

test('defaultTtlMs sets the TTL of later entries', async () => {
  configure({ cache: { defaultTtlMs: 20 } })
  aiResponseCache.set('p', 1, 'm')
  const entry = aiResponseCache.get('p', 'm')
  assert.equal(entry.expiresAt - entry.timestamp, 20)
  await sleep(40)
  assert.equal(aiResponseCache.get('p', 'm'), null)
})

test('a lower queue bound evicts finished jobs but never a live one', () => {
  const job = { type: 'ai', operation: 'o', payload: 1, userId: 'u', priority: 'low', retryCount: 0, maxRetries: 3 }
  const ids = Array.from({ length: 5 }, () => backgroundJobQueue.enqueue(job))
  backgroundJobQueue.complete(ids[0])
  backgroundJobQueue.complete(ids[1])
  configure({ queue: { maxSize: 2 } })
  const stats = backgroundJobQueue.getStats()
  assert.equal(stats.completed, 0)
  assert.equal(stats.pending, 3, 'live jobs stay even above the bound')
  assertThrowsCoded(assert, () => backgroundJobQueue.enqueue(job), Error, 'QUEUE_FULL')
})

test('queue leaseMs and maxPayloadBytes apply to the singleton', async () => {
  configure({ queue: { leaseMs: 20, maxPayloadBytes: 10 } })
  assertThrowsCoded(
    assert,
    () => backgroundJobQueue.enqueue({ type: 'ai', operation: 'o', payload: 'x'.repeat(20), userId: 'u', priority: 'low', retryCount: 0, maxRetries: 3 }),
    RangeError,
    'PAYLOAD_TOO_LARGE',
  )
  const id = backgroundJobQueue.enqueue({ type: 'ai', operation: 'o', payload: 1, userId: 'u', priority: 'low', retryCount: 0, maxRetries: 3 })
  backgroundJobQueue.dequeue()
  await sleep(40)
  assert.equal(backgroundJobQueue.getAll().find((j) => j.id === id).lastError, 'lease expired')
})

test('failure window and per-service bound apply to the singleton', () => {
  configure({ failures: { maxPerService: 2 } })
  for (let i = 0; i < 5; i++) integrationFailureManager.recordFailure('svc', 'op', `e${i}`, 'r')
  assert.deepEqual(integrationFailureManager.getFailures('svc').map((f) => f.error), ['e3', 'e4'])
  configure({ failures: { maxPerService: 1 } })
  assert.deepEqual(integrationFailureManager.getFailures('svc').map((f) => f.error), ['e4'], 'lower bound applies at once')
})

test('settings not named keep their values', () => {
  configure({ cache: { maxEntries: 2 } })
  configure({ cache: { defaultTtlMs: 1000 } })
  for (let i = 0; i < 5; i++) aiResponseCache.set(`p${i}`, i, 'm')
  assert.equal(aiResponseCache.getStats().size, 2)
})

test('unknown keys and wrong types are a TypeError, and nothing changes', () => {
  aiResponseCache.set('keep', 1, 'm')
  const cases = [
    [{ cache: { maxEntries: 1 }, queues: {} }, TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option "options.queues"/],
    [{ cache: { maxEntries: 1, ttl: 5 } }, TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option "options.cache.ttl"/],
    [{ cache: { maxEntries: 1 }, queue: { maxSize: 'big' } }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options.queue.maxSize" property must be of type number/],
    [{ cache: { maxEntries: 1 }, failures: { windowMs: -1 } }, RangeError, 'ERR_OUT_OF_RANGE', /"options.failures.windowMs"/],
    [{ cache: 5 }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options.cache" property must be of type object/],
    [undefined, TypeError, 'ERR_INVALID_ARG_TYPE', /"options" argument/],
    [null, TypeError, 'ERR_INVALID_ARG_TYPE', /"options" argument/],
  ]
  for (const [options, type, code, message] of cases) {
    assertThrowsCoded(assert, () => configure(options), type, code, message)
  }
  aiResponseCache.set('other', 2, 'm')
  assert.equal(aiResponseCache.getStats().size, 2, 'maxEntries: 1 was never applied')
})

test('configure({}) is allowed and changes nothing', () => {
  configure({})
  aiResponseCache.set('a', 1, 'm')
  assert.equal(aiResponseCache.getStats().size, 1)
})

test('redact: a function, or undefined/null for the default; anything else a TypeError, with nothing changed', () => {
  configure({ redact: (message) => message })
  configure({ redact: null })
  configure({ redact: undefined, cache: { maxEntries: 3 } })
  for (let i = 0; i < 5; i++) aiResponseCache.set(`p${i}`, i, 'm')
  assert.equal(aiResponseCache.getStats().size, 3, 'the other settings of the same call apply')
  for (const redact of [42, 'mask', {}, true]) {
    assertThrowsCoded(assert, () => configure({ redact, cache: { maxEntries: 1 } }), TypeError, 'ERR_INVALID_ARG_TYPE', /"options\.redact" property must be of type function/)
  }
  assert.equal(aiResponseCache.getStats().size, 3, 'maxEntries: 1 was never applied')
  assertThrowsCoded(assert, () => configure({ redact: () => '', nope: 1 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Known options: .*, redact$/)
  assertThrowsCoded(assert, () => configure({ nope: 1 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Known options: .*, redact$/)
  configure({ redact: undefined })
})
