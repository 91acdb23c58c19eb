'use strict'

// BackgroundJobQueue (API.md §4): ids, priority then FIFO, backoff, leases,
// capacity, payload bound, snapshots and bad input.

const test = require('node:test')
const assert = require('node:assert/strict')

const { BackgroundJobQueue, backgroundJobQueue, configure } = require('..')
const { isRecentDate, sleep, assertThrowsCoded, resetSingletons } = require('./helpers')

const MIN = 60_000

function job(overrides = {}) {
  return {
    type: 'analytics',
    operation: 'sync',
    payload: { contentId: 'c1' },
    userId: 'user-1',
    priority: 'medium',
    retryCount: 0,
    maxRetries: 3,
    ...overrides,
  }
}

test('enqueue returns a unique id of the form job_<ms>_<9 base-36 chars>', () => {
  const queue = new BackgroundJobQueue()
  const ids = new Set()
  for (let i = 0; i < 1000; i++) {
    const before = Date.now()
    const id = queue.enqueue(job())
    const match = /^job_(\d+)_([0-9a-z]{9})$/.exec(id)
    assert.ok(match, id)
    assert.ok(Number(match[1]) >= before && Number(match[1]) <= Date.now())
    ids.add(id)
  }
  assert.equal(ids.size, 1000)
})

test('a queued job snapshot has every field, real Dates, status pending', () => {
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue(job())
  const [stored] = queue.getAll()
  assert.equal(stored.id, id)
  assert.equal(stored.type, 'analytics')
  assert.equal(stored.operation, 'sync')
  assert.deepEqual(stored.payload, { contentId: 'c1' })
  assert.equal(stored.userId, 'user-1')
  assert.equal(stored.priority, 'medium')
  assert.ok(isRecentDate(stored.createdAt))
  assert.equal(stored.retryCount, 0)
  assert.equal(stored.maxRetries, 3)
  assert.equal(stored.status, 'pending')
  assert.ok(!('nextRetryAt' in stored))
  assert.ok(!('lastError' in stored))
  assert.ok(stored.updatedAt instanceof Date)
})

test('dequeue: highest priority first, oldest first within a priority, ties by enqueue order', () => {
  const queue = new BackgroundJobQueue()
  const low = queue.enqueue(job({ priority: 'low' }))
  const medium1 = queue.enqueue(job({ priority: 'medium' }))
  const high1 = queue.enqueue(job({ priority: 'high' }))
  const medium2 = queue.enqueue(job({ priority: 'medium' }))
  const high2 = queue.enqueue(job({ priority: 'high' }))
  const order = []
  for (let next = queue.dequeue(); next; next = queue.dequeue()) {
    assert.equal(next.status, 'processing')
    order.push(next.id)
  }
  assert.deepEqual(order, [high1, high2, medium1, medium2, low])
  assert.equal(queue.dequeue(), null)
})

test('dequeue marks processing; complete marks completed; counts follow', () => {
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue(job())
  queue.enqueue(job())
  const taken = queue.dequeue()
  assert.equal(taken.id, id)
  assert.deepEqual(queue.getStats(), { total: 2, pending: 1, processing: 1, completed: 0, failed: 0 })
  queue.complete(id)
  assert.deepEqual(queue.getStats(), { total: 2, pending: 1, processing: 0, completed: 1, failed: 0 })
  assert.equal(queue.getByStatus('completed')[0].id, id)
})

test('fail: backoff of 1, 5, 15, then 30 minutes, lastError kept', () => {
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue(job({ maxRetries: 6 }))
  const delays = [1, 5, 15, 30, 30]
  delays.forEach((minutes, attempt) => {
    const before = Date.now()
    queue.fail(id, `attempt ${attempt + 1} failed`)
    const after = Date.now()
    const [stored] = queue.getAll()
    assert.equal(stored.status, 'pending')
    assert.equal(stored.retryCount, attempt + 1)
    assert.equal(stored.lastError, `attempt ${attempt + 1} failed`)
    const delay = stored.nextRetryAt.getTime()
    assert.ok(delay >= before + minutes * MIN && delay <= after + minutes * MIN, `retry ${attempt + 1} after ${minutes} min`)
    assert.equal(queue.dequeue(), null, 'not ready before nextRetryAt')
  })
  queue.fail(id, 'last')
  const [stored] = queue.getAll()
  assert.equal(stored.status, 'failed')
  assert.equal(stored.retryCount, 6)
  assert.deepEqual(queue.getStats(), { total: 1, pending: 0, processing: 0, completed: 0, failed: 1 })
})

/** Fails job `id` once and returns how long its retry was put off, in ms. */
function failAndDelay(queue, id) {
  queue.fail(id, 'x')
  const stored = queue.getAll().find((j) => j.id === id)
  return stored.nextRetryAt.getTime() - stored.updatedAt.getTime()
}

test('backoffMs: a schedule of retry delays, the last repeating', () => {
  const queue = new BackgroundJobQueue({ backoffMs: [10, 2_000, 30_000] })
  const id = queue.enqueue(job({ maxRetries: 6 }))
  assert.deepEqual([1, 2, 3, 4, 5].map(() => failAndDelay(queue, id)), [10, 2_000, 30_000, 30_000, 30_000])
  const once = new BackgroundJobQueue({ backoffMs: [0] })
  const ready = once.enqueue(job())
  assert.equal(failAndDelay(once, ready), 0)
  assert.equal(once.dequeue().id, ready, 'a zero delay is ready at once')
  const plain = new BackgroundJobQueue()
  assert.equal(failAndDelay(plain, plain.enqueue(job())), MIN, 'per instance: the default schedule')
})

test('backoffMs also times the retry of a job whose lease ran out', async () => {
  const queue = new BackgroundJobQueue({ leaseMs: 20, backoffMs: [5_000] })
  const id = queue.enqueue(job())
  queue.dequeue()
  await sleep(50)
  const [stored] = queue.getAll()
  assert.equal(stored.lastError, 'lease expired')
  assert.equal(stored.nextRetryAt.getTime() - stored.updatedAt.getTime(), 5_000)
  assert.equal(stored.id, id)
})

test('configure({ queue: { backoffMs } }) sets the singleton\'s schedule; a refused configure changes nothing', () => {
  try {
    configure({ queue: { backoffMs: [7, 70] } })
    const id = backgroundJobQueue.enqueue(job({ maxRetries: 5 }))
    assert.deepEqual([failAndDelay(backgroundJobQueue, id), failAndDelay(backgroundJobQueue, id)], [7, 70])
    assert.throws(() => configure({ queue: { backoffMs: [1] }, cache: { maxEntries: -1 } }), RangeError)
    assert.equal(failAndDelay(backgroundJobQueue, id), 70, 'unchanged')
  } finally {
    configure({ queue: { backoffMs: [MIN, 5 * MIN, 15 * MIN, 30 * MIN] } })
    resetSingletons()
    for (const stuck of backgroundJobQueue.getAll()) backgroundJobQueue.complete(stuck.id)
    backgroundJobQueue.clearCompleted()
  }
})

test('bad backoffMs is a TypeError/RangeError naming the option or the entry', () => {
  const cases = [
    [5, TypeError, 'ERR_INVALID_ARG_TYPE', /"options.backoffMs" property must be an array of non-negative integers/],
    ['60000', TypeError, 'ERR_INVALID_ARG_TYPE', /"options.backoffMs"/],
    [{ 0: 1, length: 1 }, TypeError, 'ERR_INVALID_ARG_TYPE', /"options.backoffMs"/],
    [[], RangeError, 'ERR_OUT_OF_RANGE', /"options.backoffMs" .*non-empty/],
    [[1, -1], RangeError, 'ERR_OUT_OF_RANGE', /"options.backoffMs\[1\]"/],
    [[1.5], RangeError, 'ERR_OUT_OF_RANGE', /"options.backoffMs\[0\]"/],
    [[NaN], RangeError, 'ERR_OUT_OF_RANGE', /"options.backoffMs\[0\]"/],
    [[2 ** 53], RangeError, 'ERR_OUT_OF_RANGE', /"options.backoffMs\[0\]"/],
    [['1'], TypeError, 'ERR_INVALID_ARG_TYPE', /"options.backoffMs\[0\]" property must be of type number/],
    [[1, , 2], TypeError, 'ERR_INVALID_ARG_TYPE', /"options.backoffMs\[1\]"/], // eslint-disable-line no-sparse-arrays
  ]
  for (const [backoffMs, type, code, message] of cases) {
    assertThrowsCoded(assert, () => new BackgroundJobQueue({ backoffMs }), type, code, message)
  }
  assertThrowsCoded(assert, () => configure({ queue: { backoffMs: [] } }), RangeError, 'ERR_OUT_OF_RANGE', /"options.queue.backoffMs"/)
})

test('fail at maxRetries is final; maxRetries 0 fails at once', () => {
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue(job({ maxRetries: 1 }))
  queue.dequeue()
  queue.fail(id, 'boom')
  assert.equal(queue.getByStatus('failed')[0].id, id)
  const zero = queue.enqueue(job({ maxRetries: 0 }))
  queue.fail(zero, 'x')
  assert.equal(queue.getAll().find((j) => j.id === zero).status, 'failed')
})

test('fail accepts an Error or anything else as the error and still fails the job', () => {
  const queue = new BackgroundJobQueue()
  const a = queue.enqueue(job())
  const b = queue.enqueue(job())
  queue.fail(a, new Error('from an Error'))
  queue.fail(b, undefined)
  const byId = Object.fromEntries(queue.getAll().map((j) => [j.id, j]))
  assert.equal(byId[a].lastError, 'from an Error')
  assert.equal(byId[b].lastError, 'Unknown error')
  assert.equal(byId[b].retryCount, 1)
})

test('a job with nextRetryAt in the future is not ready', () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job({ priority: 'high', nextRetryAt: new Date(Date.now() + 60_000) }))
  const ready = queue.enqueue(job({ priority: 'low', nextRetryAt: new Date(Date.now() - 1) }))
  assert.equal(queue.dequeue().id, ready)
  assert.equal(queue.dequeue(), null)
})

test('unknown ids are ignored without throwing', () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job())
  assert.equal(queue.complete('job_0_000000000'), false)
  assert.equal(queue.fail('nope', 'x'), false)
  assert.deepEqual(queue.getStats(), { total: 1, pending: 1, processing: 0, completed: 0, failed: 0 })
})

test('finished jobs are left alone by later complete/fail', () => {
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue(job())
  queue.complete(id)
  assert.equal(queue.fail(id, 'late'), false)
  assert.equal(queue.getAll()[0].status, 'completed')
})

test('a job past its lease counts as a failed attempt with lastError "lease expired"', async () => {
  const queue = new BackgroundJobQueue({ leaseMs: 30 })
  const id = queue.enqueue(job())
  assert.equal(queue.dequeue().id, id)
  assert.equal(queue.getStats().processing, 1)
  await sleep(60)
  const stats = queue.getStats()
  assert.equal(stats.processing, 0)
  assert.equal(stats.pending, 1)
  const [stored] = queue.getAll()
  assert.equal(stored.lastError, 'lease expired')
  assert.equal(stored.retryCount, 1)
  assert.ok(stored.nextRetryAt.getTime() >= Date.now() + MIN - 1000)
})

test('a lost job past its last lease is failed for good', async () => {
  const queue = new BackgroundJobQueue({ leaseMs: 20 })
  const id = queue.enqueue(job({ maxRetries: 1 }))
  queue.dequeue()
  await sleep(40)
  const [stored] = queue.getAll()
  assert.equal(stored.id, id)
  assert.equal(stored.status, 'failed')
  assert.equal(stored.lastError, 'lease expired')
})

test('full queue: oldest finished jobs are evicted first; live jobs never; then QUEUE_FULL', () => {
  const queue = new BackgroundJobQueue({ maxSize: 3 })
  const a = queue.enqueue(job())
  const b = queue.enqueue(job())
  const c = queue.enqueue(job())
  queue.complete(b)
  queue.fail(a, 'x')
  queue.fail(a, 'x')
  queue.fail(a, 'x') // failed for good after b completed
  const d = queue.enqueue(job())
  assert.deepEqual(queue.getAll().map((j) => j.id), [a, c, d], 'b finished first and went first')
  const e = queue.enqueue(job())
  assert.deepEqual(queue.getAll().map((j) => j.id), [c, d, e])
  assertThrowsCoded(assert, () => queue.enqueue(job()), Error, 'QUEUE_FULL', /full/)
  assert.deepEqual(queue.getAll().map((j) => j.id), [c, d, e], 'no live job was dropped')
  assert.ok(queue.getAll().every((j) => j.status === 'pending'))
})

test('a refused enqueue evicts nothing, even when some finished jobs could go', () => {
  // Only configure lowers a bound below what a queue holds: the singleton.
  resetSingletons()
  const queue = backgroundJobQueue
  const ids = [queue.enqueue(job()), queue.enqueue(job()), queue.enqueue(job())]
  try {
    configure({ queue: { maxSize: 2 } })
    queue.complete(ids[0])
    assertThrowsCoded(assert, () => queue.enqueue(job()), Error, 'QUEUE_FULL', /full/)
    assert.deepEqual(queue.getStats(), { total: 3, pending: 2, processing: 0, completed: 1, failed: 0 }, 'the completed job is still there')
  } finally {
    configure({ queue: { maxSize: 10_000 } })
    resetSingletons()
  }
})

test('a payload over maxPayloadBytes is refused with PAYLOAD_TOO_LARGE', () => {
  const queue = new BackgroundJobQueue({ maxPayloadBytes: 100 })
  queue.enqueue(job({ payload: 'x'.repeat(98) }))
  assertThrowsCoded(assert, () => queue.enqueue(job({ payload: 'x'.repeat(99) })), RangeError, 'PAYLOAD_TOO_LARGE', /bytes/)
  assert.equal(queue.getStats().total, 1)
  const big = new BackgroundJobQueue()
  assertThrowsCoded(assert, () => big.enqueue(job({ payload: 'x'.repeat(1024 * 1024) })), RangeError, 'PAYLOAD_TOO_LARGE')
})

test('payloads are JSON copies; undefined stays undefined', () => {
  const queue = new BackgroundJobQueue()
  const payload = { when: new Date(0), list: [1] }
  queue.enqueue(job({ payload }))
  queue.enqueue(job({ payload: undefined }))
  payload.list.push(2)
  const [first, second] = queue.getAll()
  assert.deepEqual(first.payload, { when: '1970-01-01T00:00:00.000Z', list: [1] })
  assert.equal(second.payload, undefined)
  first.payload.list.push(3)
  assert.deepEqual(queue.getAll()[0].payload.list, [1])
})

test('getAll, getByStatus, getByUser return fresh snapshots in enqueue order', () => {
  const queue = new BackgroundJobQueue()
  const a = queue.enqueue(job({ userId: 'alice' }))
  const b = queue.enqueue(job({ userId: 'bob', priority: 'high' }))
  const c = queue.enqueue(job({ userId: 'alice' }))
  queue.dequeue()
  assert.deepEqual(queue.getAll().map((j) => j.id), [a, b, c])
  assert.deepEqual(queue.getByUser('alice').map((j) => j.id), [a, c])
  assert.deepEqual(queue.getByUser('nobody'), [])
  assert.deepEqual(queue.getByStatus('processing').map((j) => j.id), [b])
  assert.deepEqual(queue.getByStatus('pending').map((j) => j.id), [a, c])
  const snapshot = queue.getAll()[1]
  snapshot.status = 'completed'
  assert.equal(queue.getAll()[1].status, 'processing')
})

test('clearCompleted removes completed jobs only', () => {
  const queue = new BackgroundJobQueue()
  const done = queue.enqueue(job())
  const failed = queue.enqueue(job({ maxRetries: 1 }))
  const live = queue.enqueue(job())
  queue.complete(done)
  queue.fail(failed, 'x')
  queue.clearCompleted()
  assert.deepEqual(queue.getAll().map((j) => j.id), [failed, live])
  assert.deepEqual(queue.getStats(), { total: 2, pending: 1, processing: 0, completed: 0, failed: 1 })
})

test('retryFailed puts dead letters back to pending with a fresh retry count', () => {
  const queue = new BackgroundJobQueue()
  const a = queue.enqueue(job({ maxRetries: 1 }))
  const b = queue.enqueue(job({ maxRetries: 1 }))
  queue.fail(a, 'gone')
  queue.fail(b, 'gone too')
  assert.equal(queue.retryFailed(a), 1)
  const retried = queue.getAll().find((j) => j.id === a)
  assert.equal(retried.status, 'pending')
  assert.equal(retried.retryCount, 0)
  assert.equal(retried.lastError, 'gone')
  assert.equal(queue.dequeue().id, a)
  assert.equal(queue.retryFailed('job_1_000000000'), 0)
  assert.equal(queue.retryFailed(), 1)
  assert.deepEqual(queue.getStats(), { total: 2, pending: 1, processing: 1, completed: 0, failed: 0 })
  assertThrowsCoded(assert, () => queue.retryFailed(5), TypeError, 'ERR_INVALID_ARG_TYPE', /"jobId"/)
})

test('a dequeued job can be enqueued again as it is', () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job())
  const taken = queue.dequeue()
  const again = queue.enqueue(taken)
  assert.notEqual(again, taken.id)
  assert.equal(queue.getAll().find((j) => j.id === again).status, 'pending')
})

test('bad jobs are a TypeError/RangeError naming the field; nothing is enqueued', () => {
  const queue = new BackgroundJobQueue()
  const circular = {}
  circular.self = circular
  const cases = [
    [undefined, TypeError, 'ERR_INVALID_ARG_TYPE', /"job" argument must be of type object/],
    [job({ type: 'email' }), TypeError, 'ERR_INVALID_ARG_VALUE', /"job.type" property must be one of 'ai', 'integration', 'analytics', 'notification'/],
    [job({ priority: 'urgent' }), TypeError, 'ERR_INVALID_ARG_VALUE', /"job.priority"/],
    [job({ operation: 1 }), TypeError, 'ERR_INVALID_ARG_TYPE', /"job.operation" property must be of type string/],
    [job({ userId: undefined }), TypeError, 'ERR_INVALID_ARG_TYPE', /"job.userId"/],
    [job({ retryCount: -1 }), RangeError, 'ERR_OUT_OF_RANGE', /"job.retryCount"/],
    [job({ retryCount: 1.5 }), RangeError, 'ERR_OUT_OF_RANGE', /"job.retryCount"/],
    [job({ maxRetries: NaN }), RangeError, 'ERR_OUT_OF_RANGE', /"job.maxRetries"/],
    [job({ maxRetries: '3' }), TypeError, 'ERR_INVALID_ARG_TYPE', /"job.maxRetries"/],
    [job({ payload: circular }), TypeError, 'ERR_INVALID_ARG_VALUE', /"job.payload" property must be JSON data: it contains a circular reference/],
    [job({ payload: () => 1 }), TypeError, 'ERR_INVALID_ARG_VALUE', /"job.payload"/],
    // Told apart by looking at the value, not at the engine's message.
    [job({ payload: { list: [1, { deep: [circular] }] } }), TypeError, 'ERR_INVALID_ARG_VALUE', /must be JSON data: it contains a circular reference/],
    [job({ payload: { list: [1, { n: 2n }] } }), TypeError, 'ERR_INVALID_ARG_VALUE', /must be JSON data: it contains a BigInt, which JSON cannot hold/],
    [job({ payload: { toJSON: () => { throw new TypeError('no text for this') } } }), TypeError, 'ERR_INVALID_ARG_VALUE', /must be JSON data: JSON.stringify failed: no text for this/],
    [job({ nextRetryAt: 12345 }), TypeError, 'ERR_INVALID_ARG_TYPE', /"job.nextRetryAt" property must be an instance of Date/],
    [job({ nextRetryAt: new Date('nope') }), RangeError, 'ERR_OUT_OF_RANGE', /"job.nextRetryAt"/],
  ]
  for (const [bad, type, code, message] of cases) {
    assertThrowsCoded(assert, () => queue.enqueue(bad), type, code, message)
  }
  assert.equal(queue.getStats().total, 0)
  assertThrowsCoded(assert, () => queue.getByStatus('done'), TypeError, 'ERR_INVALID_ARG_VALUE', /"status"/)
  assertThrowsCoded(assert, () => queue.getByUser(5), TypeError, 'ERR_INVALID_ARG_TYPE', /"userId"/)
  assertThrowsCoded(assert, () => queue.complete(5), TypeError, 'ERR_INVALID_ARG_TYPE', /"jobId"/)
})

test('constructor options are checked', () => {
  assertThrowsCoded(assert, () => new BackgroundJobQueue({ size: 1 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option "options.size"/)
  assertThrowsCoded(assert, () => new BackgroundJobQueue({ leaseMs: -5 }), RangeError, 'ERR_OUT_OF_RANGE', /"options.leaseMs"/)
  assertThrowsCoded(assert, () => new BackgroundJobQueue({ maxSize: Infinity }), RangeError, 'ERR_OUT_OF_RANGE')
})

test('instances are independent of each other and of the singleton', () => {
  const a = new BackgroundJobQueue()
  a.enqueue(job())
  assert.equal(new BackgroundJobQueue().getStats().total, 0)
  assert.equal(backgroundJobQueue.getStats().total, 0)
  assert.ok(backgroundJobQueue instanceof BackgroundJobQueue)
})

test('a large queue keeps order and counts (10,000 mixed jobs)', () => {
  const queue = new BackgroundJobQueue({ maxSize: 20_000 })
  const priorities = ['low', 'medium', 'high']
  for (let i = 0; i < 10_000; i++) queue.enqueue(job({ priority: priorities[i % 3], payload: i }))
  let last = 2
  let lastPayload = -1
  for (let i = 0; i < 10_000; i++) {
    const next = queue.dequeue()
    const rank = priorities.indexOf(next.priority)
    assert.ok(rank <= last)
    if (rank === last) assert.ok(next.payload > lastPayload)
    last = rank
    lastPayload = next.payload
    if (i % 2) queue.complete(next.id)
    else queue.fail(next.id, 'x')
  }
  assert.deepEqual(queue.getStats(), { total: 10_000, pending: 5000, processing: 0, completed: 5000, failed: 0 })
})
