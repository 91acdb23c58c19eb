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

module.exports = { MESSAGES, resetSingletons, isRecentDate, sleep, assertThrowsCoded, flaky, nodeScript }
