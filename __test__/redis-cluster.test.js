'use strict'

// Redis Cluster: a real cluster of 6 redis-server nodes (3 masters, 3
// replicas) started by scripts/redis-server.js on free ports and stopped
// by pid, also when a test fails. The URL of any one node is enough (the
// others are discovered), a list of seed URLs too; a master killed under
// load loses no acknowledged job. Runs in the cluster pass of the suite
// (`node scripts/test-js.js cluster`), which also runs every other test
// file against a cluster of its own.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')

const { BackgroundJobQueue, AIResponseCache, IntegrationFailureManager } = require('..')
const { startRedis, startRedisCluster } = require('../scripts/redis-server')
const { child, until, enqueuer } = require('./helpers')

const skip = process.env.FALLBACK_MECHANISMS_TEST_CLUSTER ? false : 'runs in the cluster pass of the suite (node scripts/test-js.js cluster)'
let counter = 0
const prefix = (name) => `cluster-${process.pid}-${name}-${++counter}`

const job = (n) => ({ type: 'integration', operation: `op-${n}`, payload: { n }, userId: 'u', priority: 'medium', retryCount: 0, maxRetries: 3 })

/** The queue's key of `keyPrefix` that the slot is computed from (every key shares its hash tag). */
const slotKey = (keyPrefix) => `{${keyPrefix}}:q:all`

/** A node of `cluster` other than the master serving `keyPrefix`. */
function elsewhere(cluster, keyPrefix) {
  const owner = cluster.masterOf(slotKey(keyPrefix))
  return cluster.nodes.find((node) => node !== owner)
}

test('the URL of any one node: the cluster is discovered, every store works, getStorageStatus() says cluster', { skip }, async (t) => {
  const cluster = await startRedisCluster()
  t.after(() => cluster.stop())
  const keyPrefix = prefix('any-node')
  // A node that does not serve the prefix's slot: every request is routed on.
  const seed = elsewhere(cluster, keyPrefix)
  assert.notEqual(seed, cluster.masterOf(slotKey(keyPrefix)))
  const options = { redisUrl: seed.url, keyPrefix }
  const queue = new BackgroundJobQueue(options)
  const id = queue.enqueue(job(1))
  const leased = queue.dequeue()
  assert.equal(leased.id, id)
  queue.complete(id)
  assert.equal(queue.getStats().completed, 1)
  const cache = new AIResponseCache(options)
  cache.set('prompt', { answer: 42 }, 'model')
  assert.deepEqual(cache.get('prompt', 'model').response, { answer: 42 })
  const failures = new IntegrationFailureManager(options)
  failures.recordFailure('svc', 'op', 'e', 'r')
  assert.equal(failures.getFailures('svc').length, 1)
  // A list of seed URLs names the same cluster, and finds the same state.
  const listed = new BackgroundJobQueue({ redisUrl: cluster.urls.slice(3).join(','), keyPrefix })
  assert.equal(listed.getStats().completed, 1)
  const app = child(`
    const { backgroundJobQueue, getStorageStatus } = require('.')
    backgroundJobQueue.enqueue(${JSON.stringify(job(2))})
    console.log(JSON.stringify(getStorageStatus()))`, {
    FALLBACK_MECHANISMS_REDIS_URL: seed.url,
    FALLBACK_MECHANISMS_REDIS_PREFIX: keyPrefix,
  })
  const status = JSON.parse(await app.done)
  assert.deepEqual(
    [status.backend, status.redisMode, status.reachable, status.lastError, status.localJobs, status.evictionPolicy],
    ['redis', 'cluster', true, null, 0, 'noeviction'],
  )
  assert.equal(status.location, `${seed.url} (keyPrefix ${keyPrefix})`)
  assert.equal(queue.getStats().pending, 1)
  // Each enqueue waited for the master's replica to hold the job.
  const owner = cluster.masterOf(slotKey(keyPrefix))
  const waits = execFileSync('redis-cli', ['-p', String(owner.port), 'info', 'commandstats'], { encoding: 'utf8' }).match(/cmdstat_wait:calls=(\d+)/)
  assert.ok(waits && Number(waits[1]) >= 2, `WAIT calls on the master: ${waits && waits[1]}`)
  // Every key of the prefix is on the one master that serves its hash tag.
  for (const node of cluster.nodes) {
    const keys = execFileSync('redis-cli', ['-p', String(node.port), '--scan', '--pattern', `*${keyPrefix}*`], { encoding: 'utf8' }).split('\n').filter(Boolean)
    if (node === owner) assert.ok(keys.length > 10, `the master holds the prefix's keys (${keys.length})`)
    else if (!keys.length) continue
    else assert.ok(keys.every((key) => key.startsWith(`{${keyPrefix}}:`)), keys.join(' '))
  }
})

test('a standalone server: getStorageStatus() says standalone', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  const app = child(`
    const { backgroundJobQueue, getStorageStatus } = require('.')
    backgroundJobQueue.getStats()
    console.log(JSON.stringify(getStorageStatus().redisMode))`, {
    FALLBACK_MECHANISMS_REDIS_URL: server.url,
    FALLBACK_MECHANISMS_REDIS_PREFIX: prefix('standalone'),
  })
  assert.equal(JSON.parse(await app.done), 'standalone')
})

test('kill -9 of the master serving the prefix under load: a replica takes over, every acknowledged job is held exactly once, no call rejects', { skip }, async (t) => {
  const cluster = await startRedisCluster({ nodeTimeoutMs: 1000 })
  t.after(() => cluster.stop())
  const keyPrefix = prefix('failover')
  const owner = cluster.masterOf(slotKey(keyPrefix))
  const seed = elsewhere(cluster, keyPrefix)
  const app = enqueuer({ redisUrl: seed.url, keyPrefix, redisTimeoutMs: 300 }, 200)
  t.after(() => app.proc.kill('SIGKILL'))
  await until(() => app.output().includes('busy'), 'the app to be under way', 30_000)
  owner.kill('SIGKILL')
  await until(() => {
    const now = cluster.masterOf(slotKey(keyPrefix))
    return now && now !== owner
  }, 'a replica to take over the slot', 30_000)
  const out = JSON.parse((await app.done).split('\n').filter(Boolean).pop())
  assert.equal(out.rejected, 0, 'no call rejected during the failover')
  assert.equal(out.ids.length, 400)
  assert.equal(out.status.redisMode, 'cluster')
  const survivor = cluster.nodes.find((node) => node !== owner)
  const queue = new BackgroundJobQueue({ redisUrl: survivor.url, keyPrefix })
  const held = queue.getAll().map((j) => j.id)
  assert.equal(new Set(held).size, held.length, 'no job twice')
  const heldSet = new Set(held)
  const lost = out.ids.filter((id) => !heldSet.has(id))
  assert.deepEqual(lost, [], 'every acknowledged job is held')
  assert.equal(held.length, 400)
})

test('local reads on a cluster: each instance listens on the prefix master, whichever node its URL names', { skip }, async (t) => {
  const cluster = await startRedisCluster()
  t.after(() => cluster.stop())
  const keyPrefix = prefix('local')
  // Neither URL names the master: a listener on the named node would hear
  // nothing of the prefix's keys and keep a stale answer forever.
  const others = cluster.nodes.filter((node) => node !== cluster.masterOf(slotKey(keyPrefix)))
  const a = new AIResponseCache({ redisUrl: others[0].url, keyPrefix })
  const b = new AIResponseCache({ redisUrl: others[1].url, keyPrefix })
  a.set('p', { v: 1 }, 'm')
  assert.deepEqual(b.get('p', 'm').response, { v: 1 })
  // Kept once the listener confirmed the tracking.
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.deepEqual(b.get('p', 'm').response, { v: 1 })
  for (let round = 2; round < 6; round++) {
    a.set('p', { v: round }, 'm')
    await until(() => b.get('p', 'm').response.v === round, `b to see round ${round}`)
  }
})
