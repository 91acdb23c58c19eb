'use strict'

// backgroundJobQueue.drain: the worker with a budget, for a cron-triggered
// route on platforms without a long-lived worker. What is due now goes
// through the handlers exactly as process() does; the drain stops when
// nothing is due, after maxJobs jobs or once maxMs has passed, and resolves
// with what it did.

const test = require('node:test')
const assert = require('node:assert/strict')

const { BackgroundJobQueue, backgroundJobQueue } = require('..')
const { sleep, nodeScript } = require('./helpers')

function job(overrides = {}) {
  return { type: 'ai', operation: 'op', payload: { n: 1 }, userId: 'u', priority: 'medium', retryCount: 0, maxRetries: 3, ...overrides }
}

/** Asserts that `promise` rejects with an error of `type` and `code` whose message matches `message`. */
async function rejectsCoded(promise, type, code, message) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error && error.name}: ${error && error.message}`)
    assert.equal(error.code, code)
    assert.match(error.message, message)
    return true
  })
}

test('processes every due job through its type handler, then resolves with what it did', async () => {
  const queue = new BackgroundJobQueue()
  for (let i = 0; i < 6; i++) queue.enqueue(job({ type: i % 2 ? 'ai' : 'analytics', payload: { i } }))
  const seen = []
  const completed = []
  const handler = (kind) => async (queued, signal) => {
    assert.ok(signal instanceof AbortSignal)
    assert.equal(queued.status, 'processing')
    seen.push([kind, queued.payload.i])
    await sleep(2)
  }
  const result = await queue.drain(
    { ai: handler('ai'), analytics: handler('analytics') },
    { onCompleted: (done) => completed.push(done.status) },
  )
  assert.deepEqual(result, {
    processed: 6,
    completed: 6,
    failed: 0,
    deadLettered: 0,
    remaining: 0,
    stoppedBy: 'nothingDue',
    elapsedMs: result.elapsedMs,
    error: null,
  })
  assert.ok(Number.isInteger(result.elapsedMs) && result.elapsedMs >= 0)
  assert.deepEqual(seen.map(([, i]) => i), [0, 1, 2, 3, 4, 5], 'best first: same priority, oldest first')
  assert.ok(seen.every(([kind, i]) => (i % 2 ? kind === 'ai' : kind === 'analytics')))
  assert.deepEqual(completed, Array(6).fill('completed'), 'every event was delivered before the drain resolved')
  assert.deepEqual(queue.getStats(), { total: 6, pending: 0, processing: 0, completed: 6, failed: 0 })
})

test('failures are the worker\'s: a throw retries after the backoff, a type without handler fails, dead letters are counted', async () => {
  const queue = new BackgroundJobQueue()
  const retried = queue.enqueue(job({ type: 'ai', maxRetries: 3 }))
  const dead = queue.enqueue(job({ type: 'ai', maxRetries: 1 }))
  const orphan = queue.enqueue(job({ type: 'notification', maxRetries: 1 }))
  const events = []
  const result = await queue.drain(
    { ai: () => { throw new Error('handler broke') } },
    {
      onFailed: (failed, error) => events.push(['failed', failed.id, error.message]),
      onDeadLetter: (gone) => events.push(['dead', gone.id]),
    },
  )
  assert.deepEqual(
    { processed: result.processed, completed: result.completed, failed: result.failed, deadLettered: result.deadLettered, remaining: result.remaining },
    { processed: 3, completed: 0, failed: 3, deadLettered: 2, remaining: 0 },
    'the failed job waits for its backoff: it is neither run again nor due',
  )
  assert.equal(result.stoppedBy, 'nothingDue')
  const byId = new Map(queue.getAll().map((j) => [j.id, j]))
  assert.equal(byId.get(retried).status, 'pending')
  assert.equal(byId.get(retried).retryCount, 1)
  assert.equal(byId.get(retried).lastError, 'handler broke')
  assert.ok(byId.get(retried).nextRetryAt.getTime() >= Date.now() + 50_000, 'retried after the first backoff delay (1 min)')
  assert.equal(byId.get(dead).status, 'failed')
  assert.equal(byId.get(orphan).status, 'failed')
  assert.equal(byId.get(orphan).lastError, 'No handler for jobs of type notification')
  assert.deepEqual(events.filter(([kind]) => kind === 'dead').map(([, id]) => id).sort(), [dead, orphan].sort())
  assert.equal(events.filter(([kind]) => kind === 'failed').length, 3)
})

test('maxJobs: stops taking after that many jobs; the rest stay pending and are counted as remaining', async () => {
  const queue = new BackgroundJobQueue()
  for (let i = 0; i < 7; i++) queue.enqueue(job({ payload: { i } }))
  let active = 0
  let peak = 0
  const handler = async () => {
    active++
    peak = Math.max(peak, active)
    await sleep(10)
    active--
  }
  const first = await queue.drain(handler, { maxJobs: 5, concurrency: 2 })
  assert.deepEqual([first.processed, first.completed, first.remaining, first.stoppedBy], [5, 5, 2, 'maxJobs'])
  assert.equal(peak, 2, 'within the concurrency')
  assert.equal(active, 0, 'the jobs it started were done when it resolved')
  const second = await queue.drain(handler, { maxJobs: 5 })
  assert.deepEqual([second.processed, second.remaining, second.stoppedBy], [2, 0, 'nothingDue'])
  const none = await queue.drain(handler, { maxJobs: 0 })
  assert.deepEqual([none.processed, none.remaining, none.stoppedBy], [0, 0, 'maxJobs'])
})

test('maxMs: no job starts after the budget, and the one running then finishes', async () => {
  const queue = new BackgroundJobQueue()
  for (let i = 0; i < 20; i++) queue.enqueue(job({ payload: { i } }))
  const leasedAt = []
  const aborted = []
  const began = Date.now()
  const result = await queue.drain(
    async (queued, signal) => {
      leasedAt.push(queued.updatedAt.getTime())
      signal.addEventListener('abort', () => aborted.push(queued.id))
      await sleep(40)
    },
    { maxMs: 100 },
  )
  assert.equal(result.stoppedBy, 'maxMs')
  assert.ok(result.processed >= 1 && result.processed < 20, `processed ${result.processed}`)
  assert.equal(result.completed, result.processed, 'the job running at the deadline was not cut off')
  assert.deepEqual(aborted, [])
  assert.equal(result.remaining, 20 - result.processed)
  assert.ok(leasedAt.every((at) => at <= began + 100 + 20), 'every job was taken within the budget')
  assert.ok(result.elapsedMs >= 100, 'it ran until a job finished past the budget')
  assert.deepEqual(queue.getStats().processing, 0)
  const nothing = await queue.drain(async () => {}, { maxMs: 0 })
  assert.deepEqual([nothing.processed, nothing.remaining, nothing.stoppedBy], [0, 20 - result.processed, 'maxMs'])
})

test('jobs not due yet are neither run nor waited for, nor counted as remaining', async () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job({ nextRetryAt: new Date(Date.now() + 60_000) }))
  const due = queue.enqueue(job())
  const ran = []
  const started = Date.now()
  const result = await queue.drain(async (queued) => { ran.push(queued.id) })
  assert.deepEqual(ran, [due])
  assert.deepEqual([result.processed, result.remaining, result.stoppedBy], [1, 0, 'nothingDue'])
  assert.ok(Date.now() - started < 5000)
  assert.equal(queue.getStats().pending, 1)
})

test('jobTimeoutMs aborts a handler through its signal and fails the job, as in the worker', async () => {
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue(job({ maxRetries: 1 }))
  let reason = null
  const result = await queue.drain(
    (queued, signal) => new Promise((resolve) => signal.addEventListener('abort', () => { reason = signal.reason; resolve() })),
    { jobTimeoutMs: 30 },
  )
  assert.equal(reason.code, 'TIMEOUT')
  assert.deepEqual([result.failed, result.deadLettered], [1, 1])
  assert.match(queue.getAll().find((j) => j.id === id).lastError, /timed out after 30 ms/)
})

test('jobs enqueued by a handler while the drain runs are due, and drained too', async () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job({ payload: 0 }))
  const result = await queue.drain(async (queued) => {
    if (queued.payload < 4) queue.enqueue(job({ payload: queued.payload + 1 }))
  })
  assert.deepEqual([result.processed, result.completed, result.stoppedBy], [5, 5, 'nothingDue'])
})

test('two drains of one queue at once hand every job out exactly once', async () => {
  const queue = new BackgroundJobQueue()
  for (let i = 0; i < 30; i++) queue.enqueue(job({ payload: i, userId: `u${i % 3}` }))
  const runs = new Map()
  const handler = async (queued) => {
    runs.set(queued.payload, (runs.get(queued.payload) || 0) + 1)
    await sleep(1)
  }
  const [a, b] = await Promise.all([
    queue.drain(handler, { concurrency: 3 }),
    queue.drain(handler, { concurrency: 2, perUserConcurrency: 1 }),
  ])
  assert.equal(a.processed + b.processed, 30)
  assert.equal(runs.size, 30)
  assert.ok([...runs.values()].every((n) => n === 1))
  assert.equal(queue.getStats().completed, 30)
})

test('the singleton drains too', async () => {
  const id = backgroundJobQueue.enqueue(job({ operation: 'drain-singleton', userId: 'drain-test' }))
  const result = await backgroundJobQueue.drain(async () => {})
  assert.ok(result.processed >= 1)
  assert.equal(backgroundJobQueue.getAll().find((j) => j.id === id).status, 'completed')
  backgroundJobQueue.clearCompleted()
})

test('bad handlers, options or this reject with a TypeError/RangeError naming them; nothing runs', async () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job())
  const handler = async () => {}
  await rejectsCoded(queue.drain(), TypeError, 'ERR_INVALID_ARG_TYPE', /"handlers" argument must be of type object/)
  await rejectsCoded(queue.drain({ email: handler }), TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option "handlers.email"/)
  await rejectsCoded(queue.drain(handler, { maxJobs: -1 }), RangeError, 'ERR_OUT_OF_RANGE', /"options.maxJobs"/)
  await rejectsCoded(queue.drain(handler, { maxJobs: 1.5 }), RangeError, 'ERR_OUT_OF_RANGE', /"options.maxJobs"/)
  await rejectsCoded(queue.drain(handler, { maxMs: Infinity }), RangeError, 'ERR_OUT_OF_RANGE', /"options.maxMs"/)
  await rejectsCoded(queue.drain(handler, { maxMs: '100' }), TypeError, 'ERR_INVALID_ARG_TYPE', /"options.maxMs"/)
  await rejectsCoded(queue.drain(handler, { concurrency: 0 }), RangeError, 'ERR_OUT_OF_RANGE', /"options.concurrency"/)
  await rejectsCoded(queue.drain(handler, { pollIntervalMs: 5 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option "options.pollIntervalMs"/)
  await rejectsCoded(queue.drain(handler, 5), TypeError, 'ERR_INVALID_ARG_TYPE', /"options" argument must be of type object/)
  await rejectsCoded(queue.drain.call({}, handler), TypeError, 'ERR_INVALID_THIS', /BackgroundJobQueue/)
  assert.equal(queue.getStats().pending, 1, 'nothing was taken')
})

test('a pending drain keeps Node.js alive until it resolves', async () => {
  const stdout = await nodeScript(
    `const { BackgroundJobQueue } = require('.')
     const q = new BackgroundJobQueue()
     for (let i = 0; i < 3; i++) q.enqueue({ type: 'ai', operation: 'o', payload: i, userId: 'u', priority: 'low', retryCount: 0, maxRetries: 3 })
     // The handler's timer does not hold the process: only the drain does.
     q.drain(() => new Promise((resolve) => setTimeout(resolve, 100).unref())).then((r) => console.log(JSON.stringify(r)))`,
  )
  const result = JSON.parse(stdout)
  assert.deepEqual([result.processed, result.completed], [3, 3])
})
