'use strict'

// The life of the attempts and handlers Rust drives: a busy JavaScript
// thread must not turn a success into a timeout, a call that never runs its
// attempts holds nothing, a cancelled call runs no fallback, and a handler
// cut off by its thread ending is not a failure.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const { executeWithFallback, backgroundJobQueue } = require('..')

const root = path.join(__dirname, '..')
let counter = 0
const unique = (name) => `${name}-${process.pid}-${++counter}`

function busy(ms) {
  const until = Date.now() + ms
  while (Date.now() < until) {
    // the thread is busy with other requests' work
  }
}

test('a busy thread does not turn a settled attempt into a timeout, nor call it again', async () => {
  for (const operation of [() => 42, async () => 42]) {
    const pending = executeWithFallback(operation, { operationName: unique('op'), timeoutMs: 30 })
    busy(80)
    const result = await pending
    assert.equal(result.success, true)
    assert.equal(result.data, 42)
  }
  let calls = 0
  const pending = executeWithFallback(() => `v${++calls}`, {
    operationName: unique('op'),
    timeoutMs: 30,
    retry: { maxRetries: 2, baseDelayMs: 1 },
  })
  busy(80)
  const result = await pending
  assert.deepEqual([result.data, calls, result.metadata.attempts], ['v1', 1, 1])
})

test('a cancelled call runs no fallback: nothing is queued', async () => {
  const before = backgroundJobQueue.getStats().total
  for (const abortAfterMs of [5, 60]) {
    const controller = new AbortController()
    const pending = executeWithFallback(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 20))
        throw new Error('down')
      },
      {
        operationName: unique('op'),
        userId: 'u',
        queueOnFailure: { type: 'ai', payload: {} },
        retry: { maxRetries: 3, baseDelayMs: 200, maxDelayMs: 200, jitter: 'none' },
        signal: controller.signal,
      },
    )
    setTimeout(() => controller.abort(new Error('caller gave up')), abortAfterMs)
    await assert.rejects(pending, /caller gave up/)
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(backgroundJobQueue.getStats().total, before)
})

test('an abort that comes as the attempt fails runs no fallback either', async () => {
  const before = backgroundJobQueue.getStats().total
  // The caller aborts just after the attempt failed: the loop hears of
  // both at once, or of the abort only once it has decided.
  for (let i = 0; i < 20; i++) {
    const controller = new AbortController()
    const pending = executeWithFallback(
      () => {
        process.nextTick(() => controller.abort(new Error('caller gave up')))
        throw new Error('down')
      },
      { operationName: unique('op'), userId: 'u', queueOnFailure: { type: 'ai', payload: {} }, signal: controller.signal },
    )
    await assert.rejects(pending, /caller gave up/)
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(backgroundJobQueue.getStats().total, before, 'a job was queued for a call that had rejected')
})

test('a retry already on its way when the caller aborts does not call the operation', async () => {
  // The backoff ends while the thread is busy: the next attempt is queued
  // for the JavaScript thread, and the caller aborts before it runs.
  for (const withSignal of [false, true]) {
    const controller = new AbortController()
    let calls = 0
    const pending = executeWithFallback(
      withSignal
        ? (signal) => {
            calls++
            assert.equal(calls === 1 || !signal.aborted, true)
            throw new Error('down')
          }
        : () => {
            calls++
            throw new Error('down')
          },
      {
        operationName: unique('op'),
        retry: { maxRetries: 3, baseDelayMs: 10, maxDelayMs: 10, jitter: 'none' },
        signal: controller.signal,
      },
    )
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(calls, 1)
    busy(60)
    controller.abort(new Error('caller gave up'))
    await assert.rejects(pending, /caller gave up/)
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(calls, 1, `withSignal ${withSignal}: the operation was called after the caller aborted`)
  }
})

function exitsAlone(source) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', source], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error('the process did not exit by itself'))
    }, 10_000)
    // 'close': once its output is all read, which may be after it exited.
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout })
    })
  })
}

test('a call that never runs its attempts holds nothing that keeps the process alive', async () => {
  const aborted = await exitsAlone(`
    const { executeWithFallback } = require('.')
    executeWithFallback(async () => 1, { operationName: 'op', timeoutMs: 60_000, signal: AbortSignal.abort() })
      .catch((error) => console.log(error.name))
  `)
  assert.equal(aborted.stdout.trim(), 'AbortError')
  const joined = await exitsAlone(`
    const { executeWithFallback } = require('.')
    const options = { operationName: 'op', cacheKey: { prompt: 'p', modelId: 'm' }, dedupe: true, timeoutMs: 60_000 }
    Promise.all([executeWithFallback(async () => 1, options), executeWithFallback(async () => 2, options)])
      .then((results) => console.log(results.map((r) => r.data).join(',')))
  `)
  assert.equal(joined.stdout.trim(), '1,1')
})

test('a handler cut off by its thread ending is handed back, not charged a failed attempt', async () => {
  for (const ending of ['exit', 'terminate']) {
    const result = await exitsAlone(`
      const { Worker } = require('node:worker_threads')
      const lib = require('.')
      const id = lib.backgroundJobQueue.enqueue({ type: 'ai', operation: 'o', payload: {}, userId: 'u', maxRetries: 1 })
      const body = ${JSON.stringify(`
        const { parentPort } = require('node:worker_threads')
        const lib = require(${JSON.stringify(root)})
        lib.backgroundJobQueue.process(() => {
          parentPort.postMessage('running')
          if (${JSON.stringify(ending)} === 'exit') process.exit(0)
          const until = Date.now() + 2000
          while (Date.now() < until) {}
        }, { pollIntervalMs: 5 })`)}
      const w = new Worker(body, { eval: true })
      w.once('message', () => { if (${JSON.stringify(ending)} === 'terminate') w.terminate() })
      w.once('exit', () => setTimeout(() => {
        const job = lib.backgroundJobQueue.getAll().find((j) => j.id === id)
        console.log(JSON.stringify({ status: job.status, retryCount: job.retryCount }))
      }, 300))
    `)
    assert.deepEqual(JSON.parse(result.stdout.trim()), { status: 'pending', retryCount: 0 }, ending)
  }
})
