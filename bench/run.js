'use strict'

// npm run bench [-- --quick] [-- --only <group>]
//
// Every scenario side by side in one process run: this package (native), the
// plain JavaScript reference (bench/reference), lru-cache, cockatiel, and the
// floor (an empty native call). Prints a table of medians and ratios, checks
// the goals, and writes bench/results/latest.{json,svg,md}; a full run also
// updates the table in README.md.

// Measured without diagnostics_channel subscribers: the OpenTelemetry
// bridge (lib/telemetry.js) subscribes whenever @opentelemetry/api resolves,
// which it does in this repository (a devDependency). An explicit value
// given by the user is kept. The processes this one starts inherit it.
if (process.env.FALLBACK_MECHANISMS_OTEL === undefined) process.env.FALLBACK_MECHANISMS_OTEL = '0'

const diagnostics = require('node:diagnostics_channel')
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const { LRUCache } = require('lru-cache')
const cockatiel = require('cockatiel')

const native = require('..')
const binding = require('../binding.js')
const reference = require('./reference')
const { measureSync, measureAsync, compareAsync, compareSync, compareSequential, interleaved, eventLoopDelayP99 } = require('./harness')
const { prompts, RESPONSE, MODEL_ID } = require('./fixtures')
const { writeReports, formatNs } = require('./report')

const QUICK = process.argv.includes('--quick')
// `--only ai`: one group's scenarios (floor, execute, ai, cache, memory,
// queue, durable, latency, redis, redis-cluster, failures, guards), printed and not written to the
// reports, for a quick look while working on it.
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined
const SCALE = QUICK ? 0.2 : 1
const batches = QUICK ? 7 : 15
const n = (count) => Math.max(1, Math.round(count * SCALE))

const rows = []
const notes = []

/**
 * Records one scenario: `results` maps an implementation to its measurement;
 * `probe`, a single native call of the scenario, is also run once per turn
 * of the event loop to read the event-loop delay it causes; `note` says
 * what the comparison leaves out (printed under the table).
 */
async function record(group, scenario, results, probe, note) {
  const row = { group, scenario, results }
  if (note !== undefined) row.note = note
  if (probe) row.eventLoopP99Ms = await eventLoopDelayP99(probe, QUICK ? 100 : 300)
  rows.push(row)
  const cells = Object.entries(results)
    .map(([impl, r]) => `${impl} ${formatNs(r.nsPerOp)}`)
    .join('  ')
  const delay = row.eventLoopP99Ms === undefined ? '' : `  (event-loop p99 ${row.eventLoopP99Ms.toFixed(2)} ms)`
  console.log(`  ${scenario.padEnd(46)} ${cells}${delay}`)
  return row
}

const boom = new Error('model down')
const failing = async () => {
  throw boom
}

async function executeScenarios() {
  console.log('\nexecuteWithFallback')
  const [prompt] = prompts(1)
  const response = RESPONSE
  const succeed = async () => response
  const plainJs = async () => {
    try {
      const data = await succeed()
      return { success: true, data, message: 'Operation completed successfully', timestamp: new Date() }
    } catch {
      return null
    }
  }
  const policy = cockatiel.wrap(
    cockatiel.fallback(cockatiel.handleAll, () => null),
    cockatiel.retry(cockatiel.handleAll, { maxAttempts: 0 }),
  )
  const calls = { inFlight: 100, batches: n(200) }

  await record('execute', 'success, no cacheKey', await compareAsync({
    native: () => native.executeWithFallback(succeed, { operationName: 'op' }),
    reference: () => reference.executeWithFallback(succeed, { operationName: 'op' }),
    cockatiel: () => policy.execute(succeed),
    'plain JS': plainJs,
  }, calls), () => native.executeWithFallback(succeed, { operationName: 'op' }))

  const cached = { operationName: 'gen', cacheKey: { prompt, modelId: MODEL_ID } }
  await record('execute', 'success with cacheKey (2 KB prompt, 1 KB JSON)', await compareAsync({
    native: () => native.executeWithFallback(succeed, cached),
    reference: () => reference.executeWithFallback(succeed, cached),
  }, calls), () => native.executeWithFallback(succeed, cached))

  await record('execute', 'failure served from cache', await compareAsync({
    native: () => native.executeWithFallback(failing, cached),
    reference: () => reference.executeWithFallback(failing, cached),
  }, calls), () => native.executeWithFallback(failing, cached))

  native.configure({ queue: { maxSize: 10_000_000 } })
  const queued = { operationName: 'sync', userId: 'u', queueOnFailure: { type: 'analytics', payload: { contentId: 'c1' }, priority: 'low' } }
  const queueCalls = { inFlight: 100, batches: n(50) }
  await record('execute', 'failure queued', await compareAsync({
    native: () => native.executeWithFallback(failing, queued),
    reference: () => reference.executeWithFallback(failing, queued),
  }, queueCalls), () => native.executeWithFallback(failing, queued))

  const few = await measureAsync(() => native.executeWithFallback(succeed, { operationName: 'op' }), { inFlight: 100, batches: n(200) })
  const many = await measureAsync(() => native.executeWithFallback(succeed, { operationName: 'op' }), { inFlight: 10_000, batches: n(10) })
  await record('execute', 'success, 100 in flight', { native: few })
  await record('execute', 'success, 10,000 in flight', { native: many })
}

async function cacheScenarios() {
  for (const size of [1_000, 100_000]) {
    console.log(`\ncache with ${size.toLocaleString('en')} entries`)
    const keys = prompts(size)
    const misses = prompts(size + 1000).slice(size)
    const ours = new native.AIResponseCache({ maxEntries: size, maxBytes: 2 ** 40 })
    const lru = new LRUCache({ max: size })
    const ref = new reference.AIResponseCache()
    const entry = (p) => {
      const now = new Date()
      return { prompt: p, response: RESPONSE, timestamp: now, modelId: MODEL_ID, expiresAt: new Date(now.getTime() + 86_400_000) }
    }
    const lruKey = (p) => `${MODEL_ID}\u0000${p}`
    for (const p of keys) {
      ours.set(p, RESPONSE, MODEL_ID)
      lru.set(lruKey(p), entry(p))
      ref.set(p, RESPONSE, MODEL_ID)
    }
    const pick = (i) => keys[(i * 7919) % size]
    const ops = { ops: 1000, batches }
    await record('cache', `get hit @ ${size / 1000}k`, await compareSync({
      native: (i) => ours.get(pick(i), MODEL_ID),
      'lru-cache': (i) => lru.get(lruKey(pick(i))),
      reference: (i) => ref.get(pick(i), MODEL_ID),
    }, ops), (i) => ours.get(pick(i), MODEL_ID))
    await record('cache', `get miss @ ${size / 1000}k`, await compareSync({
      native: (i) => ours.get(misses[i % 1000], MODEL_ID),
      'lru-cache': (i) => lru.get(lruKey(misses[i % 1000])),
      reference: (i) => ref.get(misses[i % 1000], MODEL_ID),
    }, ops), (i) => ours.get(misses[i % 1000], MODEL_ID))
    await record('cache', `set (replace) @ ${size / 1000}k`, await compareSync({
      native: (i) => ours.set(pick(i), RESPONSE, MODEL_ID),
      'lru-cache': (i) => lru.set(lruKey(pick(i)), entry(pick(i))),
      reference: (i) => ref.set(pick(i), RESPONSE, MODEL_ID),
    }, ops), (i) => ours.set(pick(i), RESPONSE, MODEL_ID))
    await record('cache', `getStats @ ${size / 1000}k`, {
      native: await measureSync(() => ours.getStats(), { ops: 100, batches }),
      reference: await measureSync(() => ref.getStats(), { ops: size > 1000 ? 2 : 100, batches: size > 1000 ? 3 : batches }),
    }, () => ours.getStats())
  }
}

/**
 * Issue #13: the chain of models and streamed answers (README,
 * "Alternatives" and "Streamed answers"), each against the same done by
 * hand in plain JavaScript (lru-cache for the cache, keyed as the cache
 * rows key it), in the same run, batches interleaved.
 */
async function aiScenarios() {
  console.log('\nalternatives and streamed answers (issue #13)')
  const ALTERNATIVE = "We encountered an issue, but don't worry! We've switched to an alternative so you can keep going."
  const FROM_CACHE = "We encountered an issue, but don't worry! We're showing you a previous result while we work on this."
  const SUCCESS = 'Operation completed successfully'
  const [, altPrompt, replayPrompt, passPrompt] = prompts(4)
  const response = RESPONSE
  const succeeds = async () => response
  const fails = async () => {
    throw boom
  }
  const lru = new LRUCache({ max: 1000 })
  const lruKey = (p) => `${MODEL_ID}\u0000${p}`
  const entry = (p, value) => {
    const now = new Date()
    return { prompt: p, response: value, timestamp: now, modelId: MODEL_ID, expiresAt: new Date(now.getTime() + 86_400_000) }
  }
  const calls = { inFlight: 100, batches: n(200) }

  // The chain by hand: the primary, then each alternative in turn; the
  // first success answers, shaped as ours, and is cached when a key is given.
  const byHand = async (primary, alternatives, key) => {
    let primaryError
    try {
      const data = await primary()
      if (key !== undefined) lru.set(lruKey(key), entry(key, data))
      return { success: true, data, message: SUCCESS, timestamp: new Date() }
    } catch (error) {
      primaryError = error
    }
    for (const alternative of alternatives) {
      try {
        const data = await alternative.operation()
        if (key !== undefined) lru.set(lruKey(key), entry(key, data))
        return {
          success: true,
          data,
          message: ALTERNATIVE,
          timestamp: new Date(),
          metadata: { usedFallback: true, fallbackType: 'alternative', alternative: alternative.name },
        }
      } catch {
        // The next one.
      }
    }
    return { success: false, error: primaryError, message: primaryError.message, timestamp: new Date(), metadata: { usedFallback: false } }
  }
  const alternatives = [{ name: 'a1', operation: fails }, { name: 'a2', operation: succeeds }]
  const chainNote =
    'ours also reads the cooldowns of the three models from the shared store (one store call a chain) and asks whether each error is a rate limit or an overload (to bench the model); the hand-written chain has no shared cooldowns'
  const chainOptions = { operationName: 'chat', alternatives }
  await record('ai', 'second alternative answers', await compareAsync({
    native: () => native.executeWithFallback(fails, chainOptions),
    'plain JS': () => byHand(fails, alternatives),
  }, calls), () => native.executeWithFallback(fails, chainOptions), chainNote)

  const cachedChain = { operationName: 'chat-cached', cacheKey: { prompt: altPrompt, modelId: MODEL_ID }, alternatives }
  await record('ai', 'second alternative answers, cached (2 KB prompt, 1 KB JSON)', await compareAsync({
    native: () => native.executeWithFallback(fails, cachedChain),
    'plain JS': () => byHand(fails, alternatives, altPrompt),
  }, calls), () => native.executeWithFallback(fails, cachedChain),
  `${chainNote}; ours stores a copy of the answer (JSON text), lru-cache holds the object by reference`)

  // A cached streamed answer replayed: the primary fails, the cached text
  // comes back as a one-chunk ReadableStream. Calls one after another (the
  // latency one request sees), read to the first chunk, or to the end.
  const text = JSON.stringify(response)
  native.aiResponseCache.set(replayPrompt, text, MODEL_ID)
  lru.set(lruKey(replayPrompt), entry(replayPrompt, text))
  const replayOptions = { operationName: 'chat-replay', cacheKey: { prompt: replayPrompt, modelId: MODEL_ID }, stream: true }
  const replayByHand = async () => {
    try {
      const data = await fails()
      return { success: true, data, message: SUCCESS, timestamp: new Date() }
    } catch {
      const cached = lru.get(lruKey(replayPrompt))
      if (cached === undefined) throw new Error('not cached')
      const answer = cached.response
      const data = new ReadableStream({
        start(controller) {
          controller.enqueue(answer)
          controller.close()
        },
      })
      return { success: true, data, message: FROM_CACHE, timestamp: new Date(), metadata: { usedFallback: true, fallbackType: 'cache' } }
    }
  }
  const firstChunk = async (pending) => {
    const reader = (await pending).data.getReader()
    const read = await reader.read()
    if (read.done) throw new Error('no chunk')
    // Left as it is (releaseLock would reject \`closed\` with a new TypeError).
  }
  const toEnd = async (pending) => {
    const reader = (await pending).data.getReader()
    let length = 0
    for (let read = await reader.read(); !read.done; read = await reader.read()) length += read.value.length
    return length
  }
  const sequential = { ops: n(1000), batches }
  const replayNote = 'ours also records the failure in the failure history and checks the entry\'s expiry; calls one after another'
  await record('ai', 'cached streamed answer replayed: first chunk', await compareSequential({
    native: () => firstChunk(native.executeWithFallback(fails, replayOptions)),
    'plain JS': () => firstChunk(replayByHand()),
  }, sequential), () => firstChunk(native.executeWithFallback(fails, replayOptions)), replayNote)
  await record('ai', 'cached streamed answer replayed: to the end', await compareSequential({
    native: () => toEnd(native.executeWithFallback(fails, replayOptions)),
    'plain JS': () => toEnd(replayByHand()),
  }, sequential), () => toEnd(native.executeWithFallback(fails, replayOptions)), replayNote)

  // A streamed answer passed through and cached: 20 string chunks (1 KB),
  // read to the end; the whole text cached when the stream completes.
  const CHUNKS = Array.from({ length: 20 }, (_, i) => `chunk ${i} of the answer, `.padEnd(50, '.'))
  const source = async () => {
    let i = 0
    return new ReadableStream({
      pull(controller) {
        if (i < CHUNKS.length) controller.enqueue(CHUNKS[i++])
        else controller.close()
      },
    })
  }
  const passOptions = { operationName: 'chat-stream', cacheKey: { prompt: passPrompt, modelId: MODEL_ID }, stream: true }
  // By hand: wait for the first chunk (a stream that fails before it is a
  // failure to fall back from), then pass the chunks through, collect them
  // and cache the text at the end.
  const passByHand = async () => {
    const reader = (await source()).getReader()
    const first = await reader.read()
    if (first.done) throw new Error('empty stream')
    const parts = [first.value]
    const data = new ReadableStream({
      start(controller) {
        controller.enqueue(first.value)
      },
      async pull(controller) {
        const read = await reader.read()
        if (read.done) {
          lru.set(lruKey(passPrompt), entry(passPrompt, parts.join('')))
          controller.close()
        } else {
          parts.push(read.value)
          controller.enqueue(read.value)
        }
      },
      cancel: (reason) => reader.cancel(reason),
    })
    return { success: true, data, message: SUCCESS, timestamp: new Date() }
  }
  await record('ai', 'streamed answer passed through and cached (20 chunks)', await compareSequential({
    native: () => toEnd(native.executeWithFallback(source, passOptions)),
    'plain JS': () => toEnd(passByHand()),
  }, { ops: n(500), batches }), () => toEnd(native.executeWithFallback(source, passOptions)),
  'ours also checks the chunks are text and bounds the collected answer; calls one after another')

  // What observability costs: the fallback path with one no-op subscriber
  // on the fallback channel (which then builds and publishes a message a
  // call), against none, batches interleaved.
  const cached = { operationName: 'gen', cacheKey: { prompt: replayPrompt, modelId: MODEL_ID } }
  const batchOf = async () => {
    const pending = []
    for (let k = 0; k < calls.inFlight; k++) pending.push(native.executeWithFallback(fails, cached))
    await Promise.all(pending)
  }
  const noop = () => {}
  const subscribed = async () => {
    diagnostics.subscribe('fallback-mechanisms:fallback', noop)
    try {
      await batchOf()
    } finally {
      diagnostics.unsubscribe('fallback-mechanisms:fallback', noop)
    }
  }
  for (let w = 0; w < 2; w++) {
    await batchOf()
    await subscribed()
  }
  const observed = await interleaved({ native: batchOf, 'one no-op subscriber': subscribed }, (fn) => fn(), { calls: calls.inFlight, batches: calls.batches })
  await record('ai', 'failure served from cache, no subscriber vs one', observed, undefined,
    'the same call with a no-op diagnostics_channel subscriber on fallback-mechanisms:fallback (subscribed for its batches only); ratio above 1: what the subscriber costs')
}

function latencyScenario() {
  console.log('\nslowest single native call at 100,000 entries / jobs (a process of its own)')
  const count = n(100_000)
  const out = execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'latency.js'), String(count)])
  for (const [operation, timing] of Object.entries(JSON.parse(out))) {
    console.log(`  ${operation.padEnd(30)} p99.9 ${timing.p999Ms.toFixed(3)} ms, max ${timing.maxMs.toFixed(3)} ms, max outside GC pauses ${timing.maxOutsideGcMs.toFixed(3)} ms`)
    rows.push({ group: 'latency', scenario: operation, results: { native: timing } })
  }
}

function memoryScenario() {
  console.log('\nmemory per cached entry (100,000 entries, 2 KB prompt + 1 KB response)')
  const count = n(100_000)
  const measure = (kind) =>
    JSON.parse(execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'memory.js'), kind, String(count)]))
  const results = {}
  for (const kind of ['native', 'lru-cache', 'reference']) {
    const m = measure(kind)
    results[kind] = { bytesPerEntry: m.bytesPerEntry, heapPerEntry: m.heapPerEntry, rssPerEntry: m.rssPerEntry }
    console.log(`  ${kind.padEnd(10)} ${m.bytesPerEntry.toFixed(0)} B/entry (JS heap ${m.heapPerEntry.toFixed(0)} B, raw RSS growth ${m.rssPerEntry.toFixed(0)} B)`)
  }
  rows.push({ group: 'memory', scenario: 'memory per cached entry @ 100k', results })
}

async function queueScenarios() {
  const priorities = ['low', 'medium', 'high']
  for (const pending of [1_000, 10_000, 100_000]) {
    console.log(`\nqueue with ${pending.toLocaleString('en')} pending jobs`)
    const job = (i) => ({ type: 'analytics', operation: 'sync', payload: { contentId: i }, userId: `user${i % 100}`, priority: priorities[i % 3], retryCount: 0, maxRetries: 3 })
    const ours = new native.BackgroundJobQueue({ maxSize: 10_000_000 })
    const ref = new reference.BackgroundJobQueue()
    for (let i = 0; i < pending; i++) {
      ours.enqueue(job(i))
      ref.enqueue(job(i))
    }
    const cycle = (queue) => (i) => {
      queue.enqueue(job(i))
      queue.complete(queue.dequeue().id)
    }
    const refOps = pending >= 100_000 ? { ops: 2, batches: QUICK ? 3 : 5, warmup: 1 } : pending >= 10_000 ? { ops: 10, batches, warmup: 5 } : { ops: 100, batches }
    await record('queue', `enqueue→dequeue→complete @ ${pending / 1000}k pending`, {
      native: await measureSync(cycle(ours), { ops: 1000, batches }),
      reference: await measureSync(cycle(ref), refOps),
    }, cycle(ours))
  }
}

/**
 * Durable mode: the same cycle on a queue kept in a SQLite file, beside the
 * memory queue and beside a plain better-sqlite3 queue in JavaScript (one
 * transaction per operation), all three on the same machine in one run.
 */
async function durableQueueScenario() {
  const os = require('node:os')
  const { SqliteJobQueue } = require('./reference/sqlite-queue')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-bench-'))
  try {
    const pending = 1_000
    console.log(`\ndurable mode: a queue with ${pending.toLocaleString('en')} pending jobs, caches (files in ${dir})`)
    const job = (i) => ({ type: 'analytics', operation: 'sync', payload: { contentId: i }, userId: `user${i % 100}`, priority: ['low', 'medium', 'high'][i % 3], retryCount: 0, maxRetries: 3 })
    const queues = {
      native: new native.BackgroundJobQueue({ maxSize: 10_000_000, storagePath: path.join(dir, 'native.db') }),
      'memory mode': new native.BackgroundJobQueue({ maxSize: 10_000_000 }),
      'better-sqlite3': new SqliteJobQueue(path.join(dir, 'better-sqlite3.db')),
    }
    for (const queue of Object.values(queues)) for (let i = 0; i < pending; i++) queue.enqueue(job(i))
    const cycle = (queue) => (i) => {
      queue.enqueue(job(i))
      queue.complete(queue.dequeue().id)
    }
    const impls = Object.fromEntries(Object.entries(queues).map(([name, queue]) => [name, cycle(queue)]))
    await record('durable', `durable (SQLite file): enqueue→dequeue→complete @ ${pending / 1000}k pending`, await compareSync(impls, { ops: QUICK ? 100 : 300, batches }), cycle(queues.native))
    queues['better-sqlite3'].close()

    // The cache in a file: hits with every key equally likely (each hit is
    // on an entry not used for a while: it must record its use, a write)
    // and with hot keys (90% of gets on 10% of the entries: mostly recent,
    // read-only), and getStats at two sizes (it must not grow with them).
    for (const size of [1_000, QUICK ? 5_000 : 10_000]) {
      const keys = prompts(size)
      const file = new native.AIResponseCache({ maxEntries: 1_000_000, storagePath: path.join(dir, `cache-${size}.db`) })
      const memory = new native.AIResponseCache({ maxEntries: 1_000_000 })
      for (const p of keys) {
        file.set(p, RESPONSE, MODEL_ID)
        memory.set(p, RESPONSE, MODEL_ID)
      }
      const uniform = (i) => keys[(i * 7919) % size]
      const hot = (i) => (i % 10 === 0 ? uniform(i) : keys[(i * 7919) % Math.ceil(size / 10)])
      const label = `${size / 1000}k`
      const ops = { ops: QUICK ? 100 : 300, batches }
      for (const [pattern, pick] of [['every key alike', uniform], ['hot keys', hot]]) {
        await record('durable', `durable (SQLite file): cache get hit, ${pattern} @ ${label}`, await compareSync({
          native: (i) => file.get(pick(i), MODEL_ID),
          'memory mode': (i) => memory.get(pick(i), MODEL_ID),
        }, ops), (i) => file.get(pick(i), MODEL_ID))
      }
      await record('durable', `durable (SQLite file): cache getStats @ ${label}`, await compareSync({
        native: () => file.getStats(),
        'memory mode': () => memory.getStats(),
      }, ops), () => file.getStats())
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Redis mode (bench/redis.js, a process of its own with its own
 * redis-server): the queue against BullMQ, a cache hit against one ioredis
 * GET, the slowest synchronous calls.
 */
function redisScenario(...flags) {
  const args = ['--expose-gc', path.join(__dirname, 'redis.js'), ...(QUICK ? ['--quick'] : []), ...flags]
  const out = execFileSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 })
  rows.push(...JSON.parse(out))
}

/** The same queue and cache rows on a Redis Cluster of 3 masters (bench/redis.js --cluster). */
const redisClusterScenario = () => redisScenario('--cluster')

async function failureScenario() {
  console.log('\nshouldSkipService with 1,000 services')
  const ours = new native.IntegrationFailureManager()
  const ref = new reference.IntegrationFailureManager()
  for (let round = 0; round < 5; round++) {
    for (let s = 0; s < 1000; s++) {
      ours.recordFailure(`service-${s}`, 'op', 'HTTP 503', 'Service temporarily unavailable: HTTP 503')
      ref.recordFailure(`service-${s}`, 'op', 'HTTP 503', 'Service temporarily unavailable: HTTP 503')
    }
  }
  const ops = { ops: 1000, batches }
  await record('failures', 'shouldSkipService, 1,000 services × 5 failures', {
    native: await measureSync((i) => ours.shouldSkipService(`service-${i % 1000}`), ops),
    reference: await measureSync((i) => ref.shouldSkipService(`service-${i % 1000}`), { ops: 100, batches }),
  }, (i) => ours.shouldSkipService(`service-${i % 1000}`))
  await record('failures', 'recordFailure', await compareSync({
    native: (i) => ours.recordFailure(`service-${i % 1000}`, 'op', 'e', 'r'),
    reference: (i) => ref.recordFailure(`service-${i % 1000}`, 'op', 'e', 'r'),
  }, ops), (i) => ours.recordFailure(`service-${i % 1000}`, 'op', 'e', 'r'))
}

/**
 * Issue #22: a call through a closed shared breaker and a limit check (one
 * store update in and one out), against today's plain call, in memory.
 */
async function guardScenario() {
  console.log('\nshared breakers and limits (issue #22)')
  const succeed = async () => RESPONSE
  const guarded = { operationName: 'guarded', service: 'bench-model', breaker: { size: 100, minimumCalls: 100 }, limits: { requestsPerMinute: 1e12 } }
  await record('guards', 'success through a closed shared breaker + limit check', await compareAsync({
    native: () => native.executeWithFallback(succeed, guarded),
    'plain call': () => native.executeWithFallback(succeed, { operationName: 'op' }),
  }, { inFlight: 100, batches: n(100) }), () => native.executeWithFallback(succeed, guarded),
  'the guarded call runs as a chain of one model and makes two store updates (its entry, then its outcome), each a JSON record read and written in Rust; the plain call makes none')
}

async function floorScenario() {
  console.log('\nthe floor')
  const noop = binding.__emptyNativeCall
  const jsNoop = () => undefined
  await record('floor', 'empty call', await compareSync({ native: () => noop(), 'plain JS': () => jsNoop() }, { ops: 10_000, batches }), () => noop())
}

async function main() {
  console.log(`fallback-mechanisms benchmark${QUICK ? ' (quick)' : ''}: Node ${process.version}, ${require('node:os').cpus().length} cores`)
  const scenarios = {
    floor: floorScenario,
    execute: executeScenarios,
    ai: aiScenarios,
    cache: cacheScenarios,
    memory: memoryScenario,
    queue: queueScenarios,
    durable: durableQueueScenario,
    latency: latencyScenario,
    redis: () => redisScenario(),
    'redis-cluster': redisClusterScenario,
    failures: failureScenario,
    guards: guardScenario,
  }
  if (ONLY !== undefined && !(ONLY in scenarios)) throw new Error(`--only: one of ${Object.keys(scenarios).join(', ')}`)
  for (const [group, scenario] of Object.entries(scenarios)) {
    if (ONLY === undefined || ONLY === group) await scenario()
  }
  if (ONLY !== undefined) return
  const report = writeReports(rows, { quick: QUICK, notes, updateReadme: !QUICK })
  console.log(`\n${report.table}\n\n${report.goals}\n`)
  console.log(`results: ${path.relative(process.cwd(), report.files.json)}, ${path.relative(process.cwd(), report.files.svg)}`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
