'use strict'

// executeService and getCircuitBreakerStatus: retries timed on the Rust
// side, non-retryable errors, Retry-After, fallback and graceful
// degradation, breaker transitions with exactly one trial call, no handles
// left behind.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { performance } = require('node:perf_hooks')

const { executeService, getCircuitBreakerStatus } = require('..')
const { MESSAGES , flaky } = require('./helpers')

let unique = 0
const context = () => ({ operation: `op-${++unique}`, userId: 'u', timestamp: new Date() })

/** An operation that fails `failures` times, recording when each attempt started. */

test('retries until the operation succeeds, counting attempts', async () => {
  const op = flaky(2)
  const result = await executeService(op.operation, context(), { maxRetries: 3, baseDelay: 20, maxDelay: 200 })
  assert.equal(result.success, true)
  assert.equal(result.data, 'ok after 3')
  assert.equal(result.message, 'Operation completed successfully')
  assert.ok(result.timestamp instanceof Date)
  assert.deepEqual(result.metadata, { attempts: 3, circuitState: 'closed' })
  for (const gap of op.gaps()) assert.ok(gap >= 18, `waited ${gap} ms, at least the base delay`)
})

test('retry delays: decorrelated jitter between the base and three times the previous delay, capped', async () => {
  const op = flaky(6)
  const result = await executeService(op.operation, context(), { maxRetries: 6, baseDelay: 10, maxDelay: 60 })
  assert.equal(result.metadata.attempts, 7)
  const gaps = op.gaps()
  assert.equal(gaps.length, 6)
  for (const gap of gaps) {
    assert.ok(gap >= 9, `${gap} ms >= base`)
    assert.ok(gap <= 60 + 40, `${gap} ms <= cap (+ scheduling slack)`)
  }
})

test('gives up after maxRetries with the last error, and maxRetries 0 means one attempt', async () => {
  const op = flaky(10)
  const result = await executeService(op.operation, context(), { maxRetries: 2, baseDelay: 1 })
  assert.equal(result.success, false)
  assert.equal(op.starts.length, 3)
  assert.ok(result.error instanceof Error)
  assert.equal(result.error.message, 'attempt 3 failed')
  assert.equal(result.message, 'attempt 3 failed')
  assert.deepEqual(result.metadata, { attempts: 3, circuitState: 'closed', originalError: 'attempt 3 failed' })
  const once = flaky(10)
  await executeService(once.operation, context(), { maxRetries: 0 })
  assert.equal(once.starts.length, 1)
})

test('an error with retryable: false is not retried', async () => {
  const op = flaky(5, () => Object.assign(new Error('bad request'), { retryable: false }))
  const result = await executeService(op.operation, context(), { maxRetries: 5, baseDelay: 1 })
  assert.equal(op.starts.length, 1)
  assert.equal(result.success, false)
  assert.equal(result.error.retryable, false)
})

test('retryAfterMs and a Retry-After header make the next attempt wait at least that long', async () => {
  const asked = flaky(1, () => Object.assign(new Error('slow down'), { retryAfterMs: 120 }))
  await executeService(asked.operation, context(), { maxRetries: 1, baseDelay: 1, maxDelay: 5 })
  assert.ok(asked.gaps()[0] >= 115, `waited ${asked.gaps()[0]} ms`)
  const header = flaky(1, () => Object.assign(new Error('429'), { response: { status: 429, headers: { 'retry-after': '0.1' } } }))
  await executeService(header.operation, context(), { maxRetries: 1, baseDelay: 1, maxDelay: 5 })
  assert.ok(header.gaps()[0] >= 95, `waited ${header.gaps()[0]} ms`)
})

test('Retry-After forms (fetch Headers, error.headers, AI SDK responseHeaders, retry-after-ms, HTTP-date) and the maxRetryAfter cap', async () => {
  const errors = [
    Object.assign(new Error('429'), { response: { headers: new Headers({ 'Retry-After': '0.1' }) } }),
    Object.assign(new Error('429'), { headers: { 'RETRY-AFTER-MS': '100' } }),
    Object.assign(new Error('429'), { responseHeaders: { 'retry-after': '0.1' } }),
  ]
  for (const error of errors) {
    const op = flaky(1, () => error)
    const result = await executeService(op.operation, context(), { maxRetries: 1, baseDelay: 1, maxDelay: 5 })
    assert.equal(result.metadata.attempts, 2)
    assert.ok(op.gaps()[0] >= 95, `waited ${op.gaps()[0]} ms`)
  }
  const dated = flaky(1, () => Object.assign(new Error('503'), { headers: { 'retry-after': new Date(Date.now() + 2_100).toUTCString() } }))
  await executeService(dated.operation, context(), { maxRetries: 1, baseDelay: 1, maxDelay: 5, maxRetryAfter: 5_000 })
  assert.ok(dated.gaps()[0] >= 1_000 && dated.gaps()[0] < 3_000, `waited ${dated.gaps()[0]} ms`)
  for (const makeError of [
    () => Object.assign(new Error('x'), { retryAfterMs: 1e308 }),
    () => Object.assign(new Error('x'), { response: { headers: { 'retry-after': '86400' } } }),
  ]) {
    const op = flaky(1, makeError)
    const started = performance.now()
    const result = await executeService(op.operation, context(), { maxRetries: 3, baseDelay: 1, maxRetryAfter: 50, fallback: () => 'later' })
    assert.equal(op.starts.length, 1, 'gives up instead of waiting past the cap')
    assert.equal(result.data, 'later')
    assert.ok(performance.now() - started < 1_000)
  }
})

test('sync throws and non-Error throws are failures too', async () => {
  const result = await executeService(() => { throw 'plain' }, context(), { maxRetries: 1, baseDelay: 1 })
  assert.equal(result.success, false)
  assert.equal(result.message, 'plain')
  assert.ok(result.error instanceof Error)
  assert.equal(result.metadata.attempts, 2)
})

test('after the last failure: fallback, then graceful degradation, then the failure', async () => {
  const down = async () => { throw new Error('down') }
  const viaFallback = await executeService(down, context(), { maxRetries: 0, fallback: () => 'cached copy' })
  assert.deepEqual(
    { ...viaFallback, timestamp: undefined },
    {
      success: true,
      data: 'cached copy',
      message: MESSAGES.default,
      timestamp: undefined,
      metadata: { attempts: 1, usedFallback: true, fallbackType: 'fallback', circuitState: 'closed', originalError: 'down' },
    },
  )
  const viaDegradation = await executeService(down, context(), {
    maxRetries: 0,
    fallback: async () => { throw new Error('fallback broke too') },
    gracefulDegradation: () => ({ lite: true }),
  })
  assert.deepEqual(viaDegradation.data, { lite: true })
  assert.equal(viaDegradation.metadata.fallbackType, 'gracefulDegradation')
  const nothing = await executeService(down, context(), { maxRetries: 0, gracefulDegradation: () => { throw new Error('no') } })
  assert.equal(nothing.success, false)
  assert.equal(nothing.message, 'down')
})

test('the breaker opens after 5 consecutive failed calls and keeps the operation from being called', async () => {
  const ctx = context()
  const down = flaky(100)
  for (let i = 0; i < 5; i++) await executeService(down.operation, ctx, { maxRetries: 0 })
  assert.equal(down.starts.length, 5)
  const status = getCircuitBreakerStatus()[ctx.operation]
  assert.equal(status.state, 'open')
  assert.equal(status.failureCount, 5)
  assert.ok(status.openedAt instanceof Date)
  const rejected = await executeService(down.operation, ctx, { maxRetries: 3, gracefulDegradation: () => 'degraded' })
  assert.equal(down.starts.length, 5, 'not called while open')
  assert.equal(rejected.data, 'degraded')
  assert.equal(rejected.metadata.circuitState, 'open')
  assert.equal(rejected.metadata.attempts, 0)
  const failed = await executeService(down.operation, ctx)
  assert.equal(failed.success, false)
  assert.equal(failed.error.code, 'CIRCUIT_OPEN')
  assert.match(failed.message, /circuit breaker .* is open/)
})

test('a success in between resets the count', async () => {
  const ctx = context()
  for (let i = 0; i < 4; i++) await executeService(async () => { throw new Error('x') }, ctx, { maxRetries: 0 })
  await executeService(async () => 'fine', ctx)
  for (let i = 0; i < 4; i++) await executeService(async () => { throw new Error('x') }, ctx, { maxRetries: 0 })
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'closed')
})

test('after 60 s the breaker is half-open: exactly one trial call; its success closes the breaker', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
  const ctx = context()
  for (let i = 0; i < 5; i++) await executeService(async () => { throw new Error('x') }, ctx, { maxRetries: 0 })
  t.mock.timers.tick(59_999)
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'open')
  t.mock.timers.tick(1)
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'half-open')
  let calls = 0
  let release
  const slow = () => new Promise((resolve) => { calls++; release = () => resolve('recovered') })
  const trial = executeService(slow, ctx, { maxRetries: 3 })
  const second = await executeService(slow, ctx, { maxRetries: 3, fallback: () => 'kept out' })
  assert.equal(second.data, 'kept out', 'a second call during the trial is kept out')
  assert.equal(calls, 1)
  release()
  const result = await trial
  assert.equal(result.data, 'recovered')
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'closed')
  assert.equal(getCircuitBreakerStatus()[ctx.operation].failureCount, 0)
})

test('a failed trial is not retried and opens the breaker again', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
  const ctx = context()
  for (let i = 0; i < 5; i++) await executeService(async () => { throw new Error('x') }, ctx, { maxRetries: 0 })
  t.mock.timers.tick(60_000)
  const trial = flaky(100)
  const result = await executeService(trial.operation, ctx, { maxRetries: 3, baseDelay: 1 })
  assert.equal(trial.starts.length, 1)
  assert.equal(result.metadata.circuitState, 'open')
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'open')
})

test('a call already retrying stops retrying once other calls have opened the breaker', async () => {
  const ctx = context()
  const settings = { maxRetries: 5, baseDelay: 100, maxDelay: 100, breakerThreshold: 2 }
  const slow = flaky(100)
  const retrying = executeService(slow.operation, ctx, settings)
  await new Promise((resolve) => setTimeout(resolve, 20))
  // Two other calls fail while it waits for its second attempt: open.
  for (let i = 0; i < 2; i++) await executeService(flaky(1).operation, ctx, { ...settings, maxRetries: 0 })
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'open')
  const result = await retrying
  // Its second attempt was under way (or due) when the breaker opened; no third.
  assert.ok(slow.starts.length <= 2, `${slow.starts.length} attempts`)
  assert.equal(result.metadata.attempts, slow.starts.length)
  assert.equal(result.metadata.circuitState, 'open')
})

test('breakerThreshold and breakerResetMs: the breaker takes the settings of the latest call for its operation', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
  const ctx = context()
  const settings = { maxRetries: 0, breakerThreshold: 2, breakerResetMs: 1_000 }
  const down = flaky(100)
  for (let i = 0; i < 2; i++) await executeService(down.operation, ctx, settings)
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'open', 'open after 2')
  await executeService(down.operation, ctx, settings)
  assert.equal(down.starts.length, 2, 'kept out')
  t.mock.timers.tick(999)
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'open')
  t.mock.timers.tick(1)
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'half-open')
  const trial = await executeService(async () => 'back', ctx, settings)
  assert.equal(trial.data, 'back')
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'closed')
  // A call without the options: the defaults (5 failures) apply from it on.
  for (let i = 0; i < 4; i++) await executeService(down.operation, ctx, { maxRetries: 0 })
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'closed', '4 < 5')
  await executeService(down.operation, ctx, { maxRetries: 0 })
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'open')
  t.mock.timers.tick(1_000)
  assert.equal(getCircuitBreakerStatus()[ctx.operation].state, 'open', 'opened with the 60 s default')
  // Another operation is unaffected by these settings.
  const other = context()
  await executeService(down.operation, other, { maxRetries: 0, breakerThreshold: 1 })
  assert.equal(getCircuitBreakerStatus()[other.operation].state, 'open', 'threshold 1')
  const fresh = context()
  await executeService(down.operation, fresh, { maxRetries: 0 })
  assert.equal(getCircuitBreakerStatus()[fresh.operation].state, 'closed')
})

test('bad arguments reject with a TypeError naming them', async () => {
  const cases = [
    [[1, context()], /"operation" argument must be of type function/],
    [[async () => 1], /"context" argument must be of type object/],
    [[async () => 1, { timestamp: new Date() }], /"context.operation" property must be of type string/],
    [[async () => 1, { operation: '' }], /"context.operation" property must be a non-empty string/],
    [[async () => 1, context(), { maxRetries: -1 }], /"options.maxRetries"/],
    [[async () => 1, context(), { fallback: 'x' }], /"options.fallback" property must be of type function/],
    [[async () => 1, context(), { retries: 1 }], /Unknown option "options.retries"/],
    [[async () => 1, context(), { maxRetryAfter: 1.5 }], /"options.maxRetryAfter"/],
    [[async () => 1, context(), { breakerThreshold: 0 }], /"options.breakerThreshold"/],
    [[async () => 1, context(), { breakerThreshold: '5' }], /"options.breakerThreshold" property must be of type number/],
    [[async () => 1, context(), { breakerResetMs: -1 }], /"options.breakerResetMs"/],
    [[async () => 1, context(), { breakerResetMs: NaN }], /"options.breakerResetMs"/],
  ]
  for (const [args, message] of cases) {
    await assert.rejects(executeService(...args), (error) => {
      assert.ok(error instanceof TypeError || error instanceof RangeError, String(error))
      assert.ok(error.code)
      assert.match(error.message, message)
      return true
    })
  }
})

function runScript(source) {
  return new Promise((resolve) => {
    const started = performance.now()
    execFile(process.execPath, ['-e', source], { cwd: path.join(__dirname, '..'), timeout: 10_000 }, (error, stdout) => {
      resolve({ error, stdout, ms: performance.now() - started })
    })
  })
}

test('a pending retry keeps the process alive until it runs; none left keeps it no longer', async () => {
  const waiting = await runScript(`
    const { executeService } = require('.')
    let n = 0
    executeService(async () => { if (++n < 2) throw new Error('x'); return 'done' }, { operation: 'alive' }, { maxRetries: 1, baseDelay: 300, maxDelay: 300 })
      .then((r) => console.log(r.data, r.metadata.attempts))
  `)
  assert.equal(waiting.error, null)
  assert.equal(waiting.stdout.trim(), 'done 2')
  const finished = await runScript(`
    const { executeService } = require('.')
    executeService(async () => 'quick', { operation: 'quick' }).then((r) => console.log(r.data))
  `)
  assert.equal(finished.error, null)
  assert.equal(finished.stdout.trim(), 'quick')
  assert.ok(finished.ms < 5_000, `exited in ${finished.ms} ms`)
})
