'use strict'

// How long each Redis command holds the server at 100k jobs (issue #18:
// "no script runs longer than 10 ms"), read from the server itself, phase
// by phase: the scripts run and their mean time (INFO commandstats), and
// every run over 1 ms with the longest (SLOWLOG, slowlog-log-slower-than
// 1000):
// filling the queue, leasing and finishing, listing everything, clearing,
// reviving dead letters, lowering bounds, and the cache at 100k entries.
// Usage: node bench/redis-server-time.js [--jobs 100000]. Prints a Markdown
// table (bench/README.md, "Redis under faults").

const Redis = require('ioredis')

const { BackgroundJobQueue, AIResponseCache, IntegrationFailureManager } = require('..')
const { startRedis } = require('../scripts/redis-server')

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1] : fallback
}

async function main() {
  const jobs = Number(arg('jobs', 100_000))
  const server = await startRedis({ args: ['--slowlog-log-slower-than', '1000', '--slowlog-max-len', '100000', '--maxmemory-policy', 'noeviction'] })
  const redis = new Redis(server.url)
  const rows = []
  try {
    const options = { redisUrl: server.url, keyPrefix: 'server-time', redisTimeoutMs: 5000 }
    const queue = new BackgroundJobQueue({ ...options, maxSize: jobs * 2, backoffMs: [0] })
    const cache = new AIResponseCache({ ...options, maxEntries: jobs * 2 })
    const failures = new IntegrationFailureManager(options)
    const job = (n) => ({ type: 'analytics', operation: 'op', payload: { n, text: 'x'.repeat(200) }, userId: `user-${n % 100}`, priority: ['low', 'medium', 'high'][n % 3], retryCount: 0, maxRetries: 1 })

    async function phase(name, work) {
      await redis.slowlog('RESET')
      await redis.config('RESETSTAT')
      const began = process.hrtime.bigint()
      const calls = await work()
      const ms = Number(process.hrtime.bigint() - began) / 1e6
      const stats = (await redis.info('commandstats')).split('\n').find((line) => line.startsWith('cmdstat_evalsha:')) || ''
      const field = (key) => Number((stats.match(new RegExp(`${key}=([0-9.]+)`)) || [])[1] || 0)
      // [id, time, microseconds, [command, ...args], ...]: our scripts only.
      const slow = (await redis.slowlog('GET', 100_000)).filter((entry) => /^EVAL/i.test(String(entry[3][0]))).map((entry) => Number(entry[2]))
      const row = { phase: name, calls, runs: field('calls'), mean: Math.round(field('usec_per_call')), over1ms: slow.length, max: Math.max(0, ...slow), ms: Math.round(ms) }
      rows.push(row)
      console.error(JSON.stringify(row))
    }

    const ids = []
    await phase(`enqueue ${jobs} jobs`, () => {
      for (let n = 0; n < jobs; n++) ids.push(queue.enqueue(job(n)))
      return jobs
    })
    const done = new Set()
    await phase('getStats, dequeue 1000, complete 1000', () => {
      queue.getStats()
      for (let i = 0; i < 1000; i++) {
        const id = queue.dequeue().id
        queue.complete(id)
        done.add(id)
      }
      return 2001
    })
    const open = ids.filter((id) => !done.has(id))
    await phase(`getAll() of ${jobs} jobs (no limit)`, () => {
      const all = queue.getAll()
      if (all.length !== jobs) throw new Error(`getAll gave ${all.length}`)
      return 1
    })
    await phase('getByStatus(pending), getByUser (all of one user)', () => {
      queue.getByStatus('pending')
      queue.getByUser('user-7')
      return 2
    })
    await phase(`fail ${jobs / 10} jobs for good, then retryFailed() of all`, () => {
      for (let i = 0; i < jobs / 10; i++) queue.fail(open[i], 'boom')
      const revived = queue.retryFailed()
      if (revived !== jobs / 10) throw new Error(`retryFailed revived ${revived}`)
      return jobs / 10 + 1
    })
    await phase(`complete ${jobs / 2} jobs, then clearCompleted()`, () => {
      for (let i = 0; i < jobs / 2; i++) queue.complete(open[i])
      queue.clearCompleted()
      return jobs / 2
    })
    await phase('a lower maxSize evicting 10,000 finished jobs', () => {
      for (let i = jobs / 2; i < jobs / 2 + 10_000; i++) queue.complete(open[i])
      const held = queue.getStats().total
      new BackgroundJobQueue({ ...options, maxSize: held - 10_000 })
      if (queue.getStats().total !== held - 10_000) throw new Error('the lower bound evicted nothing')
      return 1
    })
    await phase(`cache: set ${jobs} entries, 1000 hits`, () => {
      for (let n = 0; n < jobs; n++) cache.set(`prompt ${n}`, { answer: n, text: 'y'.repeat(200) }, 'model')
      for (let n = 0; n < 1000; n++) cache.get(`prompt ${n}`, 'model')
      return jobs + 1000
    })
    await phase(`cache: clear() of ${jobs} entries`, () => {
      cache.clear()
      return 1
    })
    await phase('failures: 10,000 recorded over 1000 services, getFailures(), clearFailures()', () => {
      for (let n = 0; n < 10_000; n++) failures.recordFailure(`svc-${n % 1000}`, 'op', 'down', 'skip')
      failures.getFailures()
      failures.clearFailures()
      return 10_002
    })
  } finally {
    redis.disconnect()
    await server.stop()
  }
  console.log('| phase | scripts run | mean µs | runs over 1 ms | longest µs |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const r of rows) console.log(`| ${r.phase} | ${r.runs} | ${r.mean} | ${r.over1ms} | ${r.max || '< 1000'} |`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
