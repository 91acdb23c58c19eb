'use strict'

// Loading the package in many `vm` contexts (Jest's and Vitest's vm pools
// give each test file one) keeps none of them alive, and the OpenTelemetry
// bridge subscribes once per process, not once per context (issue #21,
// finding 3). __test__/fixtures/contexts-child.js does the loading in a
// child process started with --expose-gc, and says what it saw.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFile } = require('node:child_process')

const CHILD = path.join(__dirname, 'fixtures', 'contexts-child.js')

/** Runs the child with `env` added (the backend's preload comes with NODE_OPTIONS); what it printed. */
function runChild(env) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', CHILD], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`the child failed: ${error.message}\n${stderr}`))
      else resolve(JSON.parse(stdout.trim().split('\n').pop()))
    })
  })
}

function assertNoneKept(seen) {
  assert.equal(seen.alive, 0, `${seen.alive} of ${seen.contexts} contexts that loaded the package are still alive after GC (${seen.kept})`)
  assert.deepEqual(seen.afterAll, seen.afterFirst, 'the subscriber counts grew with the contexts')
}

test('contexts that loaded the package are collected, with the OpenTelemetry bridge on', async () => {
  const seen = await runChild({ FALLBACK_MECHANISMS_OTEL: '' })
  assert.equal(seen.started, seen.contexts, 'the bridge started in every context')
  assertNoneKept(seen)
  for (const [i, count] of seen.afterFirst.entries()) {
    assert.ok(count >= 1, `channel ${i}: the bridge subscribed`)
    assert.ok(count <= Math.max(seen.before[i], 1), `channel ${i}: once per process (${seen.before[i]} before, ${count} after)`)
  }
})

test('contexts that loaded the package are collected, with the bridge off', async () => {
  const seen = await runChild({ FALLBACK_MECHANISMS_OTEL: '0' })
  assert.equal(seen.started, 0, 'the bridge is off')
  assertNoneKept(seen)
  assert.deepEqual(seen.afterFirst, seen.before, 'no subscriber with the bridge off')
})

test('contexts that loaded the package are collected when they all share the real process', async () => {
  const seen = await runChild({ CONTEXTS_SHARED_PROCESS: '1' })
  assertNoneKept(seen)
})

test('a process ending with writes Redis never took still waits for them and says how many were lost', async () => {
  const { freePort } = require('../scripts/redis-server')
  // Nothing listens on the port: the job is accepted and waits.
  const url = `redis://127.0.0.1:${await freePort()}`
  const code = `require(${JSON.stringify(path.join(__dirname, '..'))}).backgroundJobQueue.enqueue({ type: 'ai', payload: {}, userId: 'u', operation: 'exit-wait' })`
  const stderr = await new Promise((resolve, reject) => {
    const env = { ...process.env, NODE_OPTIONS: '', FALLBACK_MECHANISMS_REDIS_URL: url, FALLBACK_MECHANISMS_DB: '' }
    execFile(process.execPath, ['-e', code], { env }, (error, _stdout, stderr) => (error ? reject(error) : resolve(stderr)))
  })
  assert.match(stderr, /\[REDIS_WRITES_UNSENT\] Warning: fallback-mechanisms: 1 write\(s\) accepted while Redis did not answer were not written before the process ended \(waited 5000 ms\)/)
})

test('relayEvent calls the newest handler handed to relayEventsTo, never throws, and relayEventsTo says when to subscribe', () => {
  const native = require('../lib/native')
  const seen = []
  const older = (message, name) => seen.push(['older', message, name])
  const newer = (message, name) => seen.push(['newer', message, name])
  // The package's entry started the bridge here already only when a backend's preload loaded it.
  const started = typeof globalThis[Symbol.for('fallback-mechanisms.telemetry')] === 'function'
  assert.equal(native.relayEventsTo(older), !started, 'the first in this environment: subscribe')
  assert.equal(native.relayEventsTo(newer), false, 'subscribed already')
  const message = { type: 'retry' }
  native.relayEvent(message, 'fallback-mechanisms:retry')
  assert.deepEqual(seen, [['newer', message, 'fallback-mechanisms:retry']])
  assert.equal(native.relayEventsTo(() => { throw new Error('a broken SDK') }), false)
  assert.doesNotThrow(() => native.relayEvent(message, 'fallback-mechanisms:retry'))
  assert.throws(() => native.relayEventsTo('not a function'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
})
