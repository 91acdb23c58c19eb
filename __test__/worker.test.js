'use strict'

// backgroundJobQueue.process: the worker loop driven by Rust timers:
// concurrency (global and per user), handlers by type, completion and
// failure with events, lease renewal, job timeouts, graceful stop, and no
// handle left behind.

const test = require('node:test')
const assert = require('node:assert/strict')

const { BackgroundJobQueue } = require('..')
const { sleep, assertThrowsCoded, nodeScript } = require('./helpers')

function job(overrides = {}) {
  return { type: 'ai', operation: 'op', payload: { n: 1 }, userId: 'u', priority: 'medium', retryCount: 0, maxRetries: 3, ...overrides }
}

async function until(condition, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await sleep(5)
  }
}

test('runs every job through its type handler and completes it, within the concurrency', async () => {
  const queue = new BackgroundJobQueue()
  for (let i = 0; i < 10; i++) queue.enqueue(job({ type: i % 2 ? 'ai' : 'analytics', payload: { i } }))
  let active = 0
  let peak = 0
  const seen = []
  const handler = (kind) => async (queued, signal) => {
    assert.ok(signal instanceof AbortSignal)
    assert.equal(queued.status, 'processing')
    active++
    peak = Math.max(peak, active)
    seen.push([kind, queued.payload.i])
    await sleep(15)
    active--
  }
  const completed = []
  const worker = queue.process(
    { ai: handler('ai'), analytics: handler('analytics') },
    { concurrency: 3, pollIntervalMs: 5, onCompleted: (done) => completed.push(done) },
  )
  await until(() => queue.getStats().completed === 10)
  await worker.stop()
  assert.equal(peak, 3)
  assert.equal(seen.length, 10)
  assert.ok(seen.every(([kind, i]) => (i % 2 ? kind === 'ai' : kind === 'analytics')))
  assert.equal(completed.length, 10)
  assert.ok(completed.every((c) => c.status === 'completed'))
})

test('per-user concurrency is never exceeded, and other users are not held up', async () => {
  const queue = new BackgroundJobQueue()
  for (let i = 0; i < 4; i++) queue.enqueue(job({ userId: 'alice', priority: 'high' }))
  queue.enqueue(job({ userId: 'bob', priority: 'low' }))
  const active = new Map()
  let alicePeak = 0
  let bobStartedWhileAliceBusy = false
  const worker = queue.process(
    async (queued) => {
      active.set(queued.userId, (active.get(queued.userId) || 0) + 1)
      alicePeak = Math.max(alicePeak, active.get('alice') || 0)
      if (queued.userId === 'bob' && active.get('alice')) bobStartedWhileAliceBusy = true
      await sleep(20)
      active.set(queued.userId, active.get(queued.userId) - 1)
    },
    { concurrency: 4, perUserConcurrency: 1, pollIntervalMs: 5 },
  )
  await until(() => queue.getStats().completed === 5)
  await worker.stop()
  assert.equal(alicePeak, 1)
  assert.equal(bobStartedWhileAliceBusy, true)
})

test('a throwing handler fails the job with its message; events follow, dead letters at the end', async () => {
  const queue = new BackgroundJobQueue()
  const id = queue.enqueue(job({ maxRetries: 1 }))
  const events = []
  const worker = queue.process(
    async () => { throw new Error('handler broke') },
    {
      pollIntervalMs: 5,
      onFailed: (failed, error) => events.push(['failed', failed.id, failed.status, error.message]),
      onDeadLetter: (dead) => events.push(['dead', dead.id, dead.lastError]),
    },
  )
  await until(() => events.length === 2)
  await worker.stop()
  assert.deepEqual(events, [
    ['failed', id, 'failed', 'handler broke'],
    ['dead', id, 'handler broke'],
  ])
  assert.equal(queue.retryFailed(id), 1)
})

test('a job type without a handler fails, not the worker', async () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job({ type: 'notification', maxRetries: 1 }))
  queue.enqueue(job({ type: 'ai' }))
  const worker = queue.process({ ai: async () => {} }, { pollIntervalMs: 5 })
  await until(() => queue.getStats().completed === 1 && queue.getStats().failed === 1)
  await worker.stop()
  assert.match(queue.getByStatus('failed')[0].lastError, /No handler for jobs of type notification/)
})

test('leases are renewed while a handler runs, so a long job is not handed out twice', async () => {
  const queue = new BackgroundJobQueue({ leaseMs: 40 })
  const id = queue.enqueue(job())
  let runs = 0
  const worker = queue.process(async () => {
    runs++
    await sleep(200)
  }, { pollIntervalMs: 5 })
  await sleep(120)
  const meanwhile = queue.dequeue()
  assert.equal(meanwhile, null, 'still leased')
  assert.equal(queue.getAll()[0].status, 'processing')
  await until(() => queue.getStats().completed === 1)
  await worker.stop()
  assert.equal(runs, 1)
  assert.equal(queue.getAll()[0].id, id)
  assert.equal(queue.getAll()[0].retryCount, 0)
})

test('jobTimeoutMs aborts the handler through its signal and fails the job', async () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job())
  let signal
  const worker = queue.process((queued, given) => {
    signal = given
    return new Promise(() => {})
  }, { jobTimeoutMs: 30, pollIntervalMs: 5 })
  await until(() => queue.getStats().pending === 1 && signal && signal.aborted)
  await worker.stop()
  assert.equal(signal.reason.code, 'TIMEOUT')
  const [timedOut] = queue.getAll()
  assert.equal(timedOut.retryCount, 1)
  assert.match(timedOut.lastError, /timed out after 30 ms/)
})

test('stop({ graceMs }) takes no new jobs, waits for running ones, then returns the rest to pending', async () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job({ payload: { speed: 'quick' } }))
  queue.enqueue(job({ payload: { speed: 'slow' } }))
  queue.enqueue(job({ payload: { speed: 'never started' } }))
  const signals = {}
  const worker = queue.process(async (queued, signal) => {
    signals[queued.payload.speed] = signal
    await sleep(queued.payload.speed === 'quick' ? 10 : 1000)
  }, { concurrency: 2, pollIntervalMs: 5 })
  await until(() => worker.running === 2)
  const started = Date.now()
  await worker.stop({ graceMs: 60 })
  const waited = Date.now() - started
  // It waited out the grace, and no more than that: the slow job (1 s) was
  // aborted and handed back rather than waited for (below).
  assert.ok(waited >= 50, `waited ${waited} ms`)
  assert.deepEqual(queue.getStats(), { total: 3, pending: 2, processing: 0, completed: 1, failed: 0 })
  assert.equal(signals.slow.aborted, true)
  assert.equal(signals.slow.reason.code, 'WORKER_STOPPED')
  assert.equal('never started' in signals, false)
  const slow = queue.getAll().find((j) => j.payload.speed === 'slow')
  assert.equal(slow.retryCount, 0, 'handed back untried')
  await sleep(1100)
  assert.equal(queue.getStats().completed, 1, 'the late finish of a released job changes nothing')
})

test('stop() always stops: bad or unreadable options are no grace, never an error', async () => {
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  const throwing = { get graceMs() { throw new Error('getter') } }
  for (const stopOptions of [proxy, throwing, { graceMs: -1 }, { graceMs: NaN }, { graceMs: '100' }, null, 42]) {
    const queue = new BackgroundJobQueue()
    queue.enqueue(job())
    let signal
    const worker = queue.process(async (queued, jobSignal) => {
      signal = jobSignal
      await new Promise(() => {})
    }, { pollIntervalMs: 5 })
    await until(() => worker.running === 1)
    const stopped = worker.stop(stopOptions)
    assert.ok(stopped instanceof Promise)
    await stopped
    assert.equal(signal.aborted, true, 'the hanging job was aborted at once')
    assert.equal(signal.reason.code, 'WORKER_STOPPED')
    assert.deepEqual(queue.getStats(), { total: 1, pending: 1, processing: 0, completed: 0, failed: 0 })
    assert.equal(worker.stop({ graceMs: 10_000 }), stopped, 'a later stop gets the first promise')
  }
})

test('a stopped worker leaves nothing keeping the process alive', async () => {
  const started = Date.now()
  const stdout = await nodeScript(
    `const { BackgroundJobQueue } = require('.')
     const q = new BackgroundJobQueue()
     q.enqueue({ type: 'ai', operation: 'o', payload: 1, userId: 'u', priority: 'low', retryCount: 0, maxRetries: 3 })
     let handled
     const started = new Promise((resolve) => { handled = resolve })
     const worker = q.process(async () => handled(), { pollIntervalMs: 60000, jobTimeoutMs: 60000 })
     // Stopped once its one job has started, however long that takes (under
     // emulation, longer than any fixed delay chosen for a native run).
     started.then(() => worker.stop({ graceMs: 60000 })).then(() => console.log(JSON.stringify(q.getStats())))`,
  )
  assert.equal(JSON.parse(stdout).completed, 1)
  assert.ok(Date.now() - started < 10_000)
})

test('bad handlers and options are a TypeError/RangeError naming them', () => {
  const queue = new BackgroundJobQueue()
  assertThrowsCoded(assert, () => queue.process(), TypeError, 'ERR_INVALID_ARG_TYPE', /"handlers" argument must be of type object/)
  assertThrowsCoded(assert, () => queue.process({ email: async () => {} }), TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option "handlers.email"/)
  assertThrowsCoded(assert, () => queue.process({ ai: 'x' }), TypeError, 'ERR_INVALID_ARG_TYPE', /"handlers.ai" property must be of type function/)
  assertThrowsCoded(assert, () => queue.process(async () => {}, { concurrency: 0 }), RangeError, 'ERR_OUT_OF_RANGE', /"options.concurrency"/)
  assertThrowsCoded(assert, () => queue.process(async () => {}, { onCompleted: 1 }), TypeError, 'ERR_INVALID_ARG_TYPE', /"options.onCompleted"/)
  assertThrowsCoded(assert, () => queue.process(async () => {}, { interval: 5 }), TypeError, 'ERR_INVALID_ARG_VALUE', /Unknown option "options.interval"/)
})

test('a handler that keeps enqueueing work does not starve timers or stop()', async () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job({ payload: 0 }))
  let handled = 0
  const worker = queue.process(async (queued) => {
    handled++
    queue.enqueue(job({ payload: queued.payload + 1 }))
  }, { pollIntervalMs: 50 })
  // The worker is busy first (its first handler may start late under
  // emulation); a timer set then must still run, and stop() still end it.
  await until(() => handled >= 1)
  let timerRan = false
  await new Promise((resolve) => setTimeout(() => { timerRan = true; resolve() }, 30))
  await worker.stop()
  assert.equal(timerRan, true)
  assert.ok(handled >= 1)
})

test('process() returns before any handler runs; stop() twice gives one promise', async () => {
  const queue = new BackgroundJobQueue()
  queue.enqueue(job())
  let stoppedFromHandler = null
  const worker = queue.process(async () => {
    stoppedFromHandler = worker.stop({ graceMs: 1000 })
  }, { pollIntervalMs: 5 })
  assert.equal(worker.running, 0, 'nothing started yet')
  await until(() => stoppedFromHandler !== null)
  const again = worker.stop()
  assert.equal(again, stoppedFromHandler)
  const started = Date.now()
  await again
  assert.ok(Date.now() - started < 900, 'resolves when the job is done, not after the grace')
  assert.equal(queue.getStats().completed, 1)
})

test('a job whose lease ran out while the thread was busy is still the worker\'s own', async () => {
  const queue = new BackgroundJobQueue({ leaseMs: 100 })
  const slowId = queue.enqueue(job({ maxRetries: 1, payload: 'slow' }))
  queue.enqueue(job({ payload: 'blocker' }))
  const completed = []
  const worker = queue.process(async (queued) => {
    if (queued.payload === 'slow') return sleep(400)
    const until = Date.now() + 250
    while (Date.now() < until) {
      // block the thread past the lease
    }
  }, { concurrency: 2, pollIntervalMs: 5, onCompleted: (done) => completed.push(done) })
  await until(() => queue.getStats().completed === 2, 5000)
  await worker.stop()
  const slow = queue.getAll().find((j) => j.id === slowId)
  assert.equal(slow.status, 'completed')
  assert.equal(slow.retryCount, 0)
  assert.ok(completed.every((done) => done.status === 'completed'))
})

test('handlers that return a plain value, throw synchronously, reject or hang past jobTimeoutMs are each recorded', async () => {
  const queue = new BackgroundJobQueue()
  const ids = {
    ai: queue.enqueue(job({ type: 'ai', maxRetries: 1 })),
    integration: queue.enqueue(job({ type: 'integration', maxRetries: 1 })),
    analytics: queue.enqueue(job({ type: 'analytics', maxRetries: 1 })),
    notification: queue.enqueue(job({ type: 'notification', maxRetries: 1 })),
  }
  let abortedWith = null
  const worker = queue.process(
    {
      ai: () => 'plain value',
      integration: () => {
        throw new Error('sync throw')
      },
      analytics: async () => {
        throw new Error('rejected')
      },
      notification: (_job, signal) =>
        new Promise(() => {
          signal.addEventListener('abort', () => (abortedWith = signal.reason))
        }),
    },
    { concurrency: 4, pollIntervalMs: 5, jobTimeoutMs: 100 },
  )
  await until(() => queue.getStats().completed + queue.getStats().failed === 4, 5000)
  await worker.stop()
  const byId = (id) => queue.getAll().find((j) => j.id === id)
  assert.equal(byId(ids.ai).status, 'completed')
  assert.equal(byId(ids.integration).lastError, 'sync throw')
  assert.equal(byId(ids.analytics).lastError, 'rejected')
  assert.equal(byId(ids.notification).lastError, 'The job timed out after 100 ms')
  assert.equal(abortedWith.code, 'TIMEOUT')
})
