'use strict'

// The Redis rows of `npm run bench`, in a process of their own that
// bench/run.js starts: one redis-server (scripts/redis-server.js: 127.0.0.1,
// a free port, a temporary directory; stopped by its process id, also when
// a scenario fails) that every implementation of a row uses in the same
// run. Prints the rows as JSON on stdout, progress on stderr.
//
//   node --expose-gc bench/redis.js [--quick] [--cluster]
//
// With --cluster the same queue and cache rows run on a Redis Cluster of 3
// masters (each with a replica) instead: this package and ioredis
// (`Redis.Cluster`) are given one node's address and discover the rest,
// BullMQ's keys get the hash-tagged prefix `{bull}` that it requires there;
// the server's CPU time and command counts are summed over the masters.
//
// - Queue: enqueue → process → complete throughput, this package's worker
//   against BullMQ's, at concurrency 1 and 16; also what each asks of the
//   server per job (requests, from MONITOR in a batch of its own; Redis's
//   CPU time, from INFO in the timed batches).
// - Idle worker: the commands a second a worker with nothing to do sends
//   to the server (INFO commandstats), ours against BullMQ's.
// - Cache: `aiResponseCache.get` hit against one `GET` from ioredis (the
//   floor); also the server's time for each (INFO commandstats).
// - The slowest synchronous calls in Redis mode.

const { execFileSync } = require('node:child_process')
const { performance } = require('node:perf_hooks')

const Redis = require('ioredis')
const native = require('..')
const { startRedis, startRedisCluster } = require('../scripts/redis-server')
const { compareSequential, eventLoopDelayP99, median, slowestCalls, yieldToLoop } = require('./harness')
const { prompts, job, RESPONSE, MODEL_ID } = require('./fixtures')
const { formatNs } = require('./report')

const QUICK = process.argv.includes('--quick')
const CLUSTER = process.argv.includes('--cluster')
/** How the rows name the server. */
const NAME = CLUSTER ? 'Redis Cluster' : 'Redis'
const GROUP = CLUSTER ? 'redis-cluster' : 'redis'
const batches = QUICK ? 5 : 15
const rows = []

const log = (line) => process.stderr.write(`${line}\n`)

/** Redis's CPU time so far (user + system), µs. */
async function serverCpuUs(admin) {
  const text = await admin.info('cpu')
  const seconds = (name) => Number(text.match(new RegExp(`${name}:([\\d.]+)`))[1])
  return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6
}

/** INFO commandstats of one command: calls and µs so far. */
async function commandStats(admin, command) {
  const text = await admin.info('commandstats')
  const found = text.match(new RegExp(`cmdstat_${command}:calls=(\\d+),usec=(\\d+)`))
  return found ? { calls: Number(found[1]), usec: Number(found[2]) } : { calls: 0, usec: 0 }
}

/** INFO commandstats summed over `commands`. */
async function serverCalls(admin, commands) {
  const all = await Promise.all(commands.map((command) => commandStats(admin, command)))
  return all.reduce((sum, one) => ({ calls: sum.calls + one.calls, usec: sum.usec + one.usec }), { calls: 0, usec: 0 })
}

/** The server's µs per call of `command` between two `commandStats`. */
const serverUsPerCall = (before, after) => (after.usec - before.usec) / Math.max(1, after.calls - before.calls)

/** `promise`, or an error after `ms` (a batch that never finishes must not hang the run). */
function within(promise, ms, what) {
  let timer
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** A promise with its resolve and reject. */
function deferred() {
  let resolve, reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * Cache hits of the singleton (Redis backend, entries of a 2 KB prompt and
 * a 1 KB JSON response), one call after another, batches interleaved:
 * - cold: every call reads an entry this process has not read before, so
 *   the local copy cannot answer (one HMGET), against one ioredis GET of a
 *   1 KB value, also a different key each call;
 * - warm: every entry read before, so the local copy answers, against the
 *   same entries in memory mode.
 */
async function cacheScenario(server, admin) {
  const ops = QUICK ? 200 : 500
  const fresh = ops * (batches + 2)
  native.configure({ cache: { maxEntries: fresh * 2, maxBytes: 2 ** 32 } })
  const keys = prompts(fresh)
  const cache = native.aiResponseCache
  for (const p of keys) cache.set(p, RESPONSE, MODEL_ID)
  const client = server.client()
  try {
    const text = JSON.stringify(RESPONSE)
    for (let i = 0; i < fresh; i++) await client.set(`bench:get:${i}`, text)
    // A different entry every call, whatever index the harness passes.
    let nextNative = 0
    let nextGet = 0
    const before = { reads: await serverCalls(admin, ['hmget', 'evalsha']), get: await commandStats(admin, 'get') }
    const cold = await compareSequential({
      native: () => cache.get(keys[nextNative++], MODEL_ID),
      'ioredis GET': () => client.get(`bench:get:${nextGet++}`),
    }, { ops, batches })
    const after = await serverCalls(admin, ['hmget', 'evalsha'])
    // Server time per native hit: its read and its share of the batched bookkeeping.
    cold.native.serverUs = (after.usec - before.reads.usec) / nextNative
    cold.native.requestsPerHit = (after.calls - before.reads.calls) / nextNative
    cold['ioredis GET'].serverUs = serverUsPerCall(before.get, await commandStats(admin, 'get'))
    report(`${NAME}: cache get hit, cold copy (2 KB prompt, 1 KB JSON)`, cold)

    const size = 1_000
    const pick = (i) => keys[(i * 7919) % size]
    // The same entries in memory mode: what a warm local copy is held to.
    const inMemory = new native.AIResponseCache({ maxEntries: size * 2 })
    for (let i = 0; i < size; i++) inMemory.set(keys[i], RESPONSE, MODEL_ID)
    for (let i = 0; i < size; i++) cache.get(keys[i], MODEL_ID)
    const warmBefore = await serverCalls(admin, ['hmget'])
    const warm = await compareSequential({
      native: (i) => cache.get(pick(i), MODEL_ID),
      'memory mode': (i) => inMemory.get(pick(i), MODEL_ID),
    }, { ops, batches })
    warm.native.serverReads = (await serverCalls(admin, ['hmget'])).calls - warmBefore.calls
    report(`${NAME}: cache get hit, warm copy @ 1k`, warm, await eventLoopDelayP99((i) => cache.get(pick(i), MODEL_ID), QUICK ? 100 : 300))
  } finally {
    client.disconnect()
  }
}

/**
 * Issue #22: a call through a closed shared breaker and a limit check,
 * one call at a time, against one ioredis EVALSHA of a script that does
 * nothing (the round trip every store update costs at least).
 */
async function guardScenario(server) {
  const client = server.client()
  try {
    const sha = await client.script('LOAD', 'return 1')
    const succeed = async () => RESPONSE
    const guarded = { operationName: 'guarded', service: 'bench-model', breaker: { size: 100, minimumCalls: 100 }, limits: { requestsPerMinute: 1e12 } }
    const results = await compareSequential({
      native: () => native.executeWithFallback(succeed, guarded),
      'ioredis EVALSHA': () => client.evalsha(sha, 0),
    }, { ops: QUICK ? 100 : 300, batches })
    report(`${NAME}: success through a closed shared breaker + limit check`, results)
  } finally {
    client.disconnect()
  }
}

function report(scenario, results, eventLoopP99Ms) {
  rows.push({ group: GROUP, scenario, results, eventLoopP99Ms })
  const cells = Object.entries(results).map(([name, r]) => `${name} ${formatNs(r.nsPerOp)}${r.serverUs === undefined ? '' : ` (server ${r.serverUs.toFixed(1)} µs)`}`)
  const loop = eventLoopP99Ms === undefined ? '' : `  (event-loop p99 ${eventLoopP99Ms.toFixed(2)} ms)`
  log(`  ${scenario.padEnd(50)} ${cells.join('  ')}${loop}`)
}

/**
 * The staleness window of the local copy: instance A writes an entry that
 * instance B holds in its copy; B reads in a loop until it answers the new
 * value. Timed from A's write returning (the server has applied it) to B's
 * first read of the new value. Two links to one server (two host names),
 * as two processes would have.
 */
async function stalenessScenario(server) {
  const url = new URL(server.url)
  const options = (host) => ({ redisUrl: `redis://${host}:${url.port}`, keyPrefix: 'bench-stale' })
  const a = new native.AIResponseCache(options('127.0.0.1'))
  const b = new native.AIResponseCache(options('localhost'))
  const rounds = QUICK ? 200 : 1_000
  const prompt = prompts(1)[0]
  a.set(prompt, { round: -1 }, MODEL_ID)
  // Until B's copy is live and holds the entry.
  b.get(prompt, MODEL_ID)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const windows = []
  let served = 0
  for (let round = 0; round < rounds; round++) {
    b.get(prompt, MODEL_ID)
    a.set(prompt, { round }, MODEL_ID)
    const start = performance.now()
    let reads = 0
    while (b.get(prompt, MODEL_ID).response.round !== round) reads++
    windows.push((performance.now() - start) * 1000)
    if (reads > 0) served++
    if (round % 50 === 0) await yieldToLoop()
  }
  windows.sort((x, y) => x - y)
  const at = (q) => windows[Math.min(windows.length - 1, Math.floor(q * windows.length))]
  const row = { group: 'redis-staleness', scenario: 'Redis: write on A → seen by B (loopback)', rounds, p50Us: at(0.5), p99Us: at(0.99), maxUs: windows[windows.length - 1], staleReadsRounds: served }
  rows.push(row)
  log(`  ${row.scenario.padEnd(46)} p50 ${row.p50Us.toFixed(0)} µs, p99 ${row.p99Us.toFixed(0)} µs, max ${row.maxUs.toFixed(0)} µs (${served} of ${rounds} rounds read the old value at least once)`)
}

/**
 * The slowest of many single synchronous calls on the singletons in Redis
 * mode, with `count` cache entries and pending jobs on the server.
 */
async function latencyScenario() {
  const count = QUICK ? 1_000 : 10_000
  const samples = QUICK ? 5_000 : 20_000
  native.configure({ queue: { maxSize: 1_000_000 } })
  const cache = native.aiResponseCache
  const queue = native.backgroundJobQueue
  const keys = prompts(count)
  for (const p of keys) cache.set(p, RESPONSE, MODEL_ID)
  for (let i = 0; i < count; i++) queue.enqueue(job(i))
  const pick = (i) => keys[(i * 7919) % count]
  // Reads are measured once warm: every entry and service read once after
  // the local copy went live (its first read opens the connection).
  const skip = (i) => native.integrationFailureManager.shouldSkipService(`svc-${i % 10}`)
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < count; i++) cache.get(keys[i], MODEL_ID)
    for (let i = 0; i < 10; i++) skip(i)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  const calls = {
    'cache get (warm copy)': (i) => cache.get(pick(i), MODEL_ID),
    'cache set': (i) => cache.set(pick(i), RESPONSE, MODEL_ID),
    'cache getStats': () => cache.getStats(),
    'shouldSkipService (warm copy)': skip,
    'queue enqueue': (i) => queue.enqueue(job(count + i)),
    'queue dequeue + complete': () => queue.complete(queue.dequeue().id),
    'queue getStats': () => queue.getStats(),
  }
  log(`\nthe slowest synchronous call in Redis mode (localhost, ${count.toLocaleString('en')} entries / jobs, ${samples.toLocaleString('en')} calls each)`)
  for (const [operation, call] of Object.entries(calls)) {
    const timing = await slowestCalls(call, samples)
    log(`  ${operation.padEnd(30)} p99.9 ${timing.p999Ms.toFixed(3)} ms, max ${timing.maxMs.toFixed(3)} ms, max outside GC pauses ${timing.maxOutsideGcMs.toFixed(3)} ms`)
    rows.push({ group: 'redis-latency', scenario: operation, count, results: { native: timing } })
  }
}

/** One batch on this package's queue: `count` jobs enqueued, then a worker runs them all. */
async function ourBatch(queue, concurrency, count, offset) {
  const done = deferred()
  let completed = 0
  const start = performance.now()
  for (let i = 0; i < count; i++) queue.enqueue(job(offset + i))
  const worker = queue.process(async () => {}, {
    concurrency,
    onCompleted: () => {
      if (++completed === count) done.resolve(performance.now())
    },
    onFailed: (failed, error) => done.reject(error),
  })
  try {
    return (await within(done.promise, 120_000, 'a batch of this package\'s worker')) - start
  } finally {
    await worker.stop()
  }
}

/** The same batch on BullMQ: `count` jobs added one at a time, then a worker runs them all. */
async function bullBatch(bull, concurrency, count, offset) {
  const { Worker } = require('bullmq')
  const worker = new Worker(bull.queue.name, async () => {}, { connection: bull.connection, prefix: bull.prefix, concurrency, autorun: false })
  try {
    await worker.waitUntilReady()
    const done = deferred()
    let completed = 0
    worker.on('completed', () => {
      if (++completed === count) done.resolve(performance.now())
    })
    worker.on('failed', (failed, error) => done.reject(error))
    const start = performance.now()
    for (let i = 0; i < count; i++) await bull.queue.add('analytics', job(offset + i).payload)
    worker.run().catch(done.reject)
    return (await within(done.promise, 120_000, 'a batch of BullMQ\'s worker')) - start
  } finally {
    await worker.close()
  }
}

/**
 * The requests a batch sends to the server, per job: top-level commands
 * seen by MONITOR (those a script runs are not counted), by command, our
 * scripts by operation. Includes starting and stopping the worker.
 */
async function requestsPerJob(server, batch, count) {
  const watchers = server.masterUrls.map((url) => new Redis(url))
  const monitors = await Promise.all(watchers.map((watcher) => watcher.monitor()))
  const counts = new Map()
  const seen = (time, args, source) => {
    if (source.startsWith('lua')) return
    const command = String(args[0]).toLowerCase()
    const name = command === 'evalsha' && String(args[3]).startsWith('{bench') ? `script ${args[4]}` : command
    counts.set(name, (counts.get(name) || 0) + 1)
  }
  for (const monitor of monitors) monitor.on('monitor', seen)
  try {
    await batch(count)
    await new Promise((resolve) => setTimeout(resolve, 100))
  } finally {
    for (const monitor of monitors) monitor.disconnect()
    for (const watcher of watchers) watcher.disconnect()
  }
  let total = 0
  const byRequest = {}
  for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1])) {
    if (name === 'monitor') continue
    total += n
    byRequest[name] = n / count
  }
  return { requestsPerJob: total / count, byRequest }
}

/**
 * Queue: `size` jobs a batch, enqueued one at a time (BullMQ: each `add`
 * awaited), then a worker started with a no-op handler runs them all; the
 * time from the first enqueue to the last completion. Ours: the worker of
 * `BackgroundJobQueue({ redisUrl, keyPrefix }).process(handler, {
 * concurrency })`; BullMQ: `Queue.add` and a `Worker` with its defaults.
 * Each batch starts a fresh worker (not timed: BullMQ's connects first),
 * batches interleaved.
 */
async function queueScenarios(server, admin) {
  const { Queue } = require('bullmq')
  const connection = server.bullConnection()
  const size = QUICK ? 150 : 500
  const rounds = QUICK ? 3 : 7
  log(`\n${NAME} queue: enqueue → process → complete, ${size} jobs a batch, a no-op handler`)
  for (const concurrency of [1, 16]) {
    const ours = new native.BackgroundJobQueue({ redisUrl: server.url, keyPrefix: `bench-queue-${concurrency}`, maxSize: 1_000_000 })
    const bull = { queue: new Queue(`bench-queue-${concurrency}`, { connection, prefix: server.bullPrefix }), connection, prefix: server.bullPrefix }
    try {
      await bull.queue.waitUntilReady()
      let offset = 0
      const impls = {
        native: (count) => ourBatch(ours, concurrency, count, (offset += count)),
        BullMQ: (count) => bullBatch(bull, concurrency, count, (offset += count)),
      }
      for (const batch of Object.values(impls)) await batch(QUICK ? 50 : 200)
      const perJob = { native: [], BullMQ: [] }
      const cpu = { native: 0, BullMQ: 0 }
      for (let round = 0; round < rounds; round++) {
        for (const [name, batch] of Object.entries(impls)) {
          const before = await serverCpuUs(admin)
          const ms = await batch(size)
          cpu[name] += (await serverCpuUs(admin)) - before
          perJob[name].push((ms * 1e6) / size)
          await yieldToLoop()
        }
      }
      const results = {}
      for (const [name, batch] of Object.entries(impls)) {
        const nsPerOp = median(perJob[name])
        results[name] = {
          nsPerOp,
          jobsPerSec: 1e9 / nsPerOp,
          redisCpuUsPerJob: cpu[name] / (rounds * size),
          ...(await requestsPerJob(server, batch, QUICK ? 50 : 200)),
        }
      }
      const row = { group: GROUP, scenario: `${NAME} queue: enqueue → process → complete, concurrency ${concurrency}`, results }
      rows.push(row)
      const cells = Object.entries(results).map(([name, r]) =>
        `${name} ${Math.round(r.jobsPerSec)} jobs/s (${r.requestsPerJob.toFixed(1)} requests, ${r.redisCpuUsPerJob.toFixed(0)} µs Redis CPU a job)`)
      log(`  concurrency ${String(concurrency).padEnd(34)} ${cells.join('  ')}`)
      const ourRequests = Object.entries(results.native.byRequest).map(([name, n]) => `${name} ${n.toFixed(2)}`)
      log(`    our requests a job: ${ourRequests.join(', ')}`)
    } finally {
      await bull.queue.close()
    }
  }
}

/**
 * What the scenarios need of the server: `client()` an ioredis client,
 * `bullConnection()` BullMQ's and `bullPrefix` its key prefix,
 * `masterUrls` the nodes that take writes (MONITOR watches each), and an
 * `admin` whose `info(section)` sums the masters' numbers.
 */
async function startServer() {
  if (!CLUSTER) {
    const server = await startRedis()
    return {
      ...server,
      masterUrls: [server.url],
      client: () => new Redis(server.url),
      bullConnection: () => ({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: null }),
      bullPrefix: undefined,
      admin: new Redis(server.url),
    }
  }
  const cluster = await startRedisCluster()
  const role = (node) => execFileSync('redis-cli', ['-p', String(node.port), 'role'], { encoding: 'utf8' })
  const masters = cluster.nodes.filter((node) => role(node).startsWith('master'))
  const seeds = [{ host: '127.0.0.1', port: cluster.nodes[0].port }]
  const admins = masters.map((node) => new Redis(node.url))
  return {
    url: cluster.url,
    masterUrls: masters.map((node) => node.url),
    client: () => new Redis.Cluster(seeds),
    bullConnection: () => new Redis.Cluster(seeds, { redisOptions: { maxRetriesPerRequest: null } }),
    bullPrefix: '{bull}',
    admin: {
      info: async (section) => sumInfo(await Promise.all(admins.map((admin) => admin.info(section)))),
      disconnect: () => admins.forEach((admin) => admin.disconnect()),
    },
    stop: () => cluster.stop(),
  }
}

/**
 * INFO texts of several nodes as one: numbers summed (`name:12.5`, and each
 * `field=n` of `cmdstat_x:calls=3,usec=40`), anything else as the first said.
 */
function sumInfo(texts) {
  const fields = new Map()
  for (const text of texts) {
    for (const line of text.split('\r\n')) {
      const colon = line.indexOf(':')
      if (colon < 0 || line.startsWith('#')) continue
      const [name, value] = [line.slice(0, colon), line.slice(colon + 1)]
      const held = fields.get(name)
      if (/^\d+(\.\d+)?$/.test(value)) fields.set(name, String((held === undefined ? 0 : Number(held)) + Number(value)))
      else if (/^(\w+=\d+(\.\d+)?,?)+$/.test(value) && held !== undefined) {
        const before = new Map(held.split(',').map((pair) => pair.split('=')))
        fields.set(name, value.split(',').map((pair) => {
          const [key, n] = pair.split('=')
          return `${key}=${Number(n) + Number(before.get(key) || 0)}`
        }).join(','))
      } else if (held === undefined) fields.set(name, value)
    }
  }
  return [...fields].map(([name, value]) => `${name}:${value}`).join('\r\n')
}

/** Calls of every command but INFO so far (INFO commandstats). */
async function commandsSoFar(admin) {
  const text = await admin.info('commandstats')
  let calls = 0
  for (const [, name, n] of text.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
    if (name !== 'info') calls += Number(n)
  }
  return calls
}

/**
 * Idle worker: a worker started on an empty queue, left to settle, then
 * the commands the server saw a second over a window (every command but
 * INFO, from INFO commandstats; nothing else talks to the server
 * meanwhile). Ours: `process()` with its defaults; BullMQ: a `Worker` with
 * its defaults. Target: at most 1 a second (serverless Redis bills per
 * command).
 */
async function idleScenario(server, admin) {
  const { Worker } = require('bullmq')
  const settle = 2_000
  const windowMs = QUICK ? 6_000 : 20_000
  const measure = async () => {
    await new Promise((resolve) => setTimeout(resolve, settle))
    const before = await commandsSoFar(admin)
    const start = performance.now()
    await new Promise((resolve) => setTimeout(resolve, windowMs))
    const after = await commandsSoFar(admin)
    return { commandsPerSec: (after - before) / ((performance.now() - start) / 1000) }
  }
  const results = {}
  const ours = new native.BackgroundJobQueue({ redisUrl: server.url, keyPrefix: 'bench-idle' })
  const worker = ours.process(async () => {})
  try {
    results.native = await measure()
  } finally {
    await worker.stop()
  }
  const bull = new Worker('bench-idle', async () => {}, { connection: server.bullConnection(), prefix: server.bullPrefix })
  try {
    await bull.waitUntilReady()
    results.BullMQ = await measure()
  } finally {
    await bull.close()
  }
  const row = { group: GROUP, scenario: `${NAME} idle worker: commands a second to the server`, results }
  rows.push(row)
  const cells = Object.entries(results).map(([name, r]) => `${name} ${r.commandsPerSec.toFixed(2)} commands/s`)
  log(`\n${NAME} idle worker (${windowMs / 1000} s, INFO commandstats)\n  ${cells.join('  ')}`)
}

async function main() {
  const server = await startServer()
  const { admin } = server
  try {
    log(`\n${NAME} mode (redis-server ${(await admin.info('server')).match(/redis_version:(\S+)/)[1]} on ${server.url})`)
    native.configure({ redisUrl: server.url, keyPrefix: 'bench' })
    await cacheScenario(server, admin)
    if (!CLUSTER) await guardScenario(server)
    if (!CLUSTER) await stalenessScenario(server)
    // The slowest calls are a property of the client, measured on one server.
    if (!CLUSTER) await latencyScenario()
    if (!process.env.BENCH_REDIS_NO_QUEUE) {
      await queueScenarios(server, admin)
      await idleScenario(server, admin)
    }
  } finally {
    admin.disconnect()
    await server.stop()
  }
  process.stdout.write(JSON.stringify(rows))
}

// Interrupted: exit, so that scripts/redis-server.js's exit handler stops
// the server. Done or failed: exit even if a client left a handle open (the
// server is stopped by then; run.js waits for this process).
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(1))
main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
