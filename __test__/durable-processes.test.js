'use strict'

// Several processes on one SQLite file: opening it together, bounds that
// only change when a process asks, a write lock held by another process.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { removeDir, withoutBetterSqlite } = require('./helpers')

const PACKAGE = path.join(__dirname, '..')
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-processes-'))
let files = 0
const freshFile = (name = 'state') => path.join(root, `${name}-${++files}.db`)
test.after(() => removeDir(root))

const children = new Set()
test.afterEach(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  children.clear()
})

function childEnv(extra = {}) {
  const env = { ...process.env, ...extra }
  delete env.NODE_OPTIONS
  if (!('FALLBACK_MECHANISMS_DB' in extra)) delete env.FALLBACK_MECHANISMS_DB
  return env
}

/** Starts `code` in a child process; resolves { status, out, err } when it ends. */
function start(code, env = {}) {
  const child = spawn(process.execPath, ['-e', code], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk) => (out += chunk))
  child.stderr.on('data', (chunk) => (err += chunk))
  const ready = new Promise((resolve) => child.stdout.once('data', resolve))
  const ended = new Promise((resolve) => child.on('close', (status, signal) => resolve({ status, signal, out, err })))
  return { child, ready, ended }
}

test('16 processes loading the package on a new file together: every start succeeds', async () => {
  const rounds = Number(process.env.OPEN_RACE_ROUNDS || 10)
  const failures = []
  for (let round = 0; round < rounds; round++) {
    const file = freshFile('race')
    const go = `${file}.go`
    // Each child waits for the go file, then loads the package (which opens
    // FALLBACK_MECHANISMS_DB) and writes to it once.
    const code = `
      const fs = require('node:fs')
      fs.writeSync(1, 'ready\\n')
      while (!fs.existsSync(${JSON.stringify(go)})) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
      const lib = require(${JSON.stringify(PACKAGE)})
      fs.writeSync(1, 'loaded\\n')
      // A write right after, while the others still open the file: STORAGE_BUSY
      // (the short busy timeout) is the one error a caller may see, and retry.
      for (;;) {
        try {
          lib.backgroundJobQueue.enqueue({ type: 'ai', operation: 'o', payload: 1, userId: 'u' })
          break
        } catch (e) {
          if (e.code !== 'STORAGE_BUSY') throw e
        }
      }
      fs.writeSync(1, 'ok\\n')
    `
    const all = Array.from({ length: 16 }, () => start(code, { FALLBACK_MECHANISMS_DB: file }))
    await Promise.all(all.map((c) => c.ready))
    fs.writeFileSync(go, '')
    for (const { status, out, err } of await Promise.all(all.map((c) => c.ended))) {
      if (status !== 0 || !out.includes('ok')) failures.push(`round ${round}: ${err.split('\n').find((l) => /Error|code/.test(l)) || err}`)
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${rounds * 16} starts failed`)
})

/** Runs `code` (with `lib` = the package) in a child to its end; its stdout. */
async function run(code, env = {}) {
  const { ended } = start(`const lib = require(${JSON.stringify(PACKAGE)});\n${code}`, env)
  const { status, out, err } = await ended
  assert.equal(status, 0, err)
  return out
}

test('opening a file never applies bounds nobody asked for; bounds asked for become the file\'s', async () => {
  const file = freshFile('bounds')
  const env = { FALLBACK_MECHANISMS_DB: file }
  // One process asks for larger bounds and fills past the defaults.
  await run(`
    lib.configure({ cache: { maxEntries: 20_000 }, queue: { maxSize: 20_000 } })
    for (let i = 0; i < 10_050; i++) lib.aiResponseCache.set('p' + i, i, 'm')
    for (let i = 0; i < 10_050; i++) lib.backgroundJobQueue.complete(lib.backgroundJobQueue.enqueue({ type: 'ai', operation: 'o', payload: i, userId: 'u' }))
  `, env)
  // Another only loads the package (default bounds), reads and writes.
  const seen = JSON.parse(await run(`
    lib.aiResponseCache.set('another', 1, 'm')
    lib.backgroundJobQueue.enqueue({ type: 'ai', operation: 'o', payload: 1, userId: 'u' })
    process.stdout.write(JSON.stringify([lib.aiResponseCache.getStats().size, lib.backgroundJobQueue.getStats().total]))
  `, env))
  assert.deepEqual(seen, [10_051, 10_051], 'nothing of the first process was evicted')
  // A process that asks for smaller bounds applies them, for every process after it.
  await run(`lib.configure({ cache: { maxEntries: 100 } })`, env)
  const after = JSON.parse(await run(`
    lib.aiResponseCache.set('one more', 1, 'm')
    process.stdout.write(JSON.stringify(lib.aiResponseCache.getStats().size))
  `, env))
  assert.equal(after, 100, 'the asked-for bound is the file\'s')
})

test('another process holding the write lock: a call on the JavaScript thread waits busyTimeoutMs, then STORAGE_BUSY', { skip: withoutBetterSqlite }, async () => {
  const file = freshFile('busy')
  const { BackgroundJobQueue } = lib()
  const queue = new BackgroundJobQueue({ storagePath: file })
  queue.enqueue({ type: 'ai', operation: 'o', payload: 1, userId: 'u' })
  // Opened before the lock is taken: opening waits longer (see README).
  const quick = new BackgroundJobQueue({ storagePath: file, busyTimeoutMs: 20 })
  const holder = start(`
    const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))})
    const db = new Database(${JSON.stringify(file)})
    db.exec('BEGIN IMMEDIATE')
    require('node:fs').writeSync(1, 'locked\\n')
    setTimeout(() => { db.exec('ROLLBACK'); db.close() }, 3_000)
  `)
  await holder.ready
  const timed = (fn) => {
    const t = Date.now()
    try {
      fn()
      return ['ok', Date.now() - t]
    } catch (e) {
      return [e.code, Date.now() - t]
    }
  }
  const [code, ms] = timed(() => queue.enqueue({ type: 'ai', operation: 'o', payload: 2, userId: 'u' }))
  assert.equal(code, 'STORAGE_BUSY')
  assert.ok(ms >= 200, `the default wait is 250 ms (waited ${ms} ms)`)
  const [code2, ms2] = timed(() => quick.enqueue({ type: 'ai', operation: 'o', payload: 3, userId: 'u' }))
  assert.equal(code2, 'STORAGE_BUSY')
  // Measured against the default wait just made, not a clock bound: load stretches both.
  assert.ok(ms2 < ms, `busyTimeoutMs: 20 waited ${ms2} ms, the default ${ms} ms`)
  assert.equal(queue.getStats().pending, 1, 'reads do not wait')

  // The worker records outcomes off the JavaScript thread and waits longer.
  const worker = queue.process(async () => {}, { pollIntervalMs: 10 })
  const started = Date.now()
  let ticks = 0
  const ticker = setInterval(() => ticks++, 10)
  while (queue.getStats().completed < 1 && Date.now() - started < 8_000) await new Promise((r) => setTimeout(r, 20))
  clearInterval(ticker)
  await worker.stop()
  assert.equal(queue.getStats().completed, 1, 'the job was completed once the lock was let go')
  assert.ok(ticks > 50, `the JavaScript thread kept running meanwhile (${ticks} ticks)`)
  await holder.ended
})

test('busyTimeoutMs is checked like the other options, and configure takes it', async () => {
  const { BackgroundJobQueue, AIResponseCache, IntegrationFailureManager } = lib()
  for (const Class of [BackgroundJobQueue, AIResponseCache, IntegrationFailureManager]) {
    assert.throws(() => new Class({ storagePath: freshFile(), busyTimeoutMs: -1 }), (e) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE' && /busyTimeoutMs/.test(e.message))
    assert.throws(() => new Class({ storagePath: freshFile(), busyTimeoutMs: 1.5 }), (e) => e instanceof RangeError && /busyTimeoutMs/.test(e.message))
    assert.throws(() => new Class({ storagePath: freshFile(), busyTimeoutMs: '5' }), (e) => e instanceof TypeError && /busyTimeoutMs/.test(e.message))
  }
  const out = await run(`
    const r = []
    try { lib.configure({ busyTimeoutMs: -5 }) } catch (e) { r.push(e.constructor.name + ' ' + e.code) }
    lib.configure({ busyTimeoutMs: 30 })
    lib.configure({ storagePath: ${JSON.stringify(freshFile())} })
    r.push('ok')
    process.stdout.write(JSON.stringify(r))
  `)
  assert.deepEqual(JSON.parse(out), ['RangeError ERR_OUT_OF_RANGE', 'ok'])
})

test('a -wal file deleted while in use refuses further changes instead of losing them', () => {
  const file = freshFile('wal')
  const queue = new (lib().BackgroundJobQueue)({ storagePath: file })
  queue.enqueue({ type: 'ai', operation: 'o', payload: 1, userId: 'u' })
  assert.ok(fs.existsSync(`${file}-wal`))
  if (process.platform === 'win32') {
    // Windows refuses to delete a file SQLite holds open: nothing is lost that way.
    assert.throws(() => fs.rmSync(`${file}-wal`), { code: /^(EBUSY|EPERM)$/ })
    queue.enqueue({ type: 'ai', operation: 'o', payload: 2, userId: 'u' })
    assert.equal(queue.getAll().length, 2)
    return
  }
  fs.rmSync(`${file}-wal`)
  assert.throws(() => queue.enqueue({ type: 'ai', operation: 'o', payload: 2, userId: 'u' }), (e) => e.code === 'STORAGE_UNAVAILABLE' && /deleted or replaced/.test(e.message))
  assert.throws(() => queue.getAll(), (e) => e.code === 'STORAGE_UNAVAILABLE')
})

/** The package as loaded in this process (through the test preload, if any). */
function lib() {
  return require('..')
}
