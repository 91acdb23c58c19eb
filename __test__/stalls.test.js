'use strict'

// A job whose handler ends its worker every time (maxStalls), and a worker
// that keeps its process alive until stopped. Runs on every backend: the
// children inherit the suite's store (a file of their own on SQLite, a
// prefix of their own on Redis).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { BackgroundJobQueue } = require('..')
const { assertThrowsCoded } = require('./helpers')

const root = path.join(__dirname, '..')

/** Starts `source` in a child process with the suite's store; `{ proc, output(), done }`. */
function start(source) {
  const env = { ...process.env }
  let dir
  if (env.FALLBACK_MECHANISMS_DB) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-stalls-'))
    env.FALLBACK_MECHANISMS_DB = path.join(dir, 'state.db')
  }
  const proc = spawn(process.execPath, ['-e', source], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', (chunk) => (stdout += chunk))
  proc.stderr.on('data', (chunk) => (stderr += chunk))
  const done = new Promise((resolve) => {
    // 'close': once its output is all read, which may be after it exited.
    proc.on('close', (code, signal) => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true })
      resolve({ code, signal, stdout, stderr })
    })
  })
  return { proc, done, output: () => stdout }
}

test('a job whose handler ends its worker thread every time fails after maxStalls, with a lastError that says so', async (t) => {
  const child = start(`
    const { Worker } = require('node:worker_threads')
    const lib = require('.')
    lib.configure({ queue: { maxStalls: 2 } })
    const id = lib.backgroundJobQueue.enqueue({ type: 'integration', userId: 'u', operation: 'crash', payload: {}, priority: 'medium', retryCount: 0, maxRetries: 1 })
    const body = ${JSON.stringify(`
      const lib = require(${JSON.stringify(root)})
      lib.backgroundJobQueue.process(() => process.exit(0), { pollIntervalMs: 10 })`)}
    const held = () => lib.backgroundJobQueue.getAll().find((job) => job.id === id)
    const settled = async () => {
      while (held().status === 'processing') await new Promise((resolve) => setTimeout(resolve, 10))
      return held()
    }
    ;(async () => {
      let runs = 0
      while ((await settled()).status === 'pending' && runs < 10) {
        const worker = new Worker(body, { eval: true })
        await new Promise((resolve) => worker.once('exit', resolve))
        runs++
      }
      console.log(JSON.stringify({ runs, job: await settled() }))
    })()`)
  t.after(() => child.proc.kill('SIGKILL'))
  const { code, stdout, stderr } = await child.done
  assert.equal(code, 0, stderr)
  const { runs, job } = JSON.parse(stdout.trim().split('\n').pop())
  // Two stalls handed it back untried; the third is past maxStalls 2: a
  // failed attempt, and with maxRetries 1 a dead letter.
  assert.equal(runs, 3)
  assert.equal(job.status, 'failed')
  assert.equal(job.retryCount, 1)
  assert.match(job.lastError, /stalled 3 times \(maxStalls 2\)/)
})

test('a worker thread that ends counts a stall only for the jobs whose handler it called', async (t) => {
  const child = start(`
    const { Worker } = require('node:worker_threads')
    const lib = require('.')
    lib.configure({ queue: { maxStalls: 1 } })
    const job = (operation, priority) => ({ type: 'integration', userId: 'u', operation, payload: {}, priority, retryCount: 0, maxRetries: 1 })
    const poison = lib.backgroundJobQueue.enqueue(job('poison', 'high'))
    const innocent = ['a', 'b', 'c'].map((name) => lib.backgroundJobQueue.enqueue(job(name, 'low')))
    const body = ${JSON.stringify(`
      const { parentPort } = require('node:worker_threads')
      const lib = require(${JSON.stringify(root)})
      lib.backgroundJobQueue.process((job) => {
        parentPort.postMessage(job.operation)
        if (job.operation === 'poison') process.exit(0)
      }, { concurrency: 4, pollIntervalMs: 10 })`)}
    const held = () => lib.backgroundJobQueue.getAll()
    const settled = async () => {
      while (held().some((job) => job.status === 'processing')) await new Promise((resolve) => setTimeout(resolve, 10))
      return held()
    }
    ;(async () => {
      const calls = []
      for (let round = 0; round < 6 && (await settled()).some((job) => job.status === 'pending'); round++) {
        const worker = new Worker(body, { eval: true })
        worker.on('message', (operation) => calls.push(operation))
        // A thread that never exits has run the innocent jobs: stop it once they are done.
        const done = setInterval(() => {
          if (held().filter((job) => job.operation !== 'poison').every((job) => job.status === 'completed')) worker.terminate()
        }, 20)
        await new Promise((resolve) => worker.once('exit', resolve))
        clearInterval(done)
      }
      const jobs = await settled()
      console.log(JSON.stringify({ calls, poison: jobs.find((job) => job.id === poison), innocent: jobs.filter((job) => innocent.includes(job.id)) }))
    })()`)
  t.after(() => child.proc.kill('SIGKILL'))
  const { code, stdout, stderr } = await child.done
  assert.equal(code, 0, stderr)
  const { calls, poison, innocent } = JSON.parse(stdout.trim().split('\n').pop())
  // The poison job ends as a dead letter (its second stall is past
  // maxStalls 1). The others were leased beside it but never called while
  // it ended their thread: handed back untried, then run once each.
  assert.equal(poison.status, 'failed')
  assert.match(poison.lastError, /stalled 2 times \(maxStalls 1\)/)
  assert.deepEqual(calls.filter((operation) => operation === 'poison'), ['poison', 'poison'])
  assert.deepEqual(calls.filter((operation) => operation !== 'poison').sort(), ['a', 'b', 'c'])
  for (const job of innocent) {
    assert.equal(job.status, 'completed', JSON.stringify(job))
    assert.equal(job.retryCount, 0)
    assert.equal(job.lastError, undefined)
  }
})

test('maxStalls is a whole number >= 0, checked like every bound', () => {
  assert.ok(new BackgroundJobQueue({ maxStalls: 0 }))
  assertThrowsCoded(assert, () => new BackgroundJobQueue({ maxStalls: -1 }), RangeError, 'ERR_OUT_OF_RANGE', /maxStalls/)
  assertThrowsCoded(assert, () => new BackgroundJobQueue({ maxStalls: 1.5 }), RangeError, 'ERR_OUT_OF_RANGE', /maxStalls/)
  assertThrowsCoded(assert, () => new BackgroundJobQueue({ maxStalls: '3' }), TypeError, 'ERR_INVALID_ARG_TYPE', /maxStalls/)
})

test('node worker.js whose only line is process(handlers) keeps running until it is stopped', async (t) => {
  const child = start(`
    require('.').backgroundJobQueue.process(() => {})
    console.log('started')`)
  t.after(() => child.proc.kill('SIGKILL'))
  while (!child.output().includes('started')) {
    if (child.proc.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.equal(child.proc.exitCode, null, 'the worker kept its process alive')
  child.proc.kill('SIGTERM')
  const { signal } = await child.done
  assert.equal(signal, 'SIGTERM')
})
