'use strict'

// The Redis backend against real servers that these tests start, stop,
// kill and pause themselves (scripts/redis-server.js: 127.0.0.1, a free
// port, a temporary directory, stopped by pid also when a test fails):
// many processes on one queue, a worker killed mid-job, a server paused or
// refusing the password, foreign data under the prefix. Run once, in the
// Redis pass of the suite (scripts/test-js.js redis); in the cluster pass
// the tests that need no server of their own run on the pass's cluster.

const test = require('node:test')
const assert = require('node:assert/strict')

const { BackgroundJobQueue, AIResponseCache, IntegrationFailureManager, configure } = require('..')
const { startRedis, masterPort, freePort } = require('../scripts/redis-server')
const { child, until, enqueuer } = require('./helpers')

const skip = process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL ? false : 'runs in the Redis pass of the suite'
let counter = 0
const prefix = (name) => `fault-${process.pid}-${name}-${++counter}`

const onCluster = Boolean(process.env.FALLBACK_MECHANISMS_TEST_CLUSTER)

/**
 * A server for a test that neither stops, pauses nor configures it: one of
 * its own, or in the cluster pass the pass's cluster. `portOf(key)` is the
 * port of the node that holds `key`.
 */
async function startShared() {
  if (!onCluster) {
    const server = await startRedis()
    return { url: server.url, portOf: () => server.port, stop: () => server.stop() }
  }
  const url = process.env.FALLBACK_MECHANISMS_TEST_REDIS_URL
  const port = Number(new URL(url).port)
  return { url, portOf: (key) => masterPort(port, key), stop: async () => {} }
}

const job = (n) => ({ type: 'integration', operation: `op-${n}`, payload: { n }, userId: 'u', priority: 'medium', retryCount: 0, maxRetries: 3 })

test('four processes drain one queue: every job handed out exactly once', { skip }, async (t) => {
  const server = await startShared()
  t.after(() => server.stop())
  const keyPrefix = prefix('drain')
  const queue = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix })
  const ids = new Set()
  for (let i = 0; i < 400; i++) ids.add(queue.enqueue(job(i)))
  const drain = `
    const { BackgroundJobQueue } = require('.')
    const queue = new BackgroundJobQueue({ redisUrl: ${JSON.stringify(server.url)}, keyPrefix: ${JSON.stringify(keyPrefix)} })
    const mine = []
    for (let job; (job = queue.dequeue()); ) { mine.push(job.id); queue.complete(job.id) }
    console.log(JSON.stringify(mine))`
  const outputs = await Promise.all([1, 2, 3, 4].map(() => child(drain).done))
  const handed = outputs.flatMap((out) => JSON.parse(out))
  assert.equal(handed.length, 400)
  assert.deepEqual(new Set(handed), ids)
  assert.equal(queue.getStats().completed, 400)
})

test('kill -9 of a worker process: its leased jobs come back after the lease', { skip }, async (t) => {
  const server = await startShared()
  t.after(() => server.stop())
  const keyPrefix = prefix('kill')
  const options = { redisUrl: server.url, keyPrefix, leaseMs: 300, backoffMs: [0] }
  const queue = new BackgroundJobQueue(options)
  for (let i = 0; i < 3; i++) queue.enqueue(job(i))
  const worker = child(`
    const { BackgroundJobQueue } = require('.')
    const queue = new BackgroundJobQueue(${JSON.stringify(options)})
    for (let i = 0; i < 3; i++) queue.dequeue()
    console.log('leased')
    setInterval(() => {}, 1000)`)
  t.after(() => worker.proc.kill('SIGKILL'))
  await until(() => worker.output().includes('leased'), 'the worker to lease its jobs')
  assert.equal(queue.getStats().processing, 3)
  worker.proc.kill('SIGKILL')
  await until(() => queue.getStats().pending === 3, 'the leases to run out')
  const back = queue.dequeue()
  assert.equal(back.retryCount, 1, 'a lost lease counts as a failed attempt')
  assert.match(back.lastError, /lease expired/)
})

test('SIGSTOP of the server: synchronous calls fail within redisTimeoutMs, executeWithFallback resolves; SIGCONT resumes', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  const redisTimeoutMs = 200
  const options = { redisUrl: server.url, keyPrefix: prefix('stop'), redisTimeoutMs }
  const queue = new BackgroundJobQueue(options)
  const cache = new AIResponseCache(options)
  queue.enqueue(job(1))
  server.kill('SIGSTOP')
  t.after(() => server.kill('SIGCONT'))
  for (const call of [() => queue.getStats(), () => cache.get('p', 'm')]) {
    const started = Date.now()
    assert.throws(call, (error) => error.code === 'STORAGE_UNAVAILABLE')
    assert.ok(Date.now() - started < redisTimeoutMs + 400, `returned after ${Date.now() - started} ms`)
  }
  // A job is accepted all the same: kept here until the server answers.
  const started = Date.now()
  const kept = queue.enqueue(job(2))
  assert.ok(Date.now() - started < redisTimeoutMs + 400)
  // The singletons of another process, on the paused server: its fallback
  // calls still resolve, with the safe default.
  const app = child(`
    const { executeWithFallback } = require('.')
    const started = Date.now()
    // The event loop keeps turning while the fallback look-ups wait on the
    // paused server: they run on tokio, not on this thread.
    let last = Date.now()
    let gap = 0
    const ticking = setInterval(() => { gap = Math.max(gap, Date.now() - last); last = Date.now() }, 5)
    executeWithFallback(() => Promise.reject(new Error('model down')), {
      operationName: 'ai', userId: 'u', defaultValue: 'safe', cacheKey: { prompt: 'p', modelId: 'm' }, allowSkip: true,
    }).then((result) => {
      clearInterval(ticking)
      console.log(JSON.stringify({ data: result.data, ms: Date.now() - started, gap }))
    })`, {
    FALLBACK_MECHANISMS_REDIS_URL: server.url,
    FALLBACK_MECHANISMS_REDIS_PREFIX: prefix('stop-app'),
  })
  const outcome = JSON.parse(await app.done)
  assert.equal(outcome.data, 'safe')
  assert.ok(outcome.ms < 3_000, `resolved after ${outcome.ms} ms`)
  assert.ok(outcome.ms >= 400, 'the look-ups did wait for the paused server')
  assert.ok(outcome.gap < 250, `the event loop stalled for ${outcome.gap} ms`)
  server.kill('SIGCONT')
  // The paused server still applies the request it was sent before it
  // stopped answering; the kept copy must not make a second job.
  await until(() => {
    try {
      return queue.getStats().pending === 2
    } catch {
      return false
    }
  }, 'the server to answer again and the kept job to arrive')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(queue.getStats().total, 2, 'the kept job arrived exactly once')
  assert.ok(queue.getAll().some((held) => held.id === kept))
})

test('a flood of executeWithFallback calls on a paused server: each resolves within redisTimeoutMs of its outcome, a synchronous call never waits behind them', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  const app = child(`
    const { configure, aiResponseCache, executeWithFallback } = require('.')
    configure({ redisUrl: ${JSON.stringify(server.url)}, keyPrefix: ${JSON.stringify(prefix('flood'))}, redisTimeoutMs: 200 })
    aiResponseCache.get('warm', 'up')
    process.kill(${server.pid}, 'SIGSTOP')
    const started = Date.now()
    const calls = []
    for (let i = 0; i < 40; i++) {
      const cacheKey = { prompt: 'p' + i, modelId: 'm' }
      calls.push(executeWithFallback(() => (i % 2 ? Promise.resolve({ i }) : Promise.reject(new Error('down'))), {
        operationName: 'flood', userId: 'u', cacheKey, queueOnFailure: { type: 'ai', payload: { i } }, allowSkip: true,
      }).then(() => Date.now() - started))
    }
    let sync = -1
    setTimeout(() => {
      const at = Date.now()
      try { aiResponseCache.get('a', 'b') } catch {}
      sync = Date.now() - at
    }, 20)
    process.on('warning', () => {})
    Promise.all(calls).then((times) => {
      process.kill(${server.pid}, 'SIGCONT')
      console.log(JSON.stringify({ slowest: Math.max(...times), sync }))
      process.exit(0)
    })`)
  t.after(() => {
    server.kill('SIGCONT')
    app.proc.kill('SIGKILL')
  })
  const out = JSON.parse(await app.done)
  // Each call makes at most three round trips of 200 ms (cache, queue,
  // failure history); 40 of them one after the other would take 8 s and more.
  assert.ok(out.slowest < 2_000, `the slowest call resolved after ${out.slowest} ms`)
  assert.ok(out.sync >= 0 && out.sync < 600, `a synchronous get waited ${out.sync} ms`)
})

test('kill -9 of redis-server under load (appendonly, fsync always) and a restart: nothing acknowledged lost, no call rejects, kept jobs arrive once', { skip }, async (t) => {
  const durable = ['--appendonly', 'yes', '--appendfsync', 'always']
  let server = await startRedis({ args: durable })
  const { port, dir } = server
  t.after(async () => {
    await server.stop()
    require('node:fs').rmSync(dir, { recursive: true, force: true })
  })
  const keyPrefix = prefix('crash')
  const app = enqueuer({ redisUrl: server.url, keyPrefix, redisTimeoutMs: 200 }, 150)
  t.after(() => app.proc.kill('SIGKILL'))
  await until(() => app.output().includes('busy'), 'the app to be under way')
  server.kill('SIGKILL')
  await new Promise((resolve) => setTimeout(resolve, 400))
  server = await startRedis({ port, dir, args: durable })
  const out = JSON.parse((await app.done).split('\n').filter(Boolean).pop())
  assert.equal(out.rejected, 0, 'no call rejected while the server was down')
  const queue = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix })
  const held = queue.getAll().map((j) => j.id)
  assert.equal(new Set(held).size, held.length, 'no job twice')
  for (const id of out.ids) assert.ok(held.includes(id), `acknowledged job ${id} is held`)
  assert.equal(out.ids.length, 300)
})

test('a wrong password, an unknown host: STORAGE_UNAVAILABLE, the password never shown', { skip }, async (t) => {
  const server = await startRedis({ args: ['--requirepass', 'right-secret'] })
  t.after(() => server.stop())
  const wrong = new BackgroundJobQueue({ redisUrl: `redis://:wrong-secret@127.0.0.1:${server.port}`, keyPrefix: prefix('auth'), redisTimeoutMs: 500 })
  assert.throws(() => wrong.getStats(), (error) => {
    assert.equal(error.code, 'STORAGE_UNAVAILABLE')
    assert.doesNotMatch(error.message, /wrong-secret/)
    return true
  })
  const right = new BackgroundJobQueue({ redisUrl: `redis://:right-secret@127.0.0.1:${server.port}`, keyPrefix: prefix('auth') })
  assert.equal(right.getStats().total, 0)
  const nowhere = new AIResponseCache({ redisUrl: 'redis://:pw-123@no-such-host.invalid:6379', redisTimeoutMs: 300 })
  assert.throws(() => nowhere.get('p', 'm'), (error) => error.code === 'STORAGE_UNAVAILABLE' && !error.message.includes('pw-123'))
})

test('a drain on a server that cannot be reached ends with its error (password hidden), never a rejection', { skip }, async () => {
  const port = await freePort() // nothing listens there
  const queue = new BackgroundJobQueue({ redisUrl: `redis://:secret-pw@127.0.0.1:${port}`, keyPrefix: prefix('drain'), redisTimeoutMs: 200 })
  let ran = false
  const result = await queue.drain(() => {
    ran = true
  })
  assert.equal(ran, false)
  assert.deepEqual(
    [result.processed, result.completed, result.failed, result.remaining, result.stoppedBy, result.error.code],
    [0, 0, 0, null, 'storageError', 'STORAGE_UNAVAILABLE'],
  )
  assert.doesNotMatch(result.error.message, /secret-pw/)
})

test('malformed URLs and prefixes are refused at once with a code', { skip: false }, () => {
  for (const redisUrl of ['localhost:6379', 'http://host', 'redis://:p@host:notaport', 'rediss://:p@host#insecure']) {
    assert.throws(() => new BackgroundJobQueue({ redisUrl }), (error) => error instanceof TypeError && error.code === 'ERR_INVALID_URL' && !error.message.includes(':p@'))
  }
  assert.throws(() => new BackgroundJobQueue({ redisUrl: 'redis://h', redisTlsCa: '/ca.pem' }), { code: 'ERR_INVALID_ARG_VALUE', message: /rediss:\/\// })
  assert.throws(() => new BackgroundJobQueue({ redisTlsCa: '/ca.pem' }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => new BackgroundJobQueue({ redisUrl: 'rediss://h', redisTlsCa: '' }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => new BackgroundJobQueue({ redisUrl: 'rediss://h', redisTlsCa: '/no/such/ca.pem' }), (error) => error.code === 'STORAGE_UNAVAILABLE' && /cannot read the TLS CA file/.test(error.message))
  assert.throws(() => new BackgroundJobQueue({ redisUrl: 'redis://h', keyPrefix: 'a{b}' }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => new BackgroundJobQueue({ keyPrefix: 'x' }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => configure({ redisUrl: 42 }), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('a key prefix shared with foreign data of the wrong type: a clear error, nothing else touched', { skip }, async (t) => {
  const server = await startShared()
  t.after(() => server.stop())
  const keyPrefix = prefix('foreign')
  // On a cluster the other key shares the hash tag, so one node holds both.
  const other = onCluster ? `{${keyPrefix}}other-key` : 'other-key'
  const port = server.portOf(`{${keyPrefix}}:q:all`)
  // Foreign data where the queue keeps its job list: a plain string.
  const seed = child(`
    const net = require('node:net')
    const s = net.connect(${port}, '127.0.0.1', () => s.write('SET {${keyPrefix}}:q:all theirs\\r\\nSET ${other} untouched\\r\\n'))
    let got = ''; s.on('data', (d) => { got += d; if (got.split('\\r\\n').length > 2) { s.end(); console.log(got) } })`)
  await seed.done
  const queue = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix })
  assert.throws(() => queue.enqueue(job(1)), (error) => error.code === 'STORAGE_CORRUPT' && /another kind/.test(error.message))
  const failures = new IntegrationFailureManager({ redisUrl: server.url, keyPrefix })
  failures.recordFailure('svc', 'op', 'e', 'r')
  assert.equal(failures.getFailures('svc').length, 1, 'the other stores under the prefix still work')
  const check = child(`
    const net = require('node:net')
    const s = net.connect(${port}, '127.0.0.1', () => s.write('GET {${keyPrefix}}:q:all\\r\\nGET ${other}\\r\\n'))
    let got = ''; s.on('data', (d) => { got += d; if (got.includes('untouched')) { s.end(); console.log(got) } })`)
  const out = await check.done
  assert.match(out, /theirs/)
  assert.match(out, /untouched/)
})

test('bounds given while the server is down: the constructor does not throw, the bounds reach the server when it is back', { skip }, async (t) => {
  let server = await startRedis()
  const { port } = server
  t.after(() => server.stop())
  await server.stop()
  const keyPrefix = prefix('bounds-down')
  const queue = new BackgroundJobQueue({ redisUrl: `redis://127.0.0.1:${port}`, keyPrefix, maxSize: 2, redisTimeoutMs: 300 })
  server = await startRedis({ port })
  await until(() => {
    try {
      queue.getStats()
      return true
    } catch {
      return false
    }
  }, 'the server to answer')
  await new Promise((resolve) => setTimeout(resolve, 400))
  queue.enqueue(job(1))
  queue.enqueue(job(2))
  assert.throws(() => queue.enqueue(job(3)), { code: 'QUEUE_FULL' })
  // Another instance on the prefix finds the bound on the server.
  const other = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix })
  assert.throws(() => other.enqueue(job(4)), { code: 'QUEUE_FULL' })
})

test('rediss:// against a server with a self-signed certificate: its CA trusted through redisTlsCa, refused without it', { skip }, async (t) => {
  const server = await startRedis({ tls: true })
  t.after(() => server.stop())
  assert.match(server.url, /^rediss:\/\//)
  const keyPrefix = prefix('tls')
  const options = { redisUrl: server.url, redisTlsCa: server.ca, keyPrefix }
  const queue = new BackgroundJobQueue(options)
  const id = queue.enqueue(job(1))
  const leased = queue.dequeue()
  assert.equal(leased.id, id)
  assert.deepEqual(leased.payload, { n: 1 })
  queue.complete(id)
  assert.equal(queue.getStats().completed, 1)
  const cache = new AIResponseCache(options)
  cache.set('prompt', { answer: 42 }, 'model')
  assert.deepEqual(cache.get('prompt', 'model').response, { answer: 42 })
  // The environment variables of the singletons, in another process.
  const app = child(`
    const { backgroundJobQueue } = require('.')
    console.log(JSON.stringify(backgroundJobQueue.getStats()))`, {
    FALLBACK_MECHANISMS_REDIS_URL: server.url,
    FALLBACK_MECHANISMS_REDIS_PREFIX: keyPrefix,
    FALLBACK_MECHANISMS_REDIS_TLS_CA: server.ca,
  })
  assert.equal(JSON.parse(await app.done).completed, 1)
  // Without the CA only the system's roots are trusted, and they did not
  // sign the server's certificate.
  const untrusted = new BackgroundJobQueue({ redisUrl: server.url, keyPrefix, redisTimeoutMs: 2000 })
  assert.throws(() => untrusted.getStats(), (error) => {
    assert.equal(error.code, 'STORAGE_UNAVAILABLE')
    assert.match(error.message, /not trusted/)
    return true
  })
})

test('local reads: a write on one instance reaches the other; warm reads answer while the server is paused', { skip }, async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  const url = new URL(server.url)
  // Two host names: two links, as two processes would have.
  const keyPrefix = prefix('local')
  const options = (host) => ({ redisUrl: `redis://${host}:${url.port}`, keyPrefix, redisTimeoutMs: 2_000 })
  const a = new AIResponseCache(options('127.0.0.1'))
  const b = new AIResponseCache(options('localhost'))
  const failuresA = new IntegrationFailureManager(options('127.0.0.1'))
  const failuresB = new IntegrationFailureManager(options('localhost'))
  a.set('p', { v: 1 }, 'm')
  // Each instance's first read opens its listening connection; once that confirmed
  // the tracking, the next reads are kept.
  assert.deepEqual(b.get('p', 'm').response, { v: 1 })
  assert.equal(failuresB.shouldSkipService('api', 2), false)
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.deepEqual(b.get('p', 'm').response, { v: 1 })
  assert.equal(failuresB.shouldSkipService('api', 2), false)
  server.kill('SIGSTOP')
  try {
    for (let i = 0; i < 50; i++) assert.deepEqual(b.get('p', 'm').response, { v: 1 })
    assert.equal(failuresB.shouldSkipService('api', 2), false)
  } finally {
    server.kill('SIGCONT')
  }
  a.set('p', { v: 2 }, 'm')
  await until(() => b.get('p', 'm').response.v === 2, "b to see a's write")
  failuresA.recordFailure('api', 'op', 'down', 'r')
  failuresA.recordFailure('api', 'op', 'down', 'r')
  await until(() => failuresB.shouldSkipService('api', 2), "b to see a's failures")
  // An instance reads its own writes at once.
  a.set('p', { v: 3 }, 'm')
  assert.deepEqual(a.get('p', 'm').response, { v: 3 })
})

test('getStorageStatus().localCopy: live once the server tracks for the singletons', { skip }, async () => {
  const { aiResponseCache, getStorageStatus } = require('..')
  aiResponseCache.set('status-p', 1, 'm')
  await until(() => {
    aiResponseCache.get('status-p', 'm')
    const { localCopy } = getStorageStatus()
    return localCopy.live && localCopy.entries >= 1 && localCopy.bytes > 0
  }, 'the local copy to go live')
})
