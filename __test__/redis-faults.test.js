'use strict'

// Redis mode under the faults real servers have every week, each against
// a redis-server of its own (scripts/redis-server.js: 127.0.0.1, a free
// port, a temporary directory, stopped by pid also when a test fails): a
// reply that comes after redisTimeoutMs (the server paused), a job's hash
// deleted or evicted, a server out of memory or refusing a user, foreign
// data at a per-user key, a server whose eviction policy may drop our
// keys. Run once, in the Redis pass of the suite.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')
const Redis = require('ioredis')

const { BackgroundJobQueue, IntegrationFailureManager, AIResponseCache } = require('..')
const { startRedis, freePort } = require('../scripts/redis-server')

const skip = process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL ? false : 'runs in the Redis pass of the suite'
const root = path.join(__dirname, '..')
let counter = 0
const prefix = (name) => `faults-${process.pid}-${name}-${++counter}`

const job = (n, maxRetries = 3, userId = 'u') => ({ type: 'integration', operation: `op-${n}`, payload: { n }, userId, priority: 'medium', retryCount: 0, maxRetries })

/** Resolves once `check()` is true, polling (30 s at most: far past any timeout here). */
async function until(check, what) {
  const deadline = Date.now() + 30_000
  for (;;) {
    let done = false
    try {
      done = await check()
    } catch {}
    if (done) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A plain client for planting faults, closed after the test. */
function client(t, server) {
  const redis = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1 })
  t.after(() => redis.disconnect())
  return redis
}

/** Runs `code` in a child process whose singletons use `env`; resolves with its last line of JSON, and what it wrote to stderr. */
function child(code, env) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['-e', code], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    proc.stdout.on('data', (chunk) => (out += chunk))
    proc.stderr.on('data', (chunk) => (err += chunk))
    // 'close': once its output is all read, which may be after it exited.
    proc.on('close', (status, signal) => {
      if (status !== 0) return reject(new Error(`child exited ${status ?? signal}: ${err}`))
      resolve({ result: JSON.parse(out.trim().split('\n').pop()), stderr: err })
    })
  })
}

const jobOf = (queue, id) => queue.getAll().find((held) => held.id === id)

test('a lease whose reply comes after redisTimeoutMs is given back untried, never left leased to nobody', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  t.after(() => server.kill('SIGCONT'))
  const queue = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix: prefix('lease'), redisTimeoutMs: 200 })
  const id = queue.enqueue(job(1, 1))
  server.kill('SIGSTOP')
  assert.throws(() => queue.dequeue(), (error) => error.code === 'STORAGE_UNAVAILABLE')
  // A drain takes the same path: it stops with the store's error.
  const drained = await queue.drain(() => {})
  assert.equal(drained.stoppedBy, 'storageError')
  assert.equal(drained.processed, 0)
  await new Promise((resolve) => setTimeout(resolve, 300))
  server.kill('SIGCONT')
  // The server runs the leases it was sent, then the revokes.
  await until(() => {
    const held = jobOf(queue, id)
    return held.status === 'pending' && queue.getStats().processing === 0
  }, 'the lost leases to be given back')
  assert.equal(jobOf(queue, id).retryCount, 0, 'not charged an attempt')
  // With maxRetries 1 it runs once and completes: never a dead letter for want of a worker.
  const ran = []
  const result = await queue.drain((held) => ran.push(held.id))
  assert.deepEqual(ran, [id])
  assert.equal(result.completed, 1)
  assert.equal(jobOf(queue, id).status, 'completed')
})

test('a server busy past redisTimeoutMs (DEBUG SLEEP, as a long script): a drain\'s lost lease is given back and the job runs once', { skip }, async (t) => {
  const server = await startRedis({ args: ['--enable-debug-command', 'yes'] })
  t.after(() => server.stop())
  const redis = client(t, server)
  const queue = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix: prefix('busy'), redisTimeoutMs: 100 })
  const id = queue.enqueue(job(1, 1))
  const busy = redis.call('DEBUG', 'SLEEP', '0.6')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const ran = []
  const first = await queue.drain((held) => ran.push(held.id))
  assert.equal(first.stoppedBy, 'storageError')
  await busy
  await until(() => jobOf(queue, id).status === 'pending' && queue.getStats().processing === 0, 'the lost lease to be given back')
  const second = await queue.drain((held) => ran.push(held.id))
  assert.equal(second.completed, 1)
  assert.deepEqual(ran, [id], 'run once, by the drain that got it')
  assert.equal(jobOf(queue, id).retryCount, 0)
})

test('a job whose hash is gone is dropped with a coded warning; the next job is served and getStorageStatus counts it', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  const keyPrefix = prefix('missing')
  const { result, stderr } = await child(`
    const Redis = require('ioredis')
    const { backgroundJobQueue, getStorageStatus } = require('.')
    const first = backgroundJobQueue.enqueue(${JSON.stringify(job(1))})
    const second = backgroundJobQueue.enqueue(${JSON.stringify(job(2))})
    const redis = new Redis(${JSON.stringify(server.url)})
    ;(async () => {
      const keys = (await redis.keys(${JSON.stringify(`{${keyPrefix}}:q:job:*`)})).sort()
      await redis.del(keys[0])
      redis.disconnect()
      const leased = backgroundJobQueue.dequeue()
      const status = getStorageStatus()
      // Let the warning raised on Rust's thread reach this one.
      await new Promise((resolve) => setTimeout(resolve, 200))
      console.log(JSON.stringify({ first, second, leased: leased.id, stats: backgroundJobQueue.getStats(), status }))
    })()`, { FALLBACK_MECHANISMS_REDIS_URL: server.url, FALLBACK_MECHANISMS_REDIS_PREFIX: keyPrefix })
  assert.equal(result.leased, result.second)
  assert.equal(result.stats.total, 1)
  assert.equal(result.status.missingJobs, 1)
  assert.equal(result.status.reachable, true)
  assert.match(stderr, /REDIS_JOB_MISSING/)
})

test('a server out of memory refuses with STORAGE_FULL: nothing is kept pretending to be stored, and cache hits are still served', { skip }, async (t) => {
  const server = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
  t.after(() => server.stop())
  const redis = client(t, server)
  const options = { redisUrl: server.url, keyPrefix: prefix('oom') }
  const queue = new BackgroundJobQueue(options)
  const cache = new AIResponseCache(options)
  const held = queue.enqueue(job(1))
  cache.set('prompt', { answer: 42 }, 'model')
  await redis.config('SET', 'maxmemory', '1')
  assert.throws(() => queue.enqueue(job(2)), (error) => error.code === 'STORAGE_FULL' && /out of memory/.test(error.message))
  assert.throws(() => cache.set('other', 1, 'model'), (error) => error.code === 'STORAGE_FULL')
  assert.deepEqual(cache.get('prompt', 'model').response, { answer: 42 })
  assert.equal(jobOf(queue, held).status, 'pending')
  assert.equal(queue.getStats().total, 1)
  await redis.config('SET', 'maxmemory', '0')
  // Nothing was kept to be written later: the queue holds what it said it did.
  await new Promise((resolve) => setTimeout(resolve, 400))
  assert.equal(queue.getStats().total, 1)
})

test('a user the server refuses gets STORAGE_DENIED, and nothing is kept', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  const redis = client(t, server)
  await redis.acl('SETUSER', 'noscripts', 'on', '>secret', '~*', '+@all', '-evalsha', '-eval')
  const url = server.url.replace('redis://', 'redis://noscripts:secret@')
  const options = { redisUrl: url, keyPrefix: prefix('acl') }
  const queue = new BackgroundJobQueue(options)
  assert.throws(() => queue.enqueue(job(1)), (error) => error.code === 'STORAGE_DENIED' && !error.message.includes('secret'))
  const failures = new IntegrationFailureManager(options)
  assert.throws(() => failures.recordFailure('svc', 'op', 'down', 'skipped'), (error) => error.code === 'STORAGE_DENIED')
  await new Promise((resolve) => setTimeout(resolve, 400))
  assert.equal(await redis.dbsize(), 0, 'nothing reached the server later either')
})

test('foreign data at a per-user key: enqueue throws STORAGE_CORRUPT naming the key, and holds nothing', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  const redis = client(t, server)
  const keyPrefix = prefix('foreign')
  const queue = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix })
  queue.enqueue(job(1, 3, 'other'))
  const key = `{${keyPrefix}}:q:user:u`
  await redis.set(key, 'not ours')
  assert.throws(() => queue.enqueue(job(2)), (error) => error.code === 'STORAGE_CORRUPT' && error.message.includes(key))
  assert.equal(queue.getStats().total, 1)
  assert.equal(await redis.get(key), 'not ours')
  await new Promise((resolve) => setTimeout(resolve, 400))
  assert.equal(queue.getStats().total, 1, 'not kept to be written later')
})

test('failures recorded while the server is paused count once however often they are sent', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  t.after(() => server.kill('SIGCONT'))
  const failures = new IntegrationFailureManager({ redisUrl: server.url, keyPrefix: prefix('failures'), redisTimeoutMs: 100 })
  failures.getFailures()
  server.kill('SIGSTOP')
  for (let i = 0; i < 3; i++) failures.recordFailure('svc', 'op', 'down', 'skipped')
  // Sent, timed out, kept and sent again every 250 ms meanwhile.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  server.kill('SIGCONT')
  await until(() => failures.getFailures('svc').length >= 3, 'the kept failures to arrive')
  await new Promise((resolve) => setTimeout(resolve, 600))
  assert.equal(failures.getFailures('svc').length, 3)
  assert.equal(failures.shouldSkipService('svc', 4), false)
})

test('what waits for an unreachable server is bounded by the queue\'s maxBytes: past it, enqueue throws QUEUE_FULL', { skip }, async () => {
  const queue = new BackgroundJobQueue({ redisUrl: `redis://127.0.0.1:${await freePort()}`, keyPrefix: prefix('bounded'), redisTimeoutMs: 100, maxBytes: 400 })
  let kept = 0
  let refusal
  for (; kept < 100; kept++) {
    try {
      queue.enqueue(job(kept))
    } catch (error) {
      refusal = error
      break
    }
  }
  assert.ok(kept > 0 && kept < 100, `kept ${kept}`)
  assert.equal(refusal.code, 'QUEUE_FULL')
  assert.match(refusal.message, /did not answer/)
})

test('a server whose eviction policy may drop our keys is warned about once, and getStorageStatus names the policy', { skip }, async (t) => {
  const server = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] })
  t.after(() => server.stop())
  const { result, stderr } = await child(`
    const { backgroundJobQueue, aiResponseCache, getStorageStatus } = require('.')
    backgroundJobQueue.getStats()
    aiResponseCache.get('p', 'm')
    setTimeout(() => {
      backgroundJobQueue.getStats()
      console.log(JSON.stringify(getStorageStatus()))
    }, 300)`, { FALLBACK_MECHANISMS_REDIS_URL: server.url, FALLBACK_MECHANISMS_REDIS_PREFIX: prefix('policy') })
  assert.equal(result.evictionPolicy, 'allkeys-lru')
  assert.equal(stderr.match(/REDIS_EVICTION_POLICY/g).length, 1, stderr)
  assert.match(stderr, /noeviction/)
  const quiet = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] })
  t.after(() => quiet.stop())
  const calm = await child(`
    const { backgroundJobQueue, getStorageStatus } = require('.')
    backgroundJobQueue.getStats()
    setTimeout(() => console.log(JSON.stringify(getStorageStatus())), 300)`, { FALLBACK_MECHANISMS_REDIS_URL: quiet.url, FALLBACK_MECHANISMS_REDIS_PREFIX: prefix('calm') })
  assert.equal(calm.result.evictionPolicy, 'noeviction')
  assert.doesNotMatch(calm.stderr, /REDIS_EVICTION_POLICY/)
})

test('a worker paused past its lease: its late outcome changes nothing, and the job is not run beside its new holder', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  const options = { redisUrl: server.url, keyPrefix: prefix('late'), leaseMs: 1500, backoffMs: [0] }
  const queue = new BackgroundJobQueue(options)
  const id = queue.enqueue(job(1, 5))
  // Each worker prints when a handler starts and ends; A's fails a second after it starts, B's succeeds after three.
  const worker = (name, ms, outcome) =>
    spawn(process.execPath, ['-e', `
      const { BackgroundJobQueue } = require('.')
      new BackgroundJobQueue(${JSON.stringify(options)}).process(async () => {
        console.log('${name} start')
        await new Promise((resolve) => setTimeout(resolve, ${ms}))
        console.log('${name} end')
        ${outcome}
      }, { pollIntervalMs: 50 })`], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] })
  const log = []
  const watch = (child) => {
    t.after(() => child.kill('SIGKILL'))
    child.stdout.on('data', (chunk) => log.push(...chunk.toString().trim().split('\n')))
    return child
  }
  const a = watch(worker('A', 1000, "throw new Error('A failed late')"))
  await until(() => log.includes('A start'), 'A to start the job')
  a.kill('SIGSTOP')
  t.after(() => a.kill('SIGCONT'))
  watch(worker('B', 3000, ''))
  await until(() => log.includes('B start'), 'B to take the job over once A\'s lease ran out')
  a.kill('SIGCONT')
  await until(() => jobOf(queue, id).status === 'completed', 'B to complete the job')
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.deepEqual(log.filter((line) => line.endsWith('start')), ['A start', 'B start'], 'A never ran it again beside B')
  const done = jobOf(queue, id)
  // One failed attempt: A's lost lease. A's own late failure is not one.
  assert.equal(done.retryCount, 1)
  assert.equal(done.lastError, 'lease expired')
})

test('an outage longer than 10 s but within the lease: the worker records the outcome when the server answers, and the job runs once', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  t.after(() => server.kill('SIGCONT'))
  const queue = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix: prefix('outage'), leaseMs: 20_000, redisTimeoutMs: 200 })
  const id = queue.enqueue(job(1, 1))
  let runs = 0
  const worker = queue.process(async () => {
    runs++
    // The server stops answering while the handler runs, for longer than
    // the worker used to keep trying to record an outcome (10 s).
    server.kill('SIGSTOP')
    setTimeout(() => server.kill('SIGCONT'), 11_000)
  }, { pollIntervalMs: 50 })
  t.after(() => worker.stop())
  await until(() => runs === 1, 'the handler to run')
  await new Promise((resolve) => setTimeout(resolve, 11_000))
  await until(() => jobOf(queue, id).status === 'completed', 'the outcome to be recorded')
  await worker.stop()
  assert.equal(runs, 1)
  assert.equal(jobOf(queue, id).retryCount, 0)
})
