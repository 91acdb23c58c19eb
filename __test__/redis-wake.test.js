'use strict'

// An idle worker on Redis waits on the queue's wake signal (a blocking
// pop on a connection of its own) instead of polling: it hears of a job
// another instance enqueued, and of a retry that comes due while it is
// idle. Every worker here polls only every ten minutes, so only the
// signal and the due time the store told can start these jobs. Run in the
// Redis pass of the suite (scripts/test-js.js redis).

const test = require('node:test')
const assert = require('node:assert/strict')

const { BackgroundJobQueue } = require('..')
const { startRedis } = require('../scripts/redis-server')

const skip = process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL ? false : 'runs in the Redis pass of the suite'
const NEVER_POLL = { pollIntervalMs: 600_000 }
let counter = 0
const prefix = (name) => `wake-${process.pid}-${name}-${++counter}`

const job = (n) => ({ type: 'integration', operation: `op-${n}`, payload: { n }, userId: 'u', priority: 'medium', retryCount: 0, maxRetries: 3 })

/** A promise with its resolve. */
function deferred() {
  let resolve
  const promise = new Promise((res) => (resolve = res))
  return { promise, resolve }
}

/** A server for test `t`, stopped after the workers pushed to `workers`. */
async function serverFor(t) {
  const server = await startRedis()
  const workers = []
  // The workers first: a worker stopped after its server recorded nothing.
  t.after(async () => {
    for (const worker of workers) await worker.stop()
    await server.stop()
  })
  return { server, workers }
}

/** Two instances on one new prefix: the worker's and another process's. */
function instances(server, name) {
  const keyPrefix = prefix(name)
  return [0, 1].map(() => new BackgroundJobQueue({ redisUrl: server.url, keyPrefix }))
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('an idle worker wakes on a job another instance enqueued', { skip }, async (t) => {
  const { server, workers } = await serverFor(t)
  const [mine, other] = instances(server, 'enqueue')
  const ran = deferred()
  const worker = mine.process(async (queued) => ran.resolve(queued.id), NEVER_POLL)
  workers.push(worker)
  // Idle first: its first look found nothing and it waits on the signal.
  await pause(300)
  const id = other.enqueue(job(1))
  assert.equal(await ran.promise, id)
})

test('a retry that comes due while the worker is idle is picked up', { skip }, async (t) => {
  const { server, workers } = await serverFor(t)
  const queue = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix: prefix('retry'), backoffMs: [300] })
  const done = deferred()
  let attempts = 0
  const worker = queue.process(
    async () => {
      if (++attempts === 1) throw new Error('first attempt fails')
    },
    { ...NEVER_POLL, onCompleted: (completed) => done.resolve(completed) },
  )
  workers.push(worker)
  const id = queue.enqueue(job(2))
  const completed = await done.promise
  assert.equal(completed.id, id)
  assert.equal(attempts, 2)
  assert.equal(completed.retryCount, 1)
})

test('a job enqueued with a later retry time is picked up when it is due', { skip }, async (t) => {
  const { server, workers } = await serverFor(t)
  const [mine, other] = instances(server, 'delayed')
  const ran = deferred()
  const worker = mine.process(async (queued) => ran.resolve(queued.id), NEVER_POLL)
  workers.push(worker)
  await pause(300)
  const id = other.enqueue({ ...job(3), nextRetryAt: new Date(Date.now() + 500) })
  assert.equal(await ran.promise, id)
})
