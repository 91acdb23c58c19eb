'use strict'

// The slowest single native call at 100,000 cache entries or jobs, in a
// process holding only this package's data, so that another library's
// garbage does not put its collector pauses on our calls. Prints JSON.
//
//   node --expose-gc bench/latency.js <count>

const { AIResponseCache, BackgroundJobQueue } = require('..')
const { slowestCalls } = require('./harness')
const { prompts, job, RESPONSE, MODEL_ID } = require('./fixtures')

const count = Number(process.argv[2] || 100_000)
const samples = 20_000
const profile = (fn) => slowestCalls(fn, samples)

const keys = prompts(count)
const cache = new AIResponseCache({ maxEntries: count, maxBytes: 2 ** 40 })
for (const key of keys) cache.set(key, RESPONSE, MODEL_ID)
const pick = (i) => keys[(i * 7919) % count]

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
