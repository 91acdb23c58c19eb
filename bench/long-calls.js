'use strict'

// How long the calls of issue #12 item 10 hold the JavaScript thread:
// listing 100k jobs, clearing 100k completed jobs, clearing 200k cache
// entries, on memory and on a SQLite file. Run after `npm run build`:
//   node bench/long-calls.js [memory|sqlite|all]
// Prints one line per call (ms, best of a few runs where the call can be
// repeated on fresh data). Not part of `npm run bench`.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { AIResponseCache, BackgroundJobQueue } = require('..')

const JOBS = 100_000
const ENTRIES = 200_000
const wanted = process.argv[2] || 'all'
const backends = wanted === 'all' ? ['memory', 'sqlite'] : [wanted]
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'long-calls-'))

function time(fn) {
  const start = process.hrtime.bigint()
  const result = fn()
  return [Number(process.hrtime.bigint() - start) / 1e6, result]
}

function options(backend, name, extra) {
  return backend === 'sqlite' ? { ...extra, storagePath: path.join(dir, `${name}-${Date.now()}.db`) } : extra
}

function row(backend, what, ms) {
  console.log(`${backend.padEnd(7)} ${what.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms`)
}

function filledQueue(backend, completeAll) {
  const queue = new BackgroundJobQueue(options(backend, 'queue', { maxSize: JOBS * 2 }))
  for (let i = 0; i < JOBS; i++) {
    queue.enqueue({ type: 'analytics', operation: 'send', payload: { i }, userId: `u${i % 100}` })
  }
  if (completeAll) {
    for (;;) {
      const job = queue.dequeue()
      if (job === null) break
      queue.complete(job.id)
    }
  }
  return queue
}

for (const backend of backends) {
  const queue = filledQueue(backend, false)
  row(backend, `getAll() at ${JOBS / 1000}k jobs`, time(() => queue.getAll())[0])
  row(backend, `getByStatus('pending') at ${JOBS / 1000}k`, time(() => queue.getByStatus('pending'))[0])
  // A release without paging ignores the options and returns everything.
  const hasPaging = queue.getAll({ limit: 1 }).length === 1
  if (hasPaging) {
    row(backend, `getAll({ limit: 50 }) at ${JOBS / 1000}k`, time(() => queue.getAll({ limit: 50 }))[0])
    row(backend, `getAll({ limit: 50, offset: 50k })`, time(() => queue.getAll({ limit: 50, offset: 50_000 }))[0])
    row(backend, `getByStatus('pending', { limit: 50 })`, time(() => queue.getByStatus('pending', { limit: 50 }))[0])
    row(backend, `getByStatus('failed', { limit: 50 }) (none)`, time(() => queue.getByStatus('failed', { limit: 50 }))[0])
    row(backend, `getByUser('u7', { limit: 50 })`, time(() => queue.getByUser('u7', { limit: 50 }))[0])
  }
  const done = filledQueue(backend, true)
  const [ms, cleared] = time(() => done.clearCompleted())
  row(backend, `clearCompleted() of ${cleared / 1000}k jobs`, ms)

  const cache = new AIResponseCache(options(backend, 'cache', { maxEntries: ENTRIES * 2 }))
  for (let i = 0; i < ENTRIES; i++) cache.set(`prompt ${i}`, { text: `answer ${i}` }, 'model')
  row(backend, `cache clear() at ${ENTRIES / 1000}k entries`, time(() => cache.clear())[0])
}

fs.rmSync(dir, { recursive: true, force: true })
