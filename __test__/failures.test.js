'use strict'

// IntegrationFailureManager (API.md §5): the skip window, bounds per service
// and in services, snapshots, stats and clearing.

const test = require('node:test')
const assert = require('node:assert/strict')

const { IntegrationFailureManager, integrationFailureManager } = require('..')
const { isRecentDate, sleep, assertThrowsCoded } = require('./helpers')

test('recordFailure then getFailures returns IntegrationFailure snapshots, oldest first', () => {
  const manager = new IntegrationFailureManager()
  manager.recordFailure('facebook', 'post', 'HTTP 500', 'Service temporarily unavailable: HTTP 500')
  manager.recordFailure('instagram', 'post', 'timeout', 'r2')
  manager.recordFailure('facebook', 'comment', 'HTTP 502', 'r3')
  const facebook = manager.getFailures('facebook')
  assert.equal(facebook.length, 2)
  assert.deepEqual(Object.keys(facebook[0]), ['service', 'operation', 'error', 'timestamp', 'skipReason'])
  assert.equal(facebook[0].operation, 'post')
  assert.equal(facebook[0].error, 'HTTP 500')
  assert.equal(facebook[0].skipReason, 'Service temporarily unavailable: HTTP 500')
  assert.ok(isRecentDate(facebook[0].timestamp))
  assert.equal(facebook[1].operation, 'comment')
  assert.deepEqual(manager.getFailures().map((f) => f.skipReason), ['Service temporarily unavailable: HTTP 500', 'r2', 'r3'])
  assert.deepEqual(manager.getFailures('nobody'), [])
  facebook[0].error = 'changed'
  assert.equal(manager.getFailures('facebook')[0].error, 'HTTP 500')
})

test('shouldSkipService: at least threshold failures (default 3) inside the window', async () => {
  const manager = new IntegrationFailureManager({ windowMs: 60 })
  assert.equal(manager.shouldSkipService('svc'), false)
  manager.recordFailure('svc', 'op', 'e', 'r')
  manager.recordFailure('svc', 'op', 'e', 'r')
  assert.equal(manager.shouldSkipService('svc'), false)
  assert.equal(manager.shouldSkipService('svc', 2), true)
  manager.recordFailure('svc', 'op', 'e', 'r')
  assert.equal(manager.shouldSkipService('svc'), true)
  assert.equal(manager.shouldSkipService('svc', 4), false)
  assert.equal(manager.shouldSkipService('other', 1), false)
  await sleep(100)
  assert.equal(manager.shouldSkipService('svc', 1), false, 'old failures fall out of the window')
  assert.equal(manager.getStats().svc.count, 3, 'but stay in the history')
})

test('the default window is 5 minutes', () => {
  const manager = new IntegrationFailureManager()
  for (let i = 0; i < 3; i++) manager.recordFailure('svc', 'op', 'e', 'r')
  assert.equal(manager.shouldSkipService('svc', 3), true)
})

test('history is bounded per service, so a noisy service cannot push out another', () => {
  const manager = new IntegrationFailureManager({ maxPerService: 5 })
  manager.recordFailure('quiet', 'op', 'q', 'r')
  for (let i = 0; i < 50; i++) manager.recordFailure('noisy', 'op', `e${i}`, 'r')
  assert.deepEqual(manager.getFailures('noisy').map((f) => f.error), ['e45', 'e46', 'e47', 'e48', 'e49'])
  assert.equal(manager.getFailures('quiet').length, 1)
  const defaults = new IntegrationFailureManager()
  for (let i = 0; i < 150; i++) defaults.recordFailure('noisy', 'op', `e${i}`, 'r')
  assert.equal(defaults.getFailures('noisy').length, 100)
})

test('services tracked are bounded: past 10,000 the least recently failed go first', () => {
  const manager = new IntegrationFailureManager()
  manager.recordFailure('first', 'op', 'e', 'r')
  manager.recordFailure('second', 'op', 'e', 'r')
  for (let i = 0; i < 9998; i++) manager.recordFailure(`svc${i}`, 'op', 'e', 'r')
  manager.recordFailure('first', 'op', 'e', 'r')
  manager.recordFailure('one more', 'op', 'e', 'r')
  const stats = manager.getStats()
  assert.equal(Object.keys(stats).length, 10_000)
  assert.ok('first' in stats, 'recently failed again, so kept')
  assert.ok(!('second' in stats), 'least recently failed, so dropped')
})

test('getStats: count and lastFailure (a Date) per service', async () => {
  const manager = new IntegrationFailureManager()
  assert.deepEqual(manager.getStats(), {})
  manager.recordFailure('a', 'op', 'e', 'r')
  await sleep(5)
  manager.recordFailure('a', 'op', 'e', 'r')
  manager.recordFailure('b', 'op', 'e', 'r')
  const stats = manager.getStats()
  assert.equal(stats.a.count, 2)
  assert.equal(stats.b.count, 1)
  assert.ok(stats.a.lastFailure instanceof Date)
  assert.equal(stats.a.lastFailure.getTime(), manager.getFailures('a')[1].timestamp.getTime())
})

test('a service named __proto__ is an ordinary key in getStats', () => {
  const manager = new IntegrationFailureManager()
  manager.recordFailure('__proto__', 'op', 'e', 'r')
  const stats = manager.getStats()
  assert.equal(Object.getPrototypeOf(stats), Object.prototype)
  assert.deepEqual(Object.keys(stats), ['__proto__'])
  assert.equal(stats['__proto__'].count, 1) // eslint-disable-line dot-notation
})

test('clearFailures(service) clears one; clearFailures() clears all', () => {
  const manager = new IntegrationFailureManager()
  manager.recordFailure('a', 'op', 'e', 'r')
  manager.recordFailure('b', 'op', 'e', 'r')
  assert.equal(manager.clearFailures('a'), true)
  assert.deepEqual(Object.keys(manager.getStats()), ['b'])
  assert.equal(manager.clearFailures('a'), false)
  manager.clearFailures()
  assert.deepEqual(manager.getStats(), {})
  assert.deepEqual(manager.getFailures(), [])
})

test('bad input is a TypeError/RangeError naming the argument; nothing recorded', () => {
  const manager = new IntegrationFailureManager()
  assertThrowsCoded(assert, () => manager.recordFailure(1, 'op', 'e', 'r'), TypeError, 'ERR_INVALID_ARG_TYPE', /"service" argument/)
  assertThrowsCoded(assert, () => manager.recordFailure('s', 'op', 'e'), TypeError, 'ERR_INVALID_ARG_TYPE', /"skipReason" argument/)
  assertThrowsCoded(assert, () => manager.shouldSkipService('s', -1), RangeError, 'ERR_OUT_OF_RANGE', /"threshold"/)
  assertThrowsCoded(assert, () => manager.shouldSkipService('s', NaN), RangeError, 'ERR_OUT_OF_RANGE', /"threshold"/)
  assertThrowsCoded(assert, () => manager.shouldSkipService(), TypeError, 'ERR_INVALID_ARG_TYPE', /"service"/)
  assertThrowsCoded(assert, () => manager.getFailures(5), TypeError, 'ERR_INVALID_ARG_TYPE', /"service"/)
  assertThrowsCoded(assert, () => new IntegrationFailureManager({ windowMs: 'long' }), TypeError, 'ERR_INVALID_ARG_TYPE', /"options.windowMs"/)
  assertThrowsCoded(assert, () => new IntegrationFailureManager({ maxServices: 1 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option/)
  assert.deepEqual(manager.getStats(), {})
})

test('instances are independent of each other and of the singleton', () => {
  const manager = new IntegrationFailureManager()
  manager.recordFailure('x', 'op', 'e', 'r')
  assert.deepEqual(new IntegrationFailureManager().getStats(), {})
  assert.deepEqual(integrationFailureManager.getFailures('x'), [])
  assert.ok(integrationFailureManager instanceof IntegrationFailureManager)
})
