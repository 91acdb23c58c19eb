'use strict'

// Shared by the test files: the contract's message table, and a way to put
// the process-wide singletons back to empty between tests.

const { aiResponseCache, backgroundJobQueue, integrationFailureManager } = require('..')

const MESSAGES = {
  cache: "We encountered an issue, but don't worry! We're showing you a previous result while we work on this.",
  skip: "We encountered an issue, but don't worry! We've temporarily skipped this step to keep things moving.",
  queue: "We encountered an issue, but don't worry! We've saved your request and will process it shortly.",
  default: "We encountered an issue, but don't worry! We're using a safe default while we resolve this.",
  generic: "We encountered an issue, but don't worry! Please try again in a moment.",
}

/** Empties the cache and failure history, and finishes and clears every ready job. */
function resetSingletons() {
  aiResponseCache.clear()
  integrationFailureManager.clearFailures()
  for (let job = backgroundJobQueue.dequeue(); job; job = backgroundJobQueue.dequeue()) {
    backgroundJobQueue.complete(job.id)
  }
  for (const job of backgroundJobQueue.getByStatus('pending')) backgroundJobQueue.complete(job.id)
  backgroundJobQueue.clearCompleted()
}

function isRecentDate(value, withinMs = 5000) {
  return value instanceof Date && Math.abs(Date.now() - value.getTime()) <= withinMs
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Asserts that `fn` throws an error of `type` with `code` and a message matching `message`. */
function assertThrowsCoded(assert, fn, type, code, message) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error && error.name}: ${error && error.message}`)
    assert.equal(error.code, code)
    if (message) assert.match(error.message, message)
    return true
  })
}

/**
 * An operation that fails its first `failures` attempts (with
 * `makeError(attempt)`), recording when each attempt started.
 */
function flaky(failures, makeError = (n) => new Error(`attempt ${n} failed`)) {
  const { performance } = require('node:perf_hooks')
  const starts = []
  const operation = async () => {
    starts.push(performance.now())
    if (starts.length <= failures) throw makeError(starts.length)
    return `ok after ${starts.length}`
  }
  return { operation, starts, gaps: () => starts.slice(1).map((t, i) => t - starts[i]) }
}

/**
 * Runs `source` in a new Node.js process in the package's folder (so
 * `require('.')` is this package), killed after 20 s; resolves with what it
 * printed, rejects when it failed.
 */
function nodeScript(source) {
  const { execFile } = require('node:child_process')
  const path = require('node:path')
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', source], { cwd: path.join(__dirname, '..'), timeout: 20_000 }, (error, out) =>
      error ? reject(error) : resolve(out),
    )
  })
}

/**
 * Runs `code` in a child Node.js process in the package's folder, without
 * the suite's preloads (NODE_OPTIONS) and with `env` added: `{ proc, done,
 * output() }`, `done` resolving with its stdout when it exits 0.
 */
function child(code, env = {}) {
  const { spawn } = require('node:child_process')
  const path = require('node:path')
  const proc = spawn(process.execPath, ['-e', code], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  proc.stdout.on('data', (chunk) => (out += chunk))
  const done = new Promise((resolve, reject) => {
    // 'close': once its output is all read, which may be after it exited.
    proc.on('close', (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code ?? signal}: ${out}`))))
  })
  // A child killed on purpose rejects `done`; only those who await it care.
  done.catch(() => {})
  return { proc, done, output: () => out }
}

/** Resolves once `check()` is true, polling; rejects after `ms`. */
async function until(check, what, ms = 10_000) {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/**
 * An app under load in a child process: `rounds` times a direct enqueue and
 * an `executeWithFallback` that queues, 10 ms apart, on the singletons
 * configured with `options`. It prints `busy` after 40 rounds and, once no
 * job waits locally, `{ ids, rejected, status }`: every job id it was
 * given, the calls that threw, and `getStorageStatus()`.
 */
function enqueuer(options, rounds) {
  return child(`
    const { configure, backgroundJobQueue, executeWithFallback, getStorageStatus } = require('.')
    configure(${JSON.stringify(options)})
    const ids = []
    let rejected = 0
    const job = (n) => ({ type: 'integration', operation: 'op-' + n, payload: { n }, userId: 'u', priority: 'medium', retryCount: 0, maxRetries: 3 })
    process.on('warning', () => {})
    ;(async () => {
      for (let n = 0; n < ${rounds}; n++) {
        try { ids.push(backgroundJobQueue.enqueue(job(n))) } catch (error) { rejected++; console.error(error) }
        const result = await executeWithFallback(() => Promise.reject(new Error('down')), {
          operationName: 'sync', userId: 'u', queueOnFailure: { type: 'analytics', payload: { n } },
        }).catch(() => { rejected++ })
        if (result && result.metadata && result.metadata.jobId) ids.push(result.metadata.jobId)
        if (n === 40) console.log('busy')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      while (getStorageStatus().localJobs > 0) await new Promise((resolve) => setTimeout(resolve, 50))
      console.log(JSON.stringify({ ids, rejected, status: getStorageStatus() }))
    })()`)
}

/**
 * Runs `run` and gives `[channel, message]` for each message published
 * meanwhile on the package's `channels` (`'fallback'`, `'alternative'`,
 * ...), after `check(message)`.
 */
async function published(channels, run, check = () => {}) {
  const diagnostics = require('node:diagnostics_channel')
  const seen = []
  const handlers = channels.map((channel) => {
    const handler = (message) => {
      check(message)
      seen.push([channel, message])
    }
    diagnostics.subscribe(`fallback-mechanisms:${channel}`, handler)
    return [channel, handler]
  })
  try {
    await run()
  } finally {
    for (const [channel, handler] of handlers) diagnostics.unsubscribe(`fallback-mechanisms:${channel}`, handler)
  }
  return seen
}

/**
 * Why the tests that reach a SQLite file from outside through better-sqlite3
 * (a dev dependency) cannot run in this process, or undefined where they
 * can. Its native build is the one `npm ci` installed for the build machine
 * (linux-x64-gnu); the emulated runs of npm run test:platforms (arm64 under
 * qemu, musl, Windows under wine) cannot load it.
 */
const withoutBetterSqlite = (() => {
  try {
    new (require('better-sqlite3'))(':memory:').close()
    return undefined
  } catch (error) {
    const { platformName } = require('../scripts/platform.js')
    return `better-sqlite3, a dev dependency built for the machine that ran npm ci, does not load on ${platformName()} (${String(error.message).split('\n')[0]})`
  }
})()

/**
 * How many times slower than native this process runs: 1, or what npm run
 * test:platforms sets under emulation (qemu, wine). Tests that race a
 * clock against child processes stretch their times by it.
 */
const slowdown = Number(process.env.FALLBACK_MECHANISMS_TEST_SLOWDOWN) || 1

/**
 * Removes a test file's temporary folder. On Windows a file that a live
 * instance or the singletons still hold open cannot be deleted (EBUSY):
 * it is left to the system's temporary-file cleanup.
 */
function removeDir(dir) {
  try {
    require('node:fs').rmSync(dir, { recursive: true, force: true })
  } catch (error) {
    if (process.platform !== 'win32' || !['EBUSY', 'EPERM'].includes(error.code)) throw error
  }
}

module.exports = { removeDir, slowdown, withoutBetterSqlite, MESSAGES, resetSingletons, isRecentDate, sleep, assertThrowsCoded, flaky, nodeScript, child, until, enqueuer, published }
