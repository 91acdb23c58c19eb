'use strict'

// Process-wide state (API.md §9): the singletons survive the package's
// JavaScript being evaluated again (Next.js hot reload) and are shared with
// worker threads; executeWithFallback works inside a worker too.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')

const packageRoot = path.join(__dirname, '..')

function freshRequire() {
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(packageRoot) && !key.includes('node_modules')) delete require.cache[key]
  }
  return require(packageRoot)
}

function runWorker(source) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData: { packageRoot } })
    let message
    worker.on('message', (m) => { message = m })
    worker.on('error', reject)
    worker.on('exit', (code) => (code === 0 ? resolve(message) : reject(new Error(`worker exited with ${code}`))))
  })
}

test('evaluating the package again sees the same cache, queue and failures', () => {
  const first = require(packageRoot)
  first.aiResponseCache.set('hot reload', { kept: true }, 'm')
  const jobId = first.queueForLater('ai', 'op', { n: 1 }, 'reload-user')
  first.integrationFailureManager.recordFailure('reload-svc', 'op', 'e', 'r')

  const second = freshRequire()
  assert.notEqual(second, first, 'the module really was evaluated again')
  assert.deepEqual(second.aiResponseCache.get('hot reload', 'm').response, { kept: true })
  assert.equal(second.backgroundJobQueue.getByUser('reload-user')[0].id, jobId.data)
  assert.equal(second.integrationFailureManager.getFailures('reload-svc').length, 1)
  assert.ok(second.aiResponseCache instanceof second.AIResponseCache)
})

test('executeWithFallback still works after the package is evaluated again', async () => {
  const again = freshRequire()
  const result = await again.executeWithFallback(async () => { throw new Error('x') }, { operationName: 'op', defaultValue: 1 })
  assert.equal(result.data, 1)
  const ok = await again.executeWithFallback(async () => 2, { operationName: 'op' })
  assert.equal(ok.data, 2)
})

test('a worker thread shares the singletons both ways', async () => {
  const main = require(packageRoot)
  main.aiResponseCache.set('from main', 'hello', 'm')
  const seen = await runWorker(`
    const { parentPort, workerData } = require('node:worker_threads')
    const lib = require(workerData.packageRoot)
    lib.aiResponseCache.set('from worker', 'hi back', 'm')
    lib.integrationFailureManager.recordFailure('worker-svc', 'op', 'e', 'r')
    const id = lib.backgroundJobQueue.enqueue({ type: 'ai', operation: 'w', payload: { w: 1 }, userId: 'worker-user', priority: 'high', retryCount: 0, maxRetries: 3 })
    parentPort.postMessage({ seen: lib.aiResponseCache.get('from main', 'm').response, id })
  `)
  assert.equal(seen.seen, 'hello')
  assert.equal(main.aiResponseCache.get('from worker', 'm').response, 'hi back')
  assert.equal(main.integrationFailureManager.getFailures('worker-svc').length, 1)
  assert.equal(main.backgroundJobQueue.getByUser('worker-user')[0].id, seen.id)
})

test('executeWithFallback runs inside a worker and falls back to the shared cache', async () => {
  const main = require(packageRoot)
  main.aiResponseCache.set('worker prompt', { answer: 'cached in main' }, 'm')
  const results = await runWorker(`
    const { parentPort, workerData } = require('node:worker_threads')
    const lib = require(workerData.packageRoot)
    ;(async () => {
      const failed = await lib.executeWithFallback(async () => { throw new Error('down') }, {
        operationName: 'gen', cacheKey: { prompt: 'worker prompt', modelId: 'm' },
      })
      const fresh = await lib.executeWithFallback(async () => ({ answer: 'from worker' }), {
        operationName: 'gen', cacheKey: { prompt: 'worker fresh', modelId: 'm' },
      })
      parentPort.postMessage({ failed: failed.data, type: failed.metadata.fallbackType, fresh: fresh.data })
    })()
  `)
  assert.deepEqual(results, { failed: { answer: 'cached in main' }, type: 'cache', fresh: { answer: 'from worker' } })
  assert.deepEqual(main.aiResponseCache.get('worker fresh', 'm').response, { answer: 'from worker' })
})

test('executeService retries, timed on the Rust side, inside a worker', async () => {
  const result = await runWorker(`
    const { parentPort, workerData } = require('node:worker_threads')
    const lib = require(workerData.packageRoot)
    let n = 0
    lib.executeService(async () => { if (++n < 3) throw new Error('flaky'); return 'worker ok' }, { operation: 'in-worker' }, { maxRetries: 3, baseDelay: 10, maxDelay: 20 })
      .then((r) => parentPort.postMessage({ data: r.data, attempts: r.metadata.attempts }))
  `)
  assert.deepEqual(result, { data: 'worker ok', attempts: 3 })
})

test('instances made with new are not shared with a worker', async () => {
  const main = require(packageRoot)
  const own = new main.AIResponseCache()
  own.set('private', 1, 'm')
  const seen = await runWorker(`
    const { parentPort, workerData } = require('node:worker_threads')
    const lib = require(workerData.packageRoot)
    parentPort.postMessage(lib.aiResponseCache.get('private', 'm'))
  `)
  assert.equal(seen, null)
})
