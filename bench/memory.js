'use strict'

// One implementation's memory per cached entry, in a process of its own,
// after caching `count` entries of a 2 KB prompt and a 1 KB response:
//   bytesPerEntry = live JS heap growth (heapUsed after a full GC)
//                 + memory outside the JS heap (RSS growth minus the growth of
//                   the heap V8 has reserved, which garbage alone inflates).
// Raw RSS growth is reported too.
//
//   node --expose-gc bench/memory.js <native|lru-cache|reference> <count>

const { prompt, RESPONSE, MODEL_ID } = require('./fixtures')

const [kind, countText] = process.argv.slice(2)
const count = Number(countText)

function makeStore() {
  if (kind === 'native') {
    const { AIResponseCache } = require('..')
    const cache = new AIResponseCache({ maxEntries: count, maxBytes: 2 ** 40 })
    return (p, r) => cache.set(p, r, MODEL_ID)
  }
  if (kind === 'lru-cache') {
    const { LRUCache } = require('lru-cache')
    const cache = new LRUCache({ max: count })
    return (p, r) => {
      const now = new Date()
      // The same entry the contract describes, held by reference.
      cache.set(`${MODEL_ID}\u0000${p}`, { prompt: p, response: r, timestamp: now, modelId: MODEL_ID, expiresAt: new Date(now.getTime() + 86_400_000) })
    }
  }
  const { AIResponseCache } = require('./reference')
  const cache = new AIResponseCache()
  return (p, r) => cache.set(p, r, MODEL_ID)
}

function usage() {
  global.gc()
  global.gc()
  const m = process.memoryUsage()
  return { heap: m.heapUsed + m.external + m.arrayBuffers, reserved: m.heapTotal, rss: m.rss }
}

// Kept on globalThis: a local the code no longer reads may be collected.
globalThis.store = makeStore()
const set = globalThis.store
// Each entry gets its own response object, as real responses are.
const responses = () => JSON.parse(JSON.stringify(RESPONSE))
set(prompt(-1), responses())
const before = usage()
for (let i = 0; i < count; i++) set(prompt(i), responses())
const after = usage()
process.stdout.write(
  JSON.stringify({
    kind,
    count,
    bytesPerEntry:
      (after.heap - before.heap + Math.max(0, after.rss - before.rss - (after.reserved - before.reserved))) / count,
    heapPerEntry: (after.heap - before.heap) / count,
    rssPerEntry: (after.rss - before.rss) / count,
  }),
)
