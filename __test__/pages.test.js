'use strict'

// Listing in pages (`{ limit, offset }` on getAll, getByStatus, getByUser
// and getFailures) and clears that do not hold the JavaScript thread while
// a large store is freed (issue #12 item 10). The suite runs once in memory
// and once with every instance on a SQLite file (scripts/test-js.js), so
// each test here covers both stores. Timings are measured by
// bench/long-calls.js, not asserted here.

const test = require('node:test')
const assert = require('node:assert/strict')

const { AIResponseCache, BackgroundJobQueue, IntegrationFailureManager } = require('..')
const { assertThrowsCoded } = require('./helpers')

function job(i, overrides = {}) {
  return {
    type: 'analytics',
    operation: `op-${i}`,
    payload: { i },
    userId: i % 2 === 0 ? 'even' : 'odd',
    priority: ['low', 'medium', 'high'][i % 3],
    retryCount: 0,
    maxRetries: 0,
    ...overrides,
  }
}

/** A queue of 20 jobs: 0-4 completed, 5-7 failed, one processing, the rest pending. */
function mixedQueue() {
  const queue = new BackgroundJobQueue({ maxSize: 1000 })
  const ids = Array.from({ length: 20 }, (_, i) => queue.enqueue(job(i)))
  for (const id of ids.slice(0, 5)) assert.equal(queue.complete(id), true)
  for (const id of ids.slice(5, 8)) assert.equal(queue.fail(id, 'boom'), true)
  assert.ok(queue.dequeue())
  return { queue, ids }
}

const idsOf = (jobs) => jobs.map((j) => j.id)

// On Redis every call is a round trip (a few hundred µs here), and what a
// large clear must do there (run in batches of 100 to 500 per command) is
// shown by a tenth of the entries. In a SQLite file every set is a
// committed transaction: a quarter of the entries still takes many of the
// clear's batches, and the filling no longer outlasts the test timeout on
// a loaded machine. The full sizes are for memory.
const scale = process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL ? 10 : process.env.FALLBACK_MECHANISMS_DB ? 4 : 1

test('getAll pages are slices of the whole list, in enqueue order', () => {
  const queue = new BackgroundJobQueue()
  const ids = Array.from({ length: 12 }, (_, i) => queue.enqueue(job(i)))
  assert.deepEqual(idsOf(queue.getAll()), ids)
  assert.deepEqual(idsOf(queue.getAll({})), ids)
  assert.deepEqual(idsOf(queue.getAll(undefined)), ids)
  assert.deepEqual(idsOf(queue.getAll({ limit: 5 })), ids.slice(0, 5))
  assert.deepEqual(idsOf(queue.getAll({ limit: 5, offset: 5 })), ids.slice(5, 10))
  assert.deepEqual(idsOf(queue.getAll({ limit: 5, offset: 10 })), ids.slice(10))
  assert.deepEqual(idsOf(queue.getAll({ offset: 7 })), ids.slice(7))
  assert.deepEqual(idsOf(queue.getAll({ limit: 0 })), [])
  assert.deepEqual(idsOf(queue.getAll({ offset: 12 })), [])
  assert.deepEqual(idsOf(queue.getAll({ limit: 3, offset: Number.MAX_SAFE_INTEGER })), [])
  assert.deepEqual(idsOf(queue.getAll({ limit: Number.MAX_SAFE_INTEGER, offset: undefined })), ids)
  // Walking page by page gives the whole list once.
  const walked = []
  for (let offset = 0; offset < 100; offset += 5) {
    const page = queue.getAll({ limit: 5, offset })
    walked.push(...idsOf(page))
    if (page.length < 5) break
  }
  assert.deepEqual(walked, ids)
  // Pages hold whole jobs, shaped as getAll shapes them.
  assert.deepEqual(queue.getAll({ limit: 1, offset: 3 }), [queue.getAll()[3]])
})

test('getByStatus and getByUser pages follow enqueue order within the match', () => {
  const queue = new BackgroundJobQueue()
  const ids = Array.from({ length: 20 }, (_, i) => queue.enqueue(job(i)))
  for (const id of ids.slice(0, 5)) assert.equal(queue.complete(id), true)
  for (const id of ids.slice(5, 8)) assert.equal(queue.fail(id, 'boom'), true)
  const pending = ids.slice(8)
  assert.deepEqual(idsOf(queue.getByStatus('pending')), pending)
  assert.deepEqual(idsOf(queue.getByStatus('pending', { limit: 4 })), pending.slice(0, 4))
  assert.deepEqual(idsOf(queue.getByStatus('pending', { limit: 4, offset: 10 })), pending.slice(10))
  assert.deepEqual(idsOf(queue.getByStatus('completed', { offset: 1, limit: 2 })), ids.slice(1, 3))
  assert.deepEqual(idsOf(queue.getByStatus('failed', { offset: 2 })), ids.slice(7, 8))
  assert.deepEqual(idsOf(queue.getByStatus('processing', { limit: 10 })), [])
  for (const status of ['pending', 'completed', 'failed']) {
    for (const page of queue.getByStatus(status, { limit: 3, offset: 1 })) assert.equal(page.status, status)
  }

  const odd = ids.filter((_, i) => i % 2 === 1)
  assert.deepEqual(idsOf(queue.getByUser('odd')), odd)
  assert.deepEqual(idsOf(queue.getByUser('odd', { limit: 3, offset: 2 })), odd.slice(2, 5))
  assert.deepEqual(idsOf(queue.getByUser('odd', { offset: 9 })), odd.slice(9))
  assert.deepEqual(idsOf(queue.getByUser('nobody', { limit: 3 })), [])

  // A job that changes status moves between the status lists, keeping its
  // enqueue place.
  const taken = queue.dequeue()
  assert.deepEqual(idsOf(queue.getByStatus('processing', { limit: 5 })), [taken.id])
  assert.equal(queue.complete(taken.id), true)
  const completed = idsOf(queue.getByStatus('completed'))
  assert.deepEqual(completed, [...ids.slice(0, 5), taken.id])
  assert.deepEqual(idsOf(queue.getByStatus('completed', { offset: 5 })), [taken.id])
})

test('getFailures pages, for one service or all, oldest first', () => {
  const failures = new IntegrationFailureManager()
  for (let i = 0; i < 12; i++) failures.recordFailure(['a', 'b', 'c'][i % 3], `op-${i}`, `e${i}`, 'r')
  const ops = (list) => list.map((f) => f.operation)
  const all = Array.from({ length: 12 }, (_, i) => `op-${i}`)
  assert.deepEqual(ops(failures.getFailures()), all)
  assert.deepEqual(ops(failures.getFailures(undefined, { limit: 4 })), all.slice(0, 4))
  assert.deepEqual(ops(failures.getFailures(undefined, { limit: 4, offset: 6 })), all.slice(6, 10))
  assert.deepEqual(ops(failures.getFailures(undefined, { offset: 11 })), ['op-11'])
  assert.deepEqual(ops(failures.getFailures('b', { limit: 2, offset: 1 })), ['op-4', 'op-7'])
  assert.deepEqual(ops(failures.getFailures('b', { offset: 4 })), [])
  assert.deepEqual(ops(failures.getFailures('nobody', { limit: 1 })), [])
})

test('bad page options are coded errors naming the option', () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job(1))
  const failures = new IntegrationFailureManager()
  const calls = [
    (options) => queue.getAll(options),
    (options) => queue.getByStatus('pending', options),
    (options) => queue.getByUser('odd', options),
    (options) => failures.getFailures(undefined, options),
    (options) => failures.getFailures('svc', options),
  ]
  for (const call of calls) {
    for (const name of ['limit', 'offset']) {
      for (const bad of [-1, 1.5, NaN, Infinity, Number.MAX_SAFE_INTEGER + 2]) {
        assertThrowsCoded(assert, () => call({ [name]: bad }), RangeError, 'ERR_OUT_OF_RANGE', new RegExp(`"options\\.${name}"`))
      }
      for (const bad of ['5', null, 5n, {}, true]) {
        assertThrowsCoded(assert, () => call({ [name]: bad }), TypeError, 'ERR_INVALID_ARG_TYPE', new RegExp(`"options\\.${name}" property`))
      }
    }
    for (const bad of [null, 5, 'limit', [10]]) {
      assertThrowsCoded(assert, () => call(bad), TypeError, 'ERR_INVALID_ARG_TYPE', /"options" argument/)
    }
    assertThrowsCoded(assert, () => call({ limit: 1, size: 2 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option "options\.size"/)
  }
  // The other arguments are still checked first.
  assertThrowsCoded(assert, () => queue.getByStatus('done', { limit: 1 }), TypeError, 'ERR_INVALID_ARG_VALUE', /"status"/)
  assertThrowsCoded(assert, () => queue.getByUser(1, { limit: 1 }), TypeError, 'ERR_INVALID_ARG_TYPE', /"userId"/)
})

test('clearing 200k cache entries leaves an empty, working cache', () => {
  const cache = new AIResponseCache({ maxEntries: 250_000 })
  const n = 200_000 / scale
  for (let i = 0; i < n; i++) cache.set(`prompt ${i}`, { text: `answer ${i}` }, 'model')
  assert.equal(cache.get('prompt 7', 'model').response.text, 'answer 7')
  assert.equal(cache.getStats().size, n)
  cache.clear()
  const stats = cache.getStats()
  assert.equal(stats.size, 0)
  assert.equal(stats.hits, 0)
  assert.equal(stats.misses, 0)
  assert.equal(stats.bytes, 0)
  assert.equal(cache.get('prompt 7', 'model'), null)
  cache.set('prompt 7', { text: 'again' }, 'model')
  assert.equal(cache.get('prompt 7', 'model').response.text, 'again')
  assert.equal(cache.getStats().size, 1)
  // The totals still follow removals (in a file, a trigger keeps them).
  assert.equal(cache.delete('prompt 7', 'model'), true)
  assert.equal(cache.getStats().size, 0)
  assert.equal(cache.getStats().bytes, 0)
})

test('clearCompleted of 100k jobs removes exactly the completed ones', () => {
  const queue = new BackgroundJobQueue({ maxSize: 200_000 })
  const n = 100_000 / scale
  for (let i = 0; i < n; i++) queue.enqueue(job(i, { priority: 'medium', userId: 'bulk' }))
  const failed = queue.enqueue(job(-1, { userId: 'kept' }))
  assert.equal(queue.fail(failed, 'for good'), true)
  for (let taken = queue.dequeue(); taken; taken = queue.dequeue()) queue.complete(taken.id)
  const live = queue.enqueue(job(-2, { userId: 'kept' }))
  assert.equal(queue.getStats().completed, n)
  assert.equal(queue.clearCompleted(), n)
  assert.deepEqual(queue.getStats(), { total: 2, pending: 1, processing: 0, completed: 0, failed: 1 })
  assert.deepEqual(idsOf(queue.getAll()), [failed, live])
  assert.deepEqual(idsOf(queue.getByStatus('failed')), [failed])
  assert.equal(queue.clearCompleted(), 0)
  // The queue goes on working: its bound, retries and eviction order too.
  assert.equal(queue.retryFailed(), 1)
  const next = queue.dequeue()
  assert.ok(next.id === failed || next.id === live)
  assert.equal(queue.complete(next.id), true)
  assert.deepEqual(idsOf(queue.getByStatus('completed')), [next.id])
  assert.equal(queue.clearCompleted(), 1)
  assert.equal(queue.getStats().total, 1)
})

test('clearCompleted of a few among many keeps the rest in order', () => {
  const queue = new BackgroundJobQueue({ maxSize: 1000 })
  const ids = Array.from({ length: 100 }, (_, i) => queue.enqueue(job(i, { priority: 'medium' })))
  for (const id of [ids[3], ids[50], ids[99]]) assert.equal(queue.complete(id), true)
  assert.equal(queue.clearCompleted(), 3)
  const rest = ids.filter((id) => ![ids[3], ids[50], ids[99]].includes(id))
  assert.deepEqual(idsOf(queue.getAll()), rest)
  assert.deepEqual(idsOf(queue.getByStatus('pending', { offset: 95 })), rest.slice(95))
})

test('a mixed queue pages every status consistently with getStats', () => {
  const { queue } = mixedQueue()
  const stats = queue.getStats()
  let total = 0
  for (const status of ['pending', 'processing', 'completed', 'failed']) {
    const listed = []
    for (let offset = 0; offset < 100; offset += 2) {
      const page = queue.getByStatus(status, { limit: 2, offset })
      listed.push(...page)
      if (page.length < 2) break
    }
    assert.equal(listed.length, stats[status], status)
    assert.deepEqual(idsOf(listed), idsOf(queue.getByStatus(status)))
    total += listed.length
  }
  assert.equal(total, stats.total)
})
