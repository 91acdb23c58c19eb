'use strict'

// A/B of two builds of this package in one process (interleaved batches,
// medians of ns per operation): the guard for a refactor of the binding.
//   node bench/ab/compare-builds.js <path of the other build's package>
// (e.g. a `git worktree` of the previous commit, built with npm run build).
// Both builds without diagnostics_channel subscribers, unless asked: the
// OpenTelemetry bridge of builds that have one subscribes whenever
// @opentelemetry/api resolves (a devDependency here).
if (process.env.FALLBACK_MECHANISMS_OTEL === undefined) process.env.FALLBACK_MECHANISMS_OTEL = '0'
const path = require('node:path')
const other = process.argv[2]
if (!other) {
  console.error('usage: node bench/ab/compare-builds.js <path of the other build>')
  process.exit(2)
}
const oldLib = require(path.resolve(other))
const newLib = require('../..')
const prompt = 'p'.repeat(2048)
const response = { text: 'r'.repeat(900), n: 1, list: [1, 2, 3] }
function setup(lib) {
  const cache = new lib.AIResponseCache()
  for (let i = 0; i < 1000; i++) cache.set(prompt + i, response, 'm')
  const queue = new lib.BackgroundJobQueue()
  for (let i = 0; i < 1000; i++) queue.enqueue({ type: 'ai', operation: 'o', payload: { i }, userId: 'u', priority: 'low' })
  lib.aiResponseCache.set(prompt, response, 'm')
  const failures = new lib.IntegrationFailureManager()
  return { cache, queue, failures }
}
oldLib.configure({ queue: { maxSize: 10_000_000 } }); newLib.configure({ queue: { maxSize: 10_000_000 } })
const envs = { old: setup(oldLib), new: setup(newLib) }
const libs = { old: oldLib, new: newLib }
const sync = {
  'cache get hit': (l, e, i) => e.cache.get(prompt + (i % 1000), 'm'),
  'cache getStats': (l, e) => e.cache.getStats(),
  'queue cycle': (l, e) => { const id = e.queue.enqueue({ type: 'ai', operation: 'o', payload: { a: 1 }, userId: 'u' }); const j = e.queue.dequeue(); e.queue.complete(j.id) },
  'queue getStats': (l, e) => e.queue.getStats(),
  'recordFailure': (l, e, i) => e.failures.recordFailure('svc' + (i % 50), 'op', 'err', 'why'),
  'getUserFriendlyMessage': (l) => l.getUserFriendlyMessage(null, 'cache'),
}
const ok = async () => response
const bad = async () => { throw new Error('down') }
/** An operation that fails `times` times, then answers. */
const failing = (times) => { let k = 0; return async () => { if (k++ < times) throw new Error('down'); return response } }
const noWait = { maxRetries: 2, baseDelayMs: 0, jitter: 'none' }
const service = { operation: 'svc', userId: 'u', timestamp: new Date() }
const asyncs = {
  'success no key': (l) => l.executeWithFallback(ok, { operationName: 'op' }),
  'success with key': (l) => l.executeWithFallback(ok, { operationName: 'op', cacheKey: { prompt, modelId: 'm' } }),
  'failure from cache': (l) => l.executeWithFallback(bad, { operationName: 'op', cacheKey: { prompt, modelId: 'm' } }),
  'failure queued': (l) => l.executeWithFallback(bad, { operationName: 'op', userId: 'u', queueOnFailure: { type: 'ai', payload: { a: 1 } } }),
  // Through the attempt loop (src/core/attempts.rs), with no backoff to
  // wait out: what the loop and its JavaScript round trips cost.
  'retry ok at once': (l) => l.executeWithFallback(ok, { operationName: 'op', retry: noWait }),
  'retry ok on 3rd': (l) => l.executeWithFallback(failing(2), { operationName: 'op', retry: noWait }),
  'timeoutMs ok': (l) => l.executeWithFallback(ok, { operationName: 'op', timeoutMs: 60_000 }),
  'service ok at once': (l) => l.executeService(ok, service),
  'service ok on 3rd': (l) => l.executeService(failing(2), service, { maxRetries: 2, baseDelay: 0 }),
}
const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1]
async function main() {
  const rounds = 15
  for (const [name, fn] of Object.entries(sync)) {
    const t = { old: [], new: [] }
    for (let r = 0; r < rounds; r++) for (const k of ['old', 'new']) {
      const n = 2000; const s = process.hrtime.bigint()
      for (let i = 0; i < n; i++) fn(libs[k], envs[k], i)
      t[k].push(Number(process.hrtime.bigint() - s) / n)
    }
    const o = median(t.old), w = median(t.new)
    console.log(name.padEnd(24), 'old', o.toFixed(0).padStart(6), 'new', w.toFixed(0).padStart(6), 'new/old', (w / o).toFixed(2))
  }
  for (const [name, fn] of Object.entries(asyncs)) {
    const t = { old: [], new: [] }
    for (let r = 0; r < rounds; r++) for (const k of ['old', 'new']) {
      const n = 1000; const s = process.hrtime.bigint()
      for (let b = 0; b < n / 100; b++) await Promise.all(Array.from({ length: 100 }, () => fn(libs[k])))
      t[k].push(Number(process.hrtime.bigint() - s) / n)
    }
    const o = median(t.old), w = median(t.new)
    console.log(name.padEnd(24), 'old', o.toFixed(0).padStart(6), 'new', w.toFixed(0).padStart(6), 'new/old', (w / o).toFixed(2))
  }
}
main()
