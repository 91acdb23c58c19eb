'use strict'

// executeWithFallback's additions from the retry issue: `retry` (timed on
// the Rust side), `skipThreshold`, and `metadata.attempts`.

const test = require('node:test')
const assert = require('node:assert/strict')

const { performance } = require('node:perf_hooks')
const { executeWithFallback, integrationFailureManager, aiResponseCache } = require('..')
const { MESSAGES, resetSingletons, flaky, nodeScript } = require('./helpers')

test.beforeEach(resetSingletons)


test('retry: attempts until success, with metadata.attempts', async () => {
  const op = flaky(2)
  const result = await executeWithFallback(op.operation, { operationName: 'op', retry: { maxRetries: 3, baseDelayMs: 15, maxDelayMs: 100 } })
  assert.equal(result.data, 'ok after 3')
  assert.deepEqual(result.metadata, { attempts: 3 })
  for (const gap of op.gaps()) assert.ok(gap >= 13, `${gap} ms`)
})

test('retry without jitter doubles the delay, capped', async () => {
  const op = flaky(3)
  await executeWithFallback(op.operation, { operationName: 'op', retry: { maxRetries: 3, baseDelayMs: 20, maxDelayMs: 50, jitter: false } })
  const [first, second, third] = op.gaps()
  // Lower bounds only: a loaded machine stretches every wait. The cap
  // itself is checked where no clock runs (core::retry's
  // exponential_without_jitter_is_capped).
  assert.ok(first >= 18, `${first}`)
  assert.ok(second >= 38, `${second}`)
  assert.ok(third >= 48, `${third} (capped at 50)`)
})

test('retries exhausted: the fallback chain runs once, with the attempts counted', async () => {
  const op = flaky(10)
  aiResponseCache.set('p', 'cached', 'm')
  const result = await executeWithFallback(op.operation, {
    operationName: 'op',
    cacheKey: { prompt: 'p', modelId: 'm' },
    retry: { maxRetries: 2, baseDelayMs: 1 },
  })
  assert.equal(op.starts.length, 3)
  assert.equal(result.data, 'cached')
  assert.equal(result.message, MESSAGES.cache)
  assert.deepEqual(result.metadata, { usedFallback: true, fallbackType: 'cache', attempts: 3, errorClass: 'other' })
  const failed = await executeWithFallback(flaky(10).operation, { operationName: 'op', retry: { maxRetries: 1, baseDelayMs: 1 } })
  assert.deepEqual(failed.metadata, { usedFallback: false, originalError: 'attempt 2 failed', attempts: 2, errorClass: 'other' })
})

test('retryable: false and retryIf stop the retries', async () => {
  const fatal = flaky(5, () => Object.assign(new Error('400'), { retryable: false }))
  await executeWithFallback(fatal.operation, { operationName: 'op', retry: { maxRetries: 5, baseDelayMs: 1 } })
  assert.equal(fatal.starts.length, 1)
  const filtered = flaky(5, (n) => new Error(n === 1 ? 'transient' : 'permanent'))
  const result = await executeWithFallback(filtered.operation, {
    operationName: 'op',
    retry: { maxRetries: 5, baseDelayMs: 1, retryIf: (error) => error.message === 'transient' },
  })
  assert.equal(filtered.starts.length, 2)
  assert.equal(result.metadata.attempts, 2)
  const throwing = flaky(5)
  await executeWithFallback(throwing.operation, { operationName: 'op', retry: { maxRetries: 5, baseDelayMs: 1, retryIf: () => { throw new Error('bug') } } })
  assert.equal(throwing.starts.length, 1, 'a throwing retryIf means no')
})

test('retryAfterMs and Retry-After make the next attempt wait at least that long', async () => {
  const asked = flaky(1, () => Object.assign(new Error('slow down'), { retryAfterMs: 100 }))
  await executeWithFallback(asked.operation, { operationName: 'op', retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 } })
  assert.ok(asked.gaps()[0] >= 95, `${asked.gaps()[0]} ms`)
  const header = flaky(1, () => Object.assign(new Error('429'), { response: { headers: { 'retry-after': 0.1 } } }))
  await executeWithFallback(header.operation, { operationName: 'op', retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 } })
  assert.ok(header.gaps()[0] >= 95, `${header.gaps()[0]} ms`)
  const titled = flaky(1, () => Object.assign(new Error('503'), { response: { headers: { 'Retry-After': '0.1' } } }))
  await executeWithFallback(titled.operation, { operationName: 'op', retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5 } })
  assert.ok(titled.gaps()[0] >= 95, `${titled.gaps()[0]} ms`)
})

/** One retry after an error made by `makeError`, with tiny policy delays: how long the retry waited, and how many attempts ran. */
async function waitAfter(makeError, retry = {}) {
  const op = flaky(1, makeError)
  const result = await executeWithFallback(op.operation, { operationName: 'op', retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5, ...retry } })
  return { gap: op.gaps()[0], attempts: result.metadata.attempts }
}

const withHeaders = (where, headers) => () => {
  const error = new Error('429')
  if (where === 'response') error.response = { status: 429, headers }
  else error[where] = headers
  return error
}

test('Retry-After is read from error.headers, error.response.headers and error.responseHeaders, in any case, or a fetch Headers', async () => {
  const forms = [
    ['response', { 'retry-after': '0.1' }],
    ['response', { 'RETRY-AFTER': '0.1' }],
    ['response', new Headers({ 'Retry-After': '0.1' })],
    ['headers', { 'Retry-After': '0.1' }],
    ['headers', new Headers({ 'retry-after': '0.1' })],
    ['responseHeaders', { 'retry-after': '0.1' }],
    ['responseHeaders', { 'Retry-After-Ms': '100' }],
    ['headers', new Headers({ 'retry-after-ms': '100', 'retry-after': '0' })],
    ['headers', { 'retry-after-ms': 100 }],
  ]
  for (const [where, headers] of forms) {
    const { gap, attempts } = await waitAfter(withHeaders(where, headers))
    assert.equal(attempts, 2)
    assert.ok(gap >= 95, `${where} ${JSON.stringify(Object.fromEntries(Object.entries(headers instanceof Headers ? Object.fromEntries(headers) : headers)))}: waited ${gap} ms`)
  }
})

test('Retry-After as an HTTP-date waits until that date (JavaScript clock); a past date asks no wait', async () => {
  const date = (ms) => new Date(Date.now() + ms).toUTCString()
  // toUTCString drops the milliseconds: ask for 1.1-2.1 s ahead, cap 5 s.
  const ahead = await waitAfter(withHeaders('headers', { 'retry-after': date(2_100) }), { maxRetryAfterMs: 5_000 })
  assert.ok(ahead.gap >= 1_000 && ahead.gap < 3_000, `waited ${ahead.gap} ms`)
  const past = await waitAfter(withHeaders('headers', new Headers({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' })))
  assert.equal(past.attempts, 2)
  assert.ok(past.gap < 500, `waited ${past.gap} ms`)
  const unreadable = await waitAfter(withHeaders('headers', { 'retry-after': 'soon' }))
  assert.equal(unreadable.attempts, 2, 'an unreadable header asks nothing')
})

test('an error asking to wait past maxRetryAfterMs gives up at once instead: no day-long or endless waits', async () => {
  const asks = [
    () => Object.assign(new Error('x'), { retryAfterMs: 1e308 }),
    () => Object.assign(new Error('x'), { retryAfterMs: Infinity }),
    withHeaders('response', { 'retry-after': '86400' }),
    withHeaders('headers', new Headers({ 'retry-after': new Date(Date.now() + 86_400_000).toUTCString() })),
    withHeaders('responseHeaders', { 'retry-after-ms': '200' }),
  ]
  for (const makeError of asks) {
    const started = performance.now()
    const { attempts } = await waitAfter(makeError, { maxRetryAfterMs: 150 })
    assert.equal(attempts, 1, 'not retried')
    assert.ok(performance.now() - started < 1_000)
  }
  // At the cap it is honoured.
  const { gap, attempts } = await waitAfter(() => Object.assign(new Error('x'), { retryAfterMs: 150 }), { maxRetryAfterMs: 150 })
  assert.equal(attempts, 2)
  assert.ok(gap >= 145, `waited ${gap} ms`)
  // The default cap is 60 s: a day is refused without waiting.
  const day = await waitAfter(withHeaders('response', { 'retry-after': 86400 }))
  assert.equal(day.attempts, 1)
})

test('a headers getter or get() that throws is taken as asking nothing', async () => {
  const throwingGet = { get() { throw new Error('bad headers') } }
  assert.equal((await waitAfter(withHeaders('headers', throwingGet))).attempts, 2)
  const getter = () => Object.defineProperty(new Error('x'), 'responseHeaders', { get() { throw new Error('boom') } })
  assert.equal((await waitAfter(getter)).attempts, 2)
})

test('without a retry option results keep the contract\'s exact shapes', async () => {
  const ok = await executeWithFallback(async () => 1, { operationName: 'op' })
  assert.deepEqual(Object.keys(ok).sort(), ['data', 'message', 'success', 'timestamp'])
  const failed = await executeWithFallback(async () => { throw new Error('x') }, { operationName: 'op' })
  // The contract's shape, with the failure class this package adds (classify.test.js).
  assert.deepEqual(failed.metadata, { usedFallback: false, originalError: 'x', errorClass: 'other' })
})

test('skipThreshold: with allowSkip, skip without calling once the service keeps failing', async () => {
  let calls = 0
  const down = async () => { calls++; throw new Error('503') }
  const options = { operationName: 'post', service: 'facebook', allowSkip: true, skipThreshold: 3 }
  for (let i = 0; i < 3; i++) {
    const result = await executeWithFallback(down, options)
    assert.equal(result.metadata.skippedWithoutCalling, undefined)
  }
  assert.equal(calls, 3)
  const skipped = await executeWithFallback(down, options)
  assert.equal(calls, 3, 'not called')
  assert.deepEqual(skipped, {
    success: true,
    data: undefined,
    message: MESSAGES.skip,
    timestamp: skipped.timestamp,
    metadata: { usedFallback: true, fallbackType: 'skip', skippedWithoutCalling: true },
  })
  assert.equal(integrationFailureManager.getFailures('facebook').length, 3, 'a skip up front records no failure')
  await executeWithFallback(down, { ...options, allowSkip: false })
  assert.equal(calls, 4, 'skipThreshold needs allowSkip')
})

test('bad retry options reject with a TypeError or RangeError naming them', async () => {
  const cases = [
    [{ retry: 3 }, TypeError, /"options.retry" property must be of type object/],
    [{ retry: { maxRetries: -1 } }, RangeError, /"options.retry.maxRetries"/],
    [{ retry: { baseDelayMs: 'x' } }, TypeError, /"options.retry.baseDelayMs" property must be of type number/],
    [{ retry: { jitter: 'full' } }, TypeError, /"options.retry.jitter" property must be one of 'decorrelated', 'none'/],
    [{ retry: { retryIf: true } }, TypeError, /"options.retry.retryIf" property must be of type function/],
    [{ skipThreshold: -2 }, RangeError, /"options.skipThreshold"/],
    [{ retry: { maxRetryAfterMs: -1 } }, RangeError, /"options.retry.maxRetryAfterMs"/],
    [{ retry: { maxRetryAfterMs: '60' } }, TypeError, /"options.retry.maxRetryAfterMs" property must be of type number/],
  ]
  for (const [extra, type, message] of cases) {
    await assert.rejects(executeWithFallback(async () => 1, { operationName: 'op', ...extra }), (error) => {
      assert.ok(error instanceof type, String(error))
      assert.ok(error.code)
      assert.match(error.message, message)
      return true
    })
  }
})

test('timeoutMs: a slow attempt fails with code TIMEOUT and its AbortSignal aborts', async () => {
  let signal
  const result = await executeWithFallback(
    (given) => new Promise((resolve) => {
      signal = given
      given.addEventListener('abort', () => resolve('too late'))
    }),
    { operationName: 'slow', timeoutMs: 30 },
  )
  assert.equal(result.success, false)
  assert.equal(result.error.code, 'TIMEOUT')
  assert.match(result.message, /timed out after 30 ms/)
  assert.ok(signal instanceof AbortSignal)
  assert.equal(signal.aborted, true)
  assert.equal(signal.reason.code, 'TIMEOUT')
  assert.deepEqual(result.metadata, { usedFallback: false, originalError: result.message, attempts: 1, errorClass: 'timeout' })
})

test('timeoutMs with retry: each attempt has its own limit and signal', async () => {
  const signals = []
  const result = await executeWithFallback(
    (signal) => {
      signals.push(signal)
      return signals.length < 3 ? new Promise(() => {}) : Promise.resolve('third time')
    },
    { operationName: 'op', timeoutMs: 20, retry: { maxRetries: 3, baseDelayMs: 1 } },
  )
  assert.equal(result.data, 'third time')
  assert.equal(result.metadata.attempts, 3)
  assert.deepEqual(signals.map((s) => s.aborted), [true, true, false])
})

test('signal: the caller cancels the whole call; no fallback runs and no listener stays', async () => {
  const { getEventListeners } = require('node:events')
  const controller = new AbortController()
  let operationSignal
  const call = executeWithFallback(
    (signal) => {
      operationSignal = signal
      return new Promise(() => {})
    },
    { operationName: 'cancelled', service: 'cancelled-svc', allowSkip: true, signal: controller.signal },
  )
  assert.equal(getEventListeners(controller.signal, 'abort').length, 1)
  setTimeout(() => controller.abort(), 10)
  await assert.rejects(call, (error) => error.name === 'AbortError')
  assert.equal(operationSignal.aborted, true)
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
  assert.equal(integrationFailureManager.getFailures('cancelled-svc').length, 0, 'no skip recorded')
  const done = new AbortController()
  await executeWithFallback(async () => 1, { operationName: 'op', signal: done.signal })
  assert.equal(getEventListeners(done.signal, 'abort').length, 0)
})

test('signal already aborted: rejects at once without calling', async () => {
  let called = false
  const reason = new Error('user left')
  await assert.rejects(
    executeWithFallback(async () => { called = true }, { operationName: 'op', signal: AbortSignal.abort(reason) }),
    (error) => error === reason,
  )
  assert.equal(called, false)
})

test('dedupe: overlapping calls with the same cache key share one operation call', async () => {
  let calls = 0
  const operation = () => new Promise((resolve) => {
    calls++
    setTimeout(() => resolve({ n: calls }), 20)
  })
  const options = { operationName: 'gen', cacheKey: { prompt: 'same', modelId: 'm' }, dedupe: true }
  const [a, b] = await Promise.all([executeWithFallback(operation, options), executeWithFallback(operation, options)])
  assert.equal(calls, 1)
  assert.equal(a, b)
  assert.deepEqual(a.data, { n: 1 })
  const other = executeWithFallback(operation, { ...options, cacheKey: { prompt: 'other', modelId: 'm' } })
  const later = await executeWithFallback(operation, options)
  await other
  assert.equal(calls, 3, 'another key, and a call after the first settled, each call again')
  assert.deepEqual(later.data, { n: 3 })
  await Promise.all([executeWithFallback(operation, { ...options, dedupe: false }), executeWithFallback(operation, { ...options, dedupe: false })])
  assert.equal(calls, 5, 'without dedupe every call runs')
})

test('a call with a long timeout that finished leaves nothing keeping the process alive', async () => {
  const started = performance.now()
  const stdout = await nodeScript(
    "require('.').executeWithFallback(async () => 'quick', { operationName: 'op', timeoutMs: 60000, retry: { maxRetries: 2 } }).then((r) => console.log(r.data))",
  )
  assert.equal(stdout.trim(), 'quick')
  assert.ok(performance.now() - started < 10_000)
})

test('bad timeoutMs, signal and dedupe are rejected naming them', async () => {
  const cases = [
    [{ timeoutMs: 0 }, RangeError, /"options.timeoutMs"/],
    [{ timeoutMs: '5' }, TypeError, /"options.timeoutMs" property must be of type number/],
    [{ signal: {} }, TypeError, /"options.signal" property must be an instance of AbortSignal/],
    [{ dedupe: 'yes' }, TypeError, /"options.dedupe" property must be of type boolean/],
  ]
  for (const [extra, type, message] of cases) {
    await assert.rejects(executeWithFallback(async () => 1, { operationName: 'op', ...extra }), (error) => {
      assert.ok(error instanceof type, String(error))
      assert.match(error.message, message)
      return true
    })
  }
})

test('dedupe: a call with its own signal neither joins nor hosts a shared call', async () => {
  let calls = 0
  const operation = () => new Promise((resolve) => { calls++; setTimeout(() => resolve('v'), 30) })
  const options = { operationName: 'gen', cacheKey: { prompt: 'signal-dedupe', modelId: 'm' }, dedupe: true }
  const controller = new AbortController()
  const first = assert.rejects(executeWithFallback(operation, { ...options, signal: controller.signal }), /first left/)
  const second = executeWithFallback(operation, options)
  const third = assert.rejects(executeWithFallback(operation, { ...options, signal: AbortSignal.abort(new Error('already')) }), /already/)
  controller.abort(new Error('first left'))
  await first
  await third
  assert.equal((await second).data, 'v')
  assert.equal(calls, 2)
})

test('retry is read once: each of its getters answers one time, and what was checked is what runs', async () => {
  const reads = {}
  const retry = {}
  const answers = { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 5, jitter: 'none', maxRetryAfterMs: 10, retryIf: () => true }
  for (const [key, value] of Object.entries(answers)) {
    Object.defineProperty(retry, key, {
      enumerable: true,
      get() {
        reads[key] = (reads[key] ?? 0) + 1
        // A second read would stop the retries: what was checked must be what runs.
        return reads[key] === 1 ? value : key === 'retryIf' ? () => false : 0
      },
    })
  }
  let calls = 0
  const result = await executeWithFallback(
    async () => {
      calls++
      if (calls === 1) throw new Error('once')
      return 'again'
    },
    { operationName: `retry-read-once-${process.pid}`, retry },
  )
  assert.equal(result.data, 'again')
  assert.equal(calls, 2)
  assert.deepEqual(reads, { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 1, jitter: 1, maxRetryAfterMs: 1, retryIf: 1 })
})
