'use strict'

// The SQLite store's own promises: what a call has written survives SIGKILL
// and a restart, several processes share one file with each job handed to
// one of them, and bad files are clear errors at configure time.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const Database = require('better-sqlite3')

const { AIResponseCache, BackgroundJobQueue, IntegrationFailureManager } = require('..')
const { assertThrowsCoded, removeDir, sleep, slowdown, withoutBetterSqlite } = require('./helpers')

const PACKAGE = path.join(__dirname, '..')
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-durable-'))
let files = 0
const freshFile = (name = 'state') => path.join(root, `${name}-${++files}.db`)
test.after(() => removeDir(root))

/** The environment of a child process: no preload, no inherited store. */
function childEnv(extra = {}) {
  const env = { ...process.env, ...extra }
  delete env.NODE_OPTIONS
  if (!('FALLBACK_MECHANISMS_DB' in extra)) delete env.FALLBACK_MECHANISMS_DB
  return env
}

/** `code` as a child's script, with `lib` (the package) and `fs` at hand. */
const childScript = (code) => `const lib = require(${JSON.stringify(PACKAGE)});\nconst fs = require('node:fs');\n${code}`

/** Runs `code` (with `lib` = the package) in a child process to its end. */
function runChild(code, env = {}) {
  const run = spawnSync(process.execPath, ['-e', childScript(code)], { env: childEnv(env), encoding: 'utf8' })
  // Windows has no signals: a process killed ends with exit code 1.
  const killed = run.signal === 'SIGKILL' || (process.platform === 'win32' && run.status === 1 && !run.stderr)
  if (run.status !== 0 && !killed) {
    throw new Error(`child failed (${run.status}): ${run.stderr}`)
  }
  return run.stdout
}

/** Starts `code` in a child process; resolves its output lines when it ends. */
function startChild(code, env = {}) {
  const child = spawn(process.execPath, ['-e', childScript(code)], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  child.stderr.on('data', (chunk) => (err += chunk))
  const ended = new Promise((resolve) => {
    child.on('close', (status, signal) => resolve({ lines: out.split('\n').filter(Boolean), status, signal, err }))
  })
  return { child, ended }
}

const job = (extra = {}) => ({
  type: 'analytics',
  operation: 'track',
  payload: { n: 1 },
  userId: 'u1',
  priority: 'medium',
  retryCount: 0,
  maxRetries: 3,
  ...extra,
})

test('state written by a process killed with SIGKILL is there after a restart; TTLs and windows still hold', async () => {
  const file = freshFile()
  const printed = runChild(`
    const opts = { storagePath: ${JSON.stringify(file)} }
    const cache = new lib.AIResponseCache(opts)
    cache.set('long prompt', { answer: 42 }, 'gpt', 60_000)
    cache.set('short prompt', 'soon gone', 'gpt', ${300 * slowdown})
    const failures = new lib.IntegrationFailureManager({ ...opts, windowMs: ${1_000 * slowdown} })
    for (let i = 0; i < 3; i++) failures.recordFailure('crm', 'sync', 'timeout ' + i, 'crm is down')
    const queue = new lib.BackgroundJobQueue(opts)
    const ids = [queue.enqueue(${JSON.stringify(job())}), queue.enqueue(${JSON.stringify(job({ priority: 'high' }))})]
    const taken = queue.dequeue()
    process.stdout.write(JSON.stringify({ ids, taken: taken.id }))
    process.kill(process.pid, 'SIGKILL')
  `)
  const { ids, taken } = JSON.parse(printed)
  assert.equal(taken, ids[1], 'the high-priority job was dequeued')

  const cache = new AIResponseCache({ storagePath: file })
  assert.deepEqual(cache.get('long prompt', 'gpt').response, { answer: 42 })
  assert.equal(cache.get('short prompt', 'gpt').response, 'soon gone')
  const failures = new IntegrationFailureManager({ storagePath: file, windowMs: 1_000 * slowdown })
  assert.deepEqual(failures.getFailures('crm').map((f) => f.error), ['timeout 0', 'timeout 1', 'timeout 2'])
  assert.equal(failures.shouldSkipService('crm'), true)
  const queue = new BackgroundJobQueue({ storagePath: file })
  assert.deepEqual(queue.getAll().map((j) => [j.id, j.status]), [
    [ids[0], 'pending'],
    [ids[1], 'processing'],
  ])
  assert.deepEqual(queue.getAll()[0].payload, { n: 1 })

  await sleep(1_100 * slowdown)
  assert.equal(cache.get('short prompt', 'gpt'), null, 'the 300 ms TTL ran out')
  assert.ok(cache.get('long prompt', 'gpt'))
  assert.equal(failures.shouldSkipService('crm'), false, 'the 1 s window has passed')
  assert.equal(failures.getFailures('crm').length, 3, 'the history itself stays')
})

test('crash test: what enqueue, complete, fail, set and recordFailure did before they returned survives SIGKILL at random moments', async () => {
  const file = freshFile('crash')
  const code = `
    const opts = { storagePath: ${JSON.stringify(file)} }
    const queue = new lib.BackgroundJobQueue({ ...opts, maxSize: 1_000_000 })
    const cache = new lib.AIResponseCache(opts)
    const failures = new lib.IntegrationFailureManager({ ...opts, maxPerService: 1_000_000 })
    fs.writeSync(1, 'ready\\n')
    for (let i = 0; ; i++) {
      const id = queue.enqueue({ type: 'ai', operation: 'op', payload: { i }, userId: 'u', priority: 'low', retryCount: 0, maxRetries: 3 })
      fs.writeSync(1, 'job ' + id + '\\n')
      if (i % 3 === 1) {
        queue.complete(id)
        fs.writeSync(1, 'completed ' + id + '\\n')
      } else if (i % 3 === 2) {
        queue.fail(id, 'boom')
        fs.writeSync(1, 'failed ' + id + '\\n')
      }
      if (i % 4 === 0) {
        const key = process.pid + '-' + i
        cache.set(key, { i }, 'm')
        fs.writeSync(1, 'cache ' + key + '\\n')
        failures.recordFailure('svc', key, 'e', 'r')
        fs.writeSync(1, 'failure ' + key + '\\n')
      }
    }
  `
  const jobs = []
  const keys = []
  const failed = []
  const completedJobs = []
  const failedJobs = []
  for (let round = 0; round < 25; round++) {
    const { child, ended } = startChild(code)
    await new Promise((resolve) => child.stdout.once('data', resolve))
    await sleep((5 + Math.random() * 60) * slowdown)
    child.kill('SIGKILL')
    const { lines, signal } = await ended
    assert.equal(signal, 'SIGKILL')
    for (const line of lines) {
      const [kind, value] = line.split(' ')
      if (kind === 'job') jobs.push(value)
      if (kind === 'cache') keys.push(value)
      if (kind === 'failure') failed.push(value)
      if (kind === 'completed') completedJobs.push(value)
      if (kind === 'failed') failedJobs.push(value)
    }
  }
  assert.ok(jobs.length > 100, `the children enqueued (${jobs.length} jobs printed)`)
  const queue = new BackgroundJobQueue({ storagePath: file, maxSize: 1_000_000 })
  const stored = queue.getAll().map((j) => j.id)
  assert.equal(new Set(stored).size, stored.length, 'no job is there twice')
  const byId = new Map(queue.getAll().map((j) => [j.id, j]))
  assert.ok(completedJobs.length > 10 && failedJobs.length > 10)
  assert.deepEqual(completedJobs.filter((id) => byId.get(id)?.status !== 'completed'), [], 'every printed complete is there')
  assert.deepEqual(
    failedJobs.filter((id) => byId.get(id)?.retryCount !== 1 || byId.get(id)?.lastError !== 'boom'),
    [],
    'every printed fail is there',
  )
  const held = new Set(stored)
  const missing = jobs.filter((id) => !held.has(id))
  assert.deepEqual(missing, [], 'every printed job id is there')
  assert.equal(new Set(jobs).size, jobs.length, 'no id was handed out twice')
  const cache = new AIResponseCache({ storagePath: file })
  assert.deepEqual(keys.filter((key) => cache.get(key, 'm') === null), [], 'every printed cache entry is there')
  const failures = new IntegrationFailureManager({ storagePath: file, maxPerService: 1_000_000 })
  const recorded = new Set(failures.getFailures('svc').map((f) => f.operation))
  assert.deepEqual(failed.filter((key) => !recorded.has(key)), [], 'every printed failure is there')
})

test('four processes dequeue from one file: every job is processed exactly once', async () => {
  const file = freshFile('shared')
  const queue = new BackgroundJobQueue({ storagePath: file })
  const ids = []
  for (let i = 0; i < 400; i++) ids.push(queue.enqueue(job({ payload: { i } })))
  const go = `${file}.go`
  const worker = `
    const queue = new lib.BackgroundJobQueue({ storagePath: ${JSON.stringify(file)}, busyTimeoutMs: ${250 * slowdown} })
    fs.writeSync(1, 'ready\\n')
    // Start together, so the four really compete for each job.
    while (!fs.existsSync(${JSON.stringify(go)})) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
    for (;;) {
      const job = queue.dequeue()
      if (!job) break
      fs.writeSync(1, job.id + '\\n')
      queue.complete(job.id)
    }
  `
  const children = [1, 2, 3, 4].map(() => startChild(worker))
  await Promise.all(children.map(({ child }) => new Promise((resolve) => child.stdout.once('data', resolve))))
  fs.writeFileSync(go, '')
  const results = await Promise.all(children.map(({ ended }) => ended))
  for (const { status, err } of results) assert.equal(status, 0, err)
  for (const r of results) r.lines = r.lines.filter((line) => line !== 'ready')
  const processed = results.flatMap((r) => r.lines)
  assert.equal(processed.length, ids.length, 'no job was handed out twice')
  assert.deepEqual([...processed].sort(), [...ids].sort(), 'every job was handed out')
  assert.ok(results.filter((r) => r.lines.length > 0).length >= 2, 'the work was shared')
  assert.deepEqual(queue.getStats(), { total: 400, pending: 0, processing: 0, completed: 400, failed: 0 })
})

test('a job whose process was killed mid-job comes back after its lease', async (t) => {
  const file = freshFile('lease')
  const queue = new BackgroundJobQueue({ storagePath: file, leaseMs: 300 })
  const id = queue.enqueue(job())
  const { child, ended } = startChild(`
    const queue = new lib.BackgroundJobQueue({ storagePath: ${JSON.stringify(file)}, leaseMs: 300 })
    fs.writeSync(1, queue.dequeue().id + '\\n')
    setInterval(() => {}, 1000)
  `)
  await new Promise((resolve) => child.stdout.once('data', resolve))
  child.kill('SIGKILL')
  await ended
  assert.equal(queue.dequeue(), null, 'leased to the dead process for now')
  assert.equal(queue.getByStatus('processing')[0].id, id)
  await sleep(400)
  const [back] = queue.getByStatus('pending')
  assert.equal(back.id, id)
  assert.equal(back.retryCount, 1)
  assert.equal(back.lastError, 'lease expired')
  t.mock.method(Date, 'now', () => back.nextRetryAt.getTime() + 1)
  const again = queue.dequeue()
  assert.equal(again.id, id, 'another process gets it once its retry delay has run out')
})

test('the singletons use FALLBACK_MECHANISMS_DB, across processes', () => {
  const file = freshFile('env')
  const env = { FALLBACK_MECHANISMS_DB: file }
  const id = runChild(
    `process.stdout.write(lib.queueForLater('integration', 'sync-crm', { a: 1 }, 'u9').data)
     lib.aiResponseCache.set('p', 'cached', 'm')
     lib.skipFailedIntegration('crm', 'sync', new Error('down'))
     process.kill(process.pid, 'SIGKILL')`,
    env,
  )
  const seen = JSON.parse(
    runChild(
      `process.stdout.write(JSON.stringify({
        jobs: lib.backgroundJobQueue.getAll().map((j) => j.id),
        cached: lib.aiResponseCache.get('p', 'm').response,
        failures: lib.integrationFailureManager.getFailures('crm').length,
      }))`,
      env,
    ),
  )
  assert.deepEqual(seen, { jobs: [id], cached: 'cached', failures: 1 })
})

test('configure({ storagePath }) before first use moves the singletons; after it, ALREADY_IN_USE', () => {
  const file = freshFile('configure')
  const other = freshFile('other')
  const out = runChild(`
    const results = []
    const attempt = (fn) => { try { fn(); results.push('ok') } catch (e) { results.push(e.code + ': ' + e.message) } }
    attempt(() => lib.configure({ queue: { maxSize: 50 } }))
    attempt(() => lib.configure({ storagePath: ${JSON.stringify(file)}, durability: 'fsync', cache: { maxEntries: 2 } }))
    attempt(() => lib.configure({ storagePath: ${JSON.stringify(file)} }))
    lib.aiResponseCache.set('a', 1, 'm'); lib.aiResponseCache.set('b', 2, 'm'); lib.aiResponseCache.set('c', 3, 'm')
    attempt(() => lib.configure({ storagePath: ${JSON.stringify(other)} }))
    attempt(() => lib.configure({ cache: { maxEntries: 10 } }))
    results.push(lib.aiResponseCache.getStats().size)
    results.push(lib.backgroundJobQueue.getStats().total)
    process.stdout.write(JSON.stringify(results))
  `)
  const results = JSON.parse(out)
  assert.deepEqual(results.slice(0, 3), ['ok', 'ok', 'ok'], 'bounds first, then a file, then the same file again')
  assert.match(results[3], /^ALREADY_IN_USE: .*already keep their state in /)
  assert.equal(results[4], 'ok', 'bounds stay adjustable')
  assert.equal(results[5], 2, 'maxEntries: 2 applied to the file store')
  assert.equal(new AIResponseCache({ storagePath: file }).getStats().size, 2)

  const used = runChild(`
    lib.aiResponseCache.set('a', 1, 'm')
    try { lib.configure({ storagePath: ${JSON.stringify(other)} }) } catch (e) {
      process.stdout.write(JSON.stringify([e.constructor.name, e.code, e.message, lib.aiResponseCache.getStats().size]))
    }
  `)
  const [name, code, message, size] = JSON.parse(used)
  assert.deepEqual([name, code, size], ['Error', 'ALREADY_IN_USE', 1])
  assert.match(message, /must come before .* first used/)
  assert.equal(fs.existsSync(other), false, 'nothing was created')
})

test('bad files are a clear Error with a code, never a crash and never memory instead', { skip: withoutBetterSqlite }, () => {
  const notDir = freshFile('plain')
  fs.writeFileSync(notDir, 'a file, not a directory')
  const garbage = freshFile('garbage')
  fs.writeFileSync(garbage, 'this is not a database\n'.repeat(400))
  const foreign = freshFile('foreign')
  const other = new Database(foreign)
  other.exec('CREATE TABLE notes (body TEXT)')
  other.close()
  const newer = freshFile('newer')
  new BackgroundJobQueue({ storagePath: newer }).enqueue(job())
  const raw = new Database(newer)
  raw.pragma('user_version = 99')
  raw.close()

  const cases = [
    [path.join(notDir, 'state.db'), 'STORAGE_UNAVAILABLE', /cannot|not a directory|exists/i],
    ['/proc/fallback-mechanisms.db', 'STORAGE_UNAVAILABLE', /fallback-mechanisms\.db/],
    [garbage, 'STORAGE_CORRUPT', /not a fallback-mechanisms database/],
    [foreign, 'STORAGE_CORRUPT', /another application/],
    [newer, 'STORAGE_TOO_NEW', /schema version 99.*newer/],
  ]
  for (const [file, code, message] of cases) {
    for (const Class of [AIResponseCache, BackgroundJobQueue, IntegrationFailureManager]) {
      assertThrowsCoded(assert, () => new Class({ storagePath: file }), Error, code, message)
    }
    const out = runChild(`
      try { lib.configure({ storagePath: ${JSON.stringify(file)} }) } catch (e) { process.stdout.write(e.code) }
      lib.configure({ storagePath: ${JSON.stringify(freshFile('after'))} })
      process.stdout.write(' then moved')
    `)
    assert.equal(out, `${code} then moved`, `configure with ${file}: an error, and the singletons stay movable`)
    const load = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(PACKAGE)})`], {
      env: childEnv({ FALLBACK_MECHANISMS_DB: file }),
      encoding: 'utf8',
    })
    assert.equal(load.status, 1, 'a bad FALLBACK_MECHANISMS_DB stops the module from loading')
    assert.match(load.stderr, new RegExp(code))
  }
  assert.equal(fs.readFileSync(garbage, 'utf8').slice(0, 22), 'this is not a database', 'the file is left alone')
})

test('a refused file is left exactly as it was', { skip: withoutBetterSqlite }, () => {
  const foreign = freshFile('untouched-foreign')
  const other = new Database(foreign)
  other.exec('CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES (1)')
  other.close()
  const newer = freshFile('untouched-newer')
  new BackgroundJobQueue({ storagePath: newer }).enqueue(job())
  const raw = new Database(newer)
  raw.pragma('user_version = 99')
  raw.pragma('journal_mode = DELETE')
  raw.close()
  for (const [file, code] of [[foreign, 'STORAGE_CORRUPT'], [newer, 'STORAGE_TOO_NEW']]) {
    const before = fs.readFileSync(file)
    assertThrowsCoded(assert, () => new BackgroundJobQueue({ storagePath: file }), Error, code)
    assert.ok(fs.readFileSync(file).equals(before), `${path.basename(file)}: same bytes`)
    assert.equal(fs.existsSync(`${file}-wal`), false, `${path.basename(file)}: not switched to WAL`)
  }
})

test('a file missing its tables is STORAGE_CORRUPT when opened, not at first use', { skip: withoutBetterSqlite }, () => {
  const file = freshFile('damaged')
  new BackgroundJobQueue({ storagePath: file }).enqueue(job())
  const raw = new Database(file)
  raw.exec('DROP TABLE jobs')
  raw.close()
  assertThrowsCoded(assert, () => new AIResponseCache({ storagePath: file }), Error, 'STORAGE_CORRUPT', /damaged/)
})

test('a file deleted while in use refuses further changes instead of losing them', () => {
  const file = freshFile('deleted')
  const queue = new BackgroundJobQueue({ storagePath: file })
  queue.enqueue(job())
  if (process.platform === 'win32') {
    // Windows refuses to delete a file SQLite holds open: nothing is lost that way.
    assert.throws(() => fs.rmSync(file), { code: /^(EBUSY|EPERM)$/ })
    queue.enqueue(job())
    assert.equal(queue.getAll().length, 2)
    return
  }
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${file}${suffix}`, { force: true })
  assertThrowsCoded(assert, () => queue.enqueue(job()), Error, 'STORAGE_UNAVAILABLE', /deleted or replaced/)
  assertThrowsCoded(assert, () => queue.getAll(), Error, 'STORAGE_UNAVAILABLE', /deleted or replaced/)
})

test('reads do not wait for another connection holding the write lock', { skip: withoutBetterSqlite }, () => {
  const file = freshFile('locked')
  const cache = new AIResponseCache({ storagePath: file, maxEntries: 100 })
  for (let i = 0; i < 40; i++) cache.set(`p${i}`, { i }, 'm')
  const queue = new BackgroundJobQueue({ storagePath: file })
  const id = queue.enqueue(job())
  const holder = new Database(file)
  holder.exec('BEGIN IMMEDIATE')
  try {
    // Were any of these to wait for the lock, they would wait the 10 s busy
    // timeout (the holder is this very thread) and then throw.
    assert.deepEqual(cache.get('p0', 'm').response, { i: 0 }, 'the least recently used entry: its use is not recorded')
    assert.deepEqual(cache.get('p39', 'm').response, { i: 39 }, 'a recent entry')
    assert.equal(cache.get('missing', 'm'), null)
    assert.equal(cache.getStats().size, 40)
    assert.deepEqual(queue.getAll().map((j) => j.id), [id])
    assert.equal(queue.getStats().pending, 1)
  } finally {
    holder.exec('ROLLBACK')
    holder.close()
  }
})

test('configure({ storagePath }) racing an enqueue on another thread loses nothing', () => {
  for (let round = 0; round < 5; round++) {
    const file = freshFile('race')
    const out = runChild(`
      const { Worker } = require('node:worker_threads')
      const flag = new Int32Array(new SharedArrayBuffer(4))
      const worker = new Worker(\`
        const { workerData, parentPort } = require('node:worker_threads')
        const lib = require(\${JSON.stringify(${JSON.stringify(PACKAGE)})})
        Atomics.wait(workerData, 0, 0)
        const ids = []
        while (Atomics.load(workerData, 0) === 1 || ids.length === 0) {
          ids.push(lib.backgroundJobQueue.enqueue({ type: 'ai', operation: 'o', payload: 1, userId: 'u' }))
        }
        parentPort.postMessage(ids)
      \`, { eval: true, workerData: flag })
      worker.once('message', (ids) => {
        const held = new Set(lib.backgroundJobQueue.getAll().map((j) => j.id))
        process.stdout.write(JSON.stringify({ configured, returned: ids.length, lost: ids.filter((id) => !held.has(id)).length }))
        process.exit(0)
      })
      let configured = 'ok'
      setTimeout(() => {
        Atomics.store(flag, 0, 1)
        Atomics.notify(flag, 0)
        try { lib.configure({ storagePath: ${JSON.stringify(file)} }) } catch (e) { configured = e.code }
        Atomics.store(flag, 0, 2)
      }, 100)
    `)
    const { configured, returned, lost } = JSON.parse(out)
    assert.ok(['ok', 'ALREADY_IN_USE'].includes(configured), configured)
    assert.ok(returned > 0)
    assert.equal(lost, 0, `configure ${configured}: every id enqueue returned is held`)
  }
})

test('storage options are checked like the others', () => {
  assertThrowsCoded(assert, () => new BackgroundJobQueue({ storagePath: 5 }), TypeError, 'ERR_INVALID_ARG_TYPE', /options\.storagePath/)
  assertThrowsCoded(assert, () => new BackgroundJobQueue({ storagePath: '' }), RangeError, 'ERR_OUT_OF_RANGE', /options\.storagePath/)
  assertThrowsCoded(assert, () => new AIResponseCache({ storagePath: ':memory:' }), RangeError, 'ERR_OUT_OF_RANGE', /leave it out/)
  assertThrowsCoded(assert, () => new AIResponseCache({ storagePath: 'file:x.db?mode=memory' }), RangeError, 'ERR_OUT_OF_RANGE', /options\.storagePath/)
  assertThrowsCoded(assert, () => new AIResponseCache({ storagePath: freshFile(), durability: 'sometimes' }), TypeError, 'ERR_INVALID_ARG_VALUE', /options\.durability/)
  assertThrowsCoded(assert, () => new IntegrationFailureManager({ durability: 'fsync' }), TypeError, 'ERR_INVALID_ARG_VALUE', /only together with/)
  const file = freshFile('fsync')
  const queue = new BackgroundJobQueue({ storagePath: file, durability: 'fsync' })
  const id = queue.enqueue(job())
  assert.equal(new BackgroundJobQueue({ storagePath: file }).dequeue().id, id)
})

test('instances on one file share it; an instance without a file does not', () => {
  const file = freshFile('two')
  const a = new AIResponseCache({ storagePath: file })
  const b = new AIResponseCache({ storagePath: file })
  a.set('p', { v: 1 }, 'm')
  assert.deepEqual(b.get('p', 'm').response, { v: 1 })
  b.delete('p', 'm')
  assert.equal(a.get('p', 'm'), null)
})

test('bounds hold in the file: entries, bytes, per-service history; expired entries are reclaimed', { skip: withoutBetterSqlite }, (t) => {
  const file = freshFile('bounds')
  const cache = new AIResponseCache({ storagePath: file, maxEntries: 3, maxBytes: 1_000 })
  for (const key of ['a', 'b', 'c']) cache.set(key, key, 'm')
  cache.get('a', 'm')
  cache.set('d', 'd', 'm')
  assert.equal(cache.get('b', 'm'), null, 'the least recently used went')
  assert.deepEqual(['a', 'c', 'd'].map((k) => cache.get(k, 'm').response), ['a', 'c', 'd'])
  cache.set('big', 'x'.repeat(900), 'm')
  assert.ok(cache.getStats().bytes <= 1_000)
  assert.equal(cache.getStats().evictions >= 2, true)
  const failures = new IntegrationFailureManager({ storagePath: file, maxPerService: 5 })
  for (let i = 0; i < 12; i++) failures.recordFailure('svc', `op${i}`, 'e', 'r')
  assert.deepEqual(failures.getFailures('svc').map((f) => f.operation), ['op7', 'op8', 'op9', 'op10', 'op11'])

  const start = Date.now()
  t.mock.method(Date, 'now', () => start)
  const ttlFile = freshFile('ttl')
  const ttl = new AIResponseCache({ storagePath: ttlFile })
  for (let i = 0; i < 50; i++) ttl.set(`k${i}`, i, 'm', 1_000)
  Date.now.mock.mockImplementation(() => start + 2_000)
  ttl.set('fresh', 1, 'm')
  const db = new Database(ttlFile, { readonly: true })
  const rows = db.prepare('SELECT count(*) AS n FROM cache_entries').get().n
  db.close()
  assert.equal(rows, 1, 'the 50 expired rows are gone from the file, not just hidden')
  assert.equal(ttl.getStats().size, 1)
})
