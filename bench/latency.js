'use strict'

// The slowest single native call at 100,000 cache entries or jobs, in a
// process holding only this package's data, so that another library's
// garbage does not put its collector pauses on our calls. Prints JSON.
//
//   node --expose-gc bench/latency.js <count>

const { performance, PerformanceObserver } = require('node:perf_hooks')
const { AIResponseCache, BackgroundJobQueue } = require('..')
const { prompts, RESPONSE, MODEL_ID } = require('./fixtures')

const count = Number(process.argv[2] || 100_000)
const samples = 20_000

// Garbage-collector pauses, to tell a slow call from a call the collector
// interrupted (JavaScript's collector, not native work).
const pauses = []
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) pauses.push([entry.startTime, entry.startTime + entry.duration])
}).observe({ entryTypes: ['gc'] })

const nextTick = () => new Promise((resolve) => setTimeout(resolve, 50))

async function profile(fn) {
  global.gc()
  await nextTick()
  pauses.length = 0
  const starts = new Float64Array(samples)
  const times = new Float64Array(samples)
  for (let i = 0; i < samples; i++) {
    const start = performance.now()
    fn(i)
    starts[i] = start
    times[i] = performance.now() - start
  }
  await nextTick()
  let maxOutsideGc = 0
  for (let i = 0; i < samples; i++) {
    const end = starts[i] + times[i]
    const interrupted = pauses.some(([from, to]) => from < end && to > starts[i])
    if (!interrupted) maxOutsideGc = Math.max(maxOutsideGc, times[i])
  }
  const sorted = Float64Array.from(times).sort()
  return { p999Ms: sorted[Math.floor(samples * 0.999)], maxMs: sorted[samples - 1], maxOutsideGcMs: maxOutsideGc }
}

const keys = prompts(count)
const cache = new AIResponseCache({ maxEntries: count, maxBytes: 2 ** 40 })
for (const key of keys) cache.set(key, RESPONSE, MODEL_ID)
const pick = (i) => keys[(i * 7919) % count]

const priorities = ['low', 'medium', 'high']
const job = (i) => ({ type: 'analytics', operation: 'sync', payload: { contentId: i }, userId: `user${i % 100}`, priority: priorities[i % 3], retryCount: 0, maxRetries: 3 })
const queue = new BackgroundJobQueue({ maxSize: 10_000_000 })
for (let i = 0; i < count; i++) queue.enqueue(job(i))

async function main() {
  const emptyCall = require('../binding.js').__emptyNativeCall
  const results = {
    'empty native call (control)': await profile(() => emptyCall()),
    'cache get': await profile((i) => cache.get(pick(i), MODEL_ID)),
    'cache set': await profile((i) => cache.set(pick(i), RESPONSE, MODEL_ID)),
    'cache getStats': await profile(() => cache.getStats()),
    'queue enqueue': await profile((i) => queue.enqueue(job(i))),
    'queue dequeue + complete': await profile(() => queue.complete(queue.dequeue().id)),
    'queue getStats': await profile(() => queue.getStats()),
  }
  process.stdout.write(JSON.stringify(results))
}

main()
