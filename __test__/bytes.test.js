'use strict'

// Byte bounds (issue #12 item 7): the queue's `maxBytes` and the failure
// history's `maxBytes`. Runs on both backends (scripts/test-js.js).

const test = require('node:test')
const assert = require('node:assert/strict')

const {
  BackgroundJobQueue,
  IntegrationFailureManager,
  backgroundJobQueue,
  integrationFailureManager,
  configure,
  executeWithFallback,
} = require('..')
const { resetSingletons, assertThrowsCoded } = require('./helpers')

const MiB = 1024 * 1024
const utf8 = (text) => Buffer.byteLength(text ?? '', 'utf8')

function job(overrides = {}) {
  return { type: 'ai', operation: 'op', payload: 'x'.repeat(1000), userId: 'u', priority: 'low', retryCount: 0, maxRetries: 3, ...overrides }
}

/** What a job holds as the queue counts it: the UTF-8 of its strings. */
function bytesOf(queued) {
  const payload = queued.payload === undefined ? '' : JSON.stringify(queued.payload)
  return [queued.id, queued.type, queued.operation, payload, queued.userId, queued.lastError].reduce((sum, text) => sum + utf8(text), 0)
}

/** The bytes `job(overrides)` will hold once enqueued (ids have one length until 2286). */
const sizeOf = (overrides) => bytesOf({ ...job(overrides), id: `job_${Date.now()}_000000000` })

const ids = (queue) => queue.getAll().map((j) => j.id)

test('enqueue is refused with QUEUE_FULL when live jobs fill maxBytes, and nothing is dropped', () => {
  const one = sizeOf()
  const queue = new BackgroundJobQueue({ maxBytes: 3 * one })
  const live = [queue.enqueue(job()), queue.enqueue(job()), queue.enqueue(job())]
  assert.equal(queue.getAll().reduce((sum, j) => sum + bytesOf(j), 0), 3 * one)
  assertThrowsCoded(assert, () => queue.enqueue(job({ payload: 1 })), Error, 'QUEUE_FULL', /bytes/)
  assert.deepEqual(ids(queue), live)
  assert.ok(queue.getAll().every((j) => j.status === 'pending'))
  // The same error as a queue full of jobs (maxSize).
  const bySize = new BackgroundJobQueue({ maxSize: 1 })
  bySize.enqueue(job())
  let sizeError
  try {
    bySize.enqueue(job())
  } catch (error) {
    sizeError = error
  }
  assertThrowsCoded(assert, () => queue.enqueue(job()), sizeError.constructor, sizeError.code)
})

test('finished jobs are evicted, first finished first, to make room in bytes', () => {
  const one = sizeOf()
  const queue = new BackgroundJobQueue({ maxBytes: 3 * one })
  const [a, b, c] = [queue.enqueue(job()), queue.enqueue(job()), queue.enqueue(job())]
  queue.complete(b)
  queue.complete(a)
  const d = queue.enqueue(job())
  assert.deepEqual(ids(queue), [a, c, d], 'b finished first and went first')
  // A job twice as large takes the room of the two finished ones.
  queue.complete(c)
  const big = queue.enqueue(job({ payload: 'x'.repeat(1000 + one) }))
  assert.deepEqual(ids(queue), [d, big])
  // A refused enqueue evicts nothing, even when some finished jobs could go.
  queue.complete(d)
  assertThrowsCoded(assert, () => queue.enqueue(job({ payload: 'x'.repeat(3000) })), Error, 'QUEUE_FULL', /bytes/)
  assert.deepEqual(ids(queue), [d, big])
})

test('a failed attempt\'s error text counts toward maxBytes', () => {
  const one = sizeOf()
  const small = { payload: undefined, operation: 'o' }
  const room = 2 * one + sizeOf(small)
  const untouched = new BackgroundJobQueue({ maxBytes: room })
  untouched.enqueue(job())
  untouched.enqueue(job())
  untouched.enqueue(job(small))
  const failed = new BackgroundJobQueue({ maxBytes: room })
  const a = failed.enqueue(job())
  failed.enqueue(job())
  assert.equal(failed.fail(a, 'é'.repeat(20)), true)
  assert.equal(bytesOf(failed.getAll()[0]), one + 40)
  assertThrowsCoded(assert, () => failed.enqueue(job(small)), Error, 'QUEUE_FULL', /bytes/)
})

test('a job larger than the whole maxBytes is a RangeError with PAYLOAD_TOO_LARGE', () => {
  const queue = new BackgroundJobQueue({ maxBytes: 500 })
  const done = queue.enqueue(job({ payload: 'small' }))
  queue.complete(done)
  assertThrowsCoded(assert, () => queue.enqueue(job()), RangeError, 'PAYLOAD_TOO_LARGE', /maxBytes/)
  assert.deepEqual(ids(queue), [done], 'nothing was evicted for it')
})

test('configure lowering queue.maxBytes evicts finished jobs at once, never live ones', async () => {
  resetSingletons()
  const one = sizeOf()
  const queue = backgroundJobQueue
  try {
    const jobs = Array.from({ length: 5 }, () => queue.enqueue(job()))
    queue.complete(jobs[3])
    queue.complete(jobs[1])
    configure({ queue: { maxBytes: 4 * one } })
    assert.deepEqual(ids(queue), [jobs[0], jobs[1], jobs[2], jobs[4]], 'the first to finish went')
    configure({ queue: { maxBytes: one } })
    assert.deepEqual(queue.getStats(), { total: 3, pending: 3, processing: 0, completed: 0, failed: 0 })
    assertThrowsCoded(assert, () => queue.enqueue(job({ payload: 1 })), Error, 'QUEUE_FULL', /bytes/)
    // In the fallback chain a queue full by bytes passes the request on.
    const result = await executeWithFallback(async () => { throw new Error('down') }, {
      operationName: 'bytes-full',
      userId: 'u',
      queueOnFailure: { type: 'ai', payload: {} },
      allowSkip: true,
    })
    assert.equal(result.metadata.fallbackType, 'skip')
  } finally {
    configure({ queue: { maxBytes: 256 * MiB } })
    resetSingletons()
  }
})

/** The failures held, as `service:error`, oldest first. */
const held = (history) => history.getFailures().map((f) => `${f.service}:${f.error}`)

test('the failure history is bounded by bytes: the oldest records go first, whatever their service', () => {
  // Each record: service (2) + operation (2) + error (2) + skipReason (4) = 10 bytes.
  const history = new IntegrationFailureManager({ maxBytes: 40 })
  const record = (service, error) => history.recordFailure(service, 'op', error, 'rrrr')
  record('a1', 'e1')
  record('b1', 'e2')
  record('a1', 'e3')
  record('c1', 'e4')
  assert.deepEqual(held(history), ['a1:e1', 'b1:e2', 'a1:e3', 'c1:e4'])
  record('c1', 'e5')
  record('a1', 'e6')
  assert.deepEqual(held(history), ['a1:e3', 'c1:e4', 'c1:e5', 'a1:e6'])
  assert.deepEqual(Object.keys(history.getStats()), ['a1', 'c1'], 'b1 lost its only record')
  // UTF-8 bytes: 'é' is two.
  record('b1', 'éé')
  assert.deepEqual(held(history), ['c1:e5', 'a1:e6', 'b1:éé'])
  // The newest record is kept even when it alone is over the bound.
  record('d1', 'x'.repeat(100))
  assert.equal(history.getFailures().length, 1)
  assert.equal(history.shouldSkipService('d1', 1), true)
})

test('configure lowering failures.maxBytes applies at once to the shared history', () => {
  integrationFailureManager.clearFailures()
  try {
    for (let i = 0; i < 10; i++) integrationFailureManager.recordFailure(['a1', 'b1', 'c1'][i % 3], 'op', `e${i}`, 'rrrr')
    configure({ failures: { maxBytes: 35 } })
    assert.deepEqual(held(integrationFailureManager), ['b1:e7', 'c1:e8', 'a1:e9'])
    integrationFailureManager.recordFailure('d1', 'op', 'e10', 'rrrr')
    assert.deepEqual(held(integrationFailureManager), ['c1:e8', 'a1:e9', 'd1:e10'])
  } finally {
    configure({ failures: { maxBytes: 64 * MiB } })
    integrationFailureManager.clearFailures()
  }
})

test('bad maxBytes values are coded errors naming the argument', () => {
  const cases = [
    [0, RangeError, 'ERR_OUT_OF_RANGE'],
    [-1, RangeError, 'ERR_OUT_OF_RANGE'],
    [1.5, RangeError, 'ERR_OUT_OF_RANGE'],
    [Infinity, RangeError, 'ERR_OUT_OF_RANGE'],
    ['x', TypeError, 'ERR_INVALID_ARG_TYPE'],
    [null, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ]
  for (const [value, type, code] of cases) {
    assertThrowsCoded(assert, () => new BackgroundJobQueue({ maxBytes: value }), type, code, /"options\.maxBytes"/)
    assertThrowsCoded(assert, () => configure({ queue: { maxBytes: value } }), type, code, /"options\.queue\.maxBytes"/)
    assertThrowsCoded(assert, () => new IntegrationFailureManager({ maxBytes: value }), type, code, /"options\.maxBytes"/)
    assertThrowsCoded(assert, () => configure({ failures: { maxBytes: value } }), type, code, /"options\.failures\.maxBytes"/)
  }
})
