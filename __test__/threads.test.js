'use strict'

// Worker threads that end (terminate() or process.exit) while this package
// has work pending on their behalf: a running worker with a job in hand, a
// retry waiting, a timeout running, an executeService retry. The process
// must keep running, and a job leased by the ended thread must come back.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const root = path.join(__dirname, '..')

const fs = require('node:fs')
const os = require('node:os')

/**
 * Runs `source` in a child process. On the SQLite backend the child gets a
 * file of its own, so that its counts are its own.
 */
function runChild(source, timeoutMs = 30_000) {
  const env = { ...process.env }
  let dir
  if (env.FALLBACK_MECHANISMS_DB) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-threads-'))
    env.FALLBACK_MECHANISMS_DB = path.join(dir, 'state.db')
  }
  const cleanup = () => dir && fs.rmSync(dir, { recursive: true, force: true })
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', source], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      cleanup()
      reject(new Error(`child timed out; stdout: ${stdout}; stderr: ${stderr}`))
    }, timeoutMs)
    // 'close', not 'exit': the output may still be on its way when the
    // process has exited (under wine, all of it was, now and then).
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      cleanup()
      resolve({ code, signal, stdout, stderr })
    })
  })
}

const PENDING_KINDS = {
  worker: `
    lib.backgroundJobQueue.enqueue({ type: 'integration', userId: 'u', operation: 'op', payload: {}, priority: 'medium', maxRetries: 3 })
    lib.backgroundJobQueue.process(async () => { parentPort.postMessage('started'); await new Promise(() => {}) }, { pollIntervalMs: 10 })`,
  retry: `
    lib.executeWithFallback(async () => { throw new Error('down') }, { operationName: 'op', retry: { maxRetries: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 } })
    setTimeout(() => parentPort.postMessage('started'), 50)`,
  timeout: `
    lib.executeWithFallback(() => new Promise(() => {}), { operationName: 'op', timeoutMs: 60_000 })
    setTimeout(() => parentPort.postMessage('started'), 50)`,
  service: `
    lib.executeService(async () => { throw new Error('down') }, { operation: 'op' }, { maxRetries: 5, baseDelay: 60_000, maxDelay: 60_000 })
    setTimeout(() => parentPort.postMessage('started'), 50)`,
}

for (const [kind, work] of Object.entries(PENDING_KINDS)) {
  for (const ending of ['terminate', 'exit']) {
    test(`a worker thread that ends (${ending}) with a pending ${kind} leaves the process running`, async () => {
      const source = `
        const { Worker } = require('node:worker_threads')
        const lib = require('.')
        lib.configure({ queue: { leaseMs: 300 } })
        const body = ${JSON.stringify(`
          const { parentPort } = require('node:worker_threads')
          const lib = require(${JSON.stringify(root)})
          parentPort.on('message', () => process.exit(0))
          ${work}`)}
        async function once() {
          const w = new Worker(body, { eval: true })
          await new Promise((resolve) => w.once('message', resolve))
          if (${JSON.stringify(ending)} === 'terminate') await w.terminate()
          else { w.postMessage('exit'); await new Promise((resolve) => w.once('exit', resolve)) }
        }
        ;(async () => {
          const before = lib.backgroundJobQueue.getStats()
          for (let i = 0; i < 3; i++) await once()
          await new Promise((resolve) => setTimeout(resolve, 700))
          const stats = lib.backgroundJobQueue.getStats()
          console.log(JSON.stringify({ alive: true, processing: stats.processing - before.processing, pending: stats.pending - before.pending }))
        })()
      `
      const result = await runChild(source)
      assert.equal(result.signal, null, `killed by ${result.signal}: ${result.stderr}`)
      assert.equal(result.code, 0, result.stderr)
      const report = JSON.parse(result.stdout.trim().split('\n').pop())
      assert.equal(report.alive, true)
      if (kind === 'worker') {
        // Three jobs were leased by threads that ended: all back to pending.
        assert.equal(report.processing, 0)
        assert.equal(report.pending, 3)
      }
    })
  }
}

test('a worker keeps the process running until stopped; keepAlive: false lets an idle one exit', async () => {
  const idle = await runChild(`
    const lib = require('.')
    const q = new lib.BackgroundJobQueue()
    q.process(async () => {}, { pollIntervalMs: 10, keepAlive: false })
    process.on('exit', () => console.log('exited'))
  `)
  assert.equal(idle.code, 0, idle.stderr)
  assert.equal(idle.stdout.trim(), 'exited')
  const kept = await runChild(`
    const lib = require('.')
    const q = new lib.BackgroundJobQueue()
    const started = Date.now()
    const worker = q.process(async () => {}, { pollIntervalMs: 10 })
    // Nothing else keeps the process alive: only the worker can.
    const check = setInterval(() => {
      if (Date.now() - started < 400) return
      clearInterval(check)
      console.log('still running')
      worker.stop()
    }, 50)
    check.unref()
    process.on('exit', () => console.log('exited'))
  `)
  assert.equal(kept.code, 0, kept.stderr)
  assert.deepEqual(kept.stdout.trim().split('\n'), ['still running', 'exited'])
})
